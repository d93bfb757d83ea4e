#!/usr/bin/env bash
# Removes the oldest releases beyond the number to keep; the current and the
# previous release are always kept. Run after a healthy release, it also drops
# the files a restaged release ran with before (stage.sh's .before-*).
# Arguments: install dir, releases to keep.
set -euo pipefail
dir=$1 keep=$2
rm -rf "${dir:?}"/releases/.before-*
current=$(readlink "$dir/current" 2>/dev/null || true)
previous=$(readlink "$dir/previous" 2>/dev/null || true)
n=0
while IFS= read -r r; do
	n=$((n + 1))
	case "releases/$r" in "$current" | "$previous") continue ;; esac
	if [ "$n" -gt "$keep" ]; then rm -rf "${dir:?}/releases/$r"; fi
done < <(ls -1t "$dir/releases")
