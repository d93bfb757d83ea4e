#!/usr/bin/env bash
# systemd takes new service defaults on a re-exec, which takes seconds on a
# slow host: it runs in the background so as not to hold up the rest of the run.
if command -v systemctl >/dev/null; then (systemctl daemon-reexec >/dev/null 2>&1 &); fi
