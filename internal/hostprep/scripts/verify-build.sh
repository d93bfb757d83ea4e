#!/usr/bin/env bash
# Builds and runs a small program with a go command: the opt-in part of the
# verification, since it compiles the runtime from a cold build cache (half a
# minute on an emulated host). println keeps the build to the runtime's
# packages: a program importing fmt takes minutes there.
# Arguments: the go binary.
set -e
d=$(mktemp -d)
trap 'rm -rf "$d"' EXIT
cd "$d"
printf 'package main\n\nfunc main() { println("kiln-verify-ok") }\n' >main.go
"$1" run main.go 2>&1
