#!/usr/bin/env bash
# Prints the last lines of a unit's journal since its last activation
# (activate.sh notes the time), so older runs' lines do not bury this one's.
# Arguments: service name, number of lines, install dir.
name=$1 lines=$2 dir=$3
since=()
if read -r at <"$dir/.kiln/activated-at" 2>/dev/null && [[ $at =~ ^[0-9]+$ ]]; then
	since=(--since "@$at")
fi
journalctl --unit "$name.service" "${since[@]}" --lines "$lines" --no-pager --output short-iso 2>&1 || true
