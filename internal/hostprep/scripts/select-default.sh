#!/usr/bin/env bash
# Points root/current at a version and /usr/local/bin/go and gofmt into it; the
# rename makes the switch atomic.
# Arguments: toolchain root, version.
set -e
root=$1 v=$2
ln -sfn "$v" "$root/.current.tmp"
mv -T "$root/.current.tmp" "$root/current"
ln -sfn "$root/current/bin/go" /usr/local/bin/go
ln -sfn "$root/current/bin/gofmt" /usr/local/bin/gofmt
