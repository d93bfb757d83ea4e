#!/usr/bin/env bash
# Prints the last lines of a unit's journal.
# Arguments: service name, number of lines.
journalctl --unit "$1.service" --lines "$2" --no-pager --output short-iso 2>&1 || true
