# shellcheck shell=bash disable=SC2154,SC2034 # bench, work, results, label and mirror_port come from the sourcing script, which reads mirror_pid
# What the benchmark scripts share: logging, timing a command into its own
# log, results kept across partial runs, and the toolchain mirror's server.
# The sourcing script sets $bench (its name in the log), $work and $results;
# seconds reads $label, start_mirror $mirror_port.

log() { echo "$bench: $*" >&2; }
die() {
	log "$*"
	exit 1
}

# seconds CMD... runs CMD with its output in $work/logs/<label>.log (label from
# $label) and prints the wall-clock seconds it took.
seconds() {
	local start=$EPOCHREALTIME
	"$@" >"$work/logs/$label.log" 2>&1 || {
		tail -n 40 "$work/logs/$label.log" >&2
		die "$label failed (log: $work/logs/$label.log)"
	}
	echo "$EPOCHREALTIME - $start" | bc | awk '{printf "%.1f", $1}'
}

record() { # record KEY VALUE: keep a result across partial runs
	touch "$results"
	sed -i "/^$1=/d" "$results"
	echo "$1=$2" >>"$results"
	log "$1 = $2"
}

median() { printf '%s\n' "$@" | sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }

# start_mirror serves $work/mirror on 127.0.0.1:$mirror_port (its pid in
# $mirror_pid, for the caller to stop) and waits until dl.json answers.
start_mirror() {
	python3 -u -m http.server --bind 127.0.0.1 "$mirror_port" --directory "$work/mirror" >>"$work/mirror.log" 2>&1 &
	mirror_pid=$!
	for _ in $(seq 1 50); do
		curl -fsS -o /dev/null "http://127.0.0.1:$mirror_port/dl.json" 2>/dev/null && return 0
		sleep 0.2
	done
	die "the mirror did not start on port $mirror_port (log: $work/mirror.log)"
}
