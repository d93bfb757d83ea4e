#!/usr/bin/env bash
# Runs one build as the build user, in one of the host's slots.
#
# Standard input: the number of environment entries, that many KEY=VALUE
# lines (values never reach the command line), the size of the source tar in
# bytes, the tar. Kiln keeps standard input open until the command ends: when
# its end of the connection goes away (a drop, a timeout, an interrupt),
# standard input ends and the watcher kills the build's process group.
# Standard output: a tar of the results (the binary, or the artifacts; for a
# test suite: exit-status, stdout when captured, and reports/<path> for each
# report file).
# Standard error: the log, each phase announced by a "kiln-step: <name>" line.
# Exit 75: no free slot within the wait.
#
# Arguments: workspace, slots (the host's concurrency), seconds to wait for a
# slot, GOROOT, SOURCE_DATE_EPOCH, mode ("go", "script" or "test"), then for
# "go": package, binary name, ldflags, tags, CGO_ENABLED; for "script": the
# script, then the artifacts' paths; for "test": the script, "1" to capture its
# standard output (go test -json) or "0", then the reports' glob patterns. A
# test script's failure is a result, not a failed run: its exit status is sent
# with the reports.
set -uo pipefail
workspace=$1 slots=$2 wait_for=$3 goroot=$4 epoch=$5 mode=$6
shift 6

step() { echo "kiln-step: $1" >&2; }

step "wait for a build slot"
deadline=$((SECONDS + wait_for))
slot=
while :; do
	for ((i = 1; i <= slots; i++)); do
		exec 9>"$workspace/slots/$i.lock"
		if flock -n 9; then
			slot=$i
			break 2
		fi
		exec 9>&-
	done
	if ((SECONDS >= deadline)); then
		echo "no free build slot of $slots" >&2
		exit 75
	fi
	sleep 1
done
# The slot's times, from the shell's clock (no process started).
printf 'slot %s taken at %(%s)T\n' "$slot" -1 >&2

# The slot's directory is the previous build's, whatever state that one left
# it in: start from nothing.
dir=$workspace/builds/$slot
rm -rf "$dir"
mkdir -p "$dir/src" "$dir/out" || exit 1
trap 'rm -rf "$dir"; printf "slot %s freed at %(%s)T\n" "$slot" -1 >&2' EXIT

step "receive the source"
envs=()
read -r n || exit 1
for ((i = 0; i < n; i++)); do
	IFS= read -r line || exit 1
	envs+=("$line")
done
read -r size || exit 1
head -c "$size" | tar -x -C "$dir/src" || exit 1

case $mode in
go)
	package=$1 name=$2 ldflags=$3 tags=$4 cgo=$5
	step "go build"
	cmd=("$goroot/bin/go" build -trimpath -buildvcs=false -o "$dir/out/$name"
		-ldflags "-buildid= $ldflags" -tags "$tags" "$package")
	results=("$name") from=$dir/out
	;;
script)
	script=$1
	shift
	step "build script"
	cmd=(bash -euo pipefail -c "$script")
	results=("$@") from=$dir/src
	;;
test)
	script=$1 capture=$2
	shift 2
	step "test script"
	cmd=(bash -euo pipefail -c "$script")
	;;
*)
	echo "unknown mode $mode" >&2
	exit 2
	;;
esac

cd "$dir/src" || exit 1
export PATH=$goroot/bin:$PATH GOROOT=$goroot SOURCE_DATE_EPOCH=$epoch CGO_ENABLED=${cgo:-0}
if ((${#envs[@]})); then export "${envs[@]}"; fi
# The exact toolchain the build asked for, never a switch to another one.
export GOTOOLCHAIN=local
# The command's standard output is the log, or a test's captured output.
if [ "$mode" = test ] && [ "$capture" = 1 ]; then
	setsid "${cmd[@]}" </dev/null >"$dir/out/stdout" &
else
	setsid "${cmd[@]}" </dev/null >&2 &
fi
pid=$!
# Background commands read /dev/null unless told otherwise: the watcher reads
# what is left of standard input, explicitly.
(
	cat >/dev/null 2>&1
	kill -KILL -- -"$pid" 2>/dev/null
) <&0 &
watcher=$!
wait "$pid"
status=$?
kill "$watcher" 2>/dev/null
if [ "$mode" = test ]; then
	step "collect the reports"
	echo "$status" >"$dir/out/exit-status"
	mkdir "$dir/out/reports" || exit 1
	# Unquoted, each pattern is globbed (** across directories) and not split.
	(
		shopt -s nullglob globstar
		IFS=
		for pattern in "$@"; do
			for f in $pattern; do
				if [ -f "$f" ] && [ ! -L "$f" ]; then cp --parents -- "$f" "$dir/out/reports/" || exit 1; fi
			done
		done
	) || exit 1
	cd "$dir/out" || exit 1
	mapfile -t results < <(find . -type f -printf '%P\n' | sort)
	from=$dir/out
elif ((status != 0)); then
	exit "$status"
fi

step "send the results"
for f in "${results[@]}"; do
	if [ ! -f "$from/$f" ] || [ -L "$from/$f" ]; then
		echo "$f: no such file after the build" >&2
		exit 1
	fi
done
tar -c -C "$from" -- "${results[@]}"
