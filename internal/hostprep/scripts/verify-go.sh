#!/usr/bin/env bash
# The default check of a go command, as cheap as proves the install works
# without building anything: its version, GOROOT and GOPATH, then the version
# lines of the compiler and the linker, the tools a build runs besides it.
# (`go list std` would also read the whole standard library: half a second of
# CPU natively, many seconds on an emulated host.)
# Arguments: the go binary.
set -e
"$1" version
"$1" env GOROOT GOPATH
"$1" tool compile -V=full
"$1" tool link -V=full
