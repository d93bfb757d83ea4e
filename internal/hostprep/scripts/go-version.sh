#!/usr/bin/env bash
# Prints what a go command reports: its version, GOROOT and GOPATH.
# Arguments: the go binary.
"$1" version && "$1" env GOROOT GOPATH
