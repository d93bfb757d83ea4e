#!/usr/bin/env bash
# Runs steps one after the other in one SSH session: on an emulated host a
# session and its sudo cost about 0.3 s each, more than most steps. Each step
# is given as its argument count, its script, then its arguments. The first
# step that fails stops the run and names itself on stderr.
set -u
step=0
while (($#)); do
	n=$1 script=$2
	shift 2
	if ! bash -c "$script" kiln "${@:1:n}"; then
		echo "kiln-step-failed: $step" >&2
		exit 1
	fi
	shift "$n"
	step=$((step + 1))
done
