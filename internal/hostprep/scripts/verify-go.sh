#!/usr/bin/env bash
# The default check of a go command, as cheap as proves the install works
# without building anything, in two runs of the toolchain's binaries (each
# costs seconds on a busy emulated host): the go command's release, host
# platform, GOROOT and GOPATH, then the compiler's version line.
# (`go list std` would also read the whole standard library: half a second of
# CPU natively, many seconds on an emulated host.)
# Arguments: the go binary.
set -e
"$1" env GOVERSION GOHOSTOS GOHOSTARCH GOROOT GOPATH
"$1" tool compile -V=full
