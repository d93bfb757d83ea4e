#!/usr/bin/env bash
# Runs go test -short on packages.
# Arguments: the go binary, then the packages.
go=$1
shift
"$go" test -short "$@"
