#!/usr/bin/env bash
# Prints a service's state on the host in one round trip, one "key value" a
# line: the current and previous releases (the symlinks' targets), the hash
# of the current binary and of the wanted release's binary, the unit's active
# and enabled states, the files Kiln installed as its manifest records them,
# those whose content no longer matches, the data directories that are
# missing, whether its files were restored after a failed release, and the
# verdict of one health check probe.
#
# Arguments: install dir, service name, wanted release, the data directories
# (one a line), then, when the service has a health check, health.sh's text
# and its arguments for a single probe.
dir=$1 name=$2 wanted=$3 data=$4
shift 4
marker="$dir/.kiln/service"
if [ -e "$dir" ] && ! { [ -f "$marker" ] && [ "$(cat "$marker")" = "$name" ]; }; then
	echo "foreign $dir"
fi
for link in current previous; do
	if [ -L "$dir/$link" ]; then echo "$link $(readlink "$dir/$link")"; fi
done
if [ -f "$dir/current/$name" ]; then
	echo "binary $(sha256sum <"$dir/current/$name" | cut -d' ' -f1)"
fi
if [ -f "$dir/releases/$wanted/$name" ]; then
	echo "wanted $(sha256sum <"$dir/releases/$wanted/$name" | cut -d' ' -f1)"
fi
if [ -f "$dir/.kiln/rolled-back" ]; then echo "rolledback"; fi
echo "active $(systemctl is-active "$name.service" 2>/dev/null)"
echo "enabled $(systemctl is-enabled "$name.service" 2>/dev/null)"
if [ -d "$dir/releases" ]; then
	for r in "$dir"/releases/*/; do
		[ -d "$r" ] && echo "release $(basename "$r")"
	done
fi
manifest="$dir/.kiln/manifest"
if [ -f "$manifest" ]; then
	while read -r sum path; do echo "installed $sum $path"; done <"$manifest"
	sha256sum --check --quiet "$manifest" 2>/dev/null | while IFS= read -r line; do
		echo "changed ${line%: FAILED*}"
	done
fi
while IFS= read -r d; do
	if [ -n "$d" ] && [ ! -d "$d" ]; then echo "nodata $d"; fi
done <<<"$data"
if [ $# -gt 0 ] && [ -L "$dir/current" ]; then
	if why=$(bash -c "$1" health "${@:2}" 2>&1 >/dev/null); then
		echo "health healthy"
	else
		echo "health unhealthy: ${why//$'\n'/ }"
	fi
fi
exit 0
