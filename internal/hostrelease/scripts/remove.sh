#!/usr/bin/env bash
# Removes a service Kiln released: stops and disables its unit and deletes
# the files Kiln installed — the unit, the config files given (those the
# manifest records as installed), and the install dir; and, when asked, the
# data directories Kiln created (those .kiln/data-dirs records), never one
# that existed before. Nothing is removed from an install dir that Kiln's
# marker does not name as this service's.
#
# Arguments: install dir, service name, "remove-data" or "keep-data", then
# the config file paths.
set -euo pipefail
dir=$1 name=$2 data=$3
shift 3
marker="$dir/.kiln/service"
if ! { [ -f "$marker" ] && [ "$(cat "$marker")" = "$name" ]; }; then
	if [ -e "$dir" ]; then echo "$dir holds no Kiln release of $name: left as it is" >&2; fi
	exit 0
fi
unit="/etc/systemd/system/$name.service"
systemctl disable --now --quiet "$name.service" 2>/dev/null || true
installed() {
	local path
	while read -r _ path; do
		if [ "$path" = "$1" ]; then return 0; fi
	done <"$dir/.kiln/manifest"
	return 1
}
if installed "$unit"; then rm -f "$unit"; fi
for path in "$@"; do
	if installed "$path"; then rm -f "$path"; fi
done
if [ "$data" = remove-data ] && [ -f "$dir/.kiln/data-dirs" ]; then
	while IFS= read -r path; do
		case $path in /?*) rm -rf "$path" ;; esac
	done <"$dir/.kiln/data-dirs"
fi
systemctl daemon-reload
systemctl reset-failed "$name.service" 2>/dev/null || true
rm -rf "${dir:?}"
