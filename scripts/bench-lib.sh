# shellcheck shell=bash disable=SC2154 # bench, work, results and label come from the sourcing script
# What the benchmark scripts share: logging, timing a command into its own
# log, and results kept across partial runs. The sourcing script sets $bench
# (its name in the log), $work and $results; seconds reads $label.

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
