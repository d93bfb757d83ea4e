#!/usr/bin/env bash
# Builds and runs a small program with a go command. println keeps the build to
# the runtime's packages: under emulation a program importing fmt takes
# minutes to build from a cold cache.
# Arguments: the go binary.
set -e
d=$(mktemp -d)
trap 'rm -rf "$d"' EXIT
cd "$d"
printf 'package main\n\nfunc main() { println("kiln-verify-ok") }\n' >main.go
"$1" run main.go 2>&1
