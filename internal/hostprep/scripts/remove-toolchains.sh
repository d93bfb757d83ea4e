#!/usr/bin/env bash
# Removes toolchains from the root.
# Arguments: toolchain root, then the versions to remove.
set -e
root=$1
shift
for v in "$@"; do
	rm -rf "${root:?}/$v"
done
