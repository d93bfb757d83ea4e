#!/usr/bin/env bash
# Applies the kernel parameters of a sysctl file.
# Arguments: the file.
sysctl -q -p "$1"
