#!/usr/bin/env bash
# Installs a verified toolchain: unpacks it beside the root into $tmp, gives it
# its go.env and Kiln's marker, and renames it into place only once complete,
# so an interrupted install never leaves a half-installed toolchain selected.
#
# Arguments: toolchain root, version, the archive's SHA-256, the go.env to
# write, the marker file name, then how the archive arrives:
#   stream SIZE  on standard input, SIZE bytes followed by the sender's verdict
#                line ("commit <bin/go sha256>" once it inspected the archive)
#   fetch URL    downloaded by the host, hashed here on the way in
set -euo pipefail
root=$1 v=$2 want=$3 goenv=$4 marker=$5 how=$6 from=$7
tmp="$root/.kiln-tmp-$v"
rm -rf "$tmp" "$tmp.sha256" "$tmp.fifo"
mkdir -p "$tmp"

case $how in
stream)
	head -c "$from" | tar -xzf - -C "$tmp" --no-same-owner
	read -r verdict gosum || true
	if [ "$verdict" != commit ]; then
		rm -rf "$tmp"
		echo "the sender did not vouch for the archive (${verdict:-stream ended}): nothing installed" >&2
		exit 1
	fi
	;;
fetch)
	# tee feeds the hasher and tar at once: the archive is read a single time.
	mkfifo "$tmp.fifo"
	sha256sum <"$tmp.fifo" | cut -d' ' -f1 >"$tmp.sha256" &
	hasher=$!
	curl -fsSL --retry 2 "$from" | tee "$tmp.fifo" | tar -xzf - -C "$tmp" --no-same-owner
	wait "$hasher"
	rm -f "$tmp.fifo"
	got=$(cat "$tmp.sha256")
	if [ "$got" != "$want" ]; then
		echo "archive arrived with sha256 $got, want $want" >&2
		rm -rf "$tmp" "$tmp.sha256"
		exit 1
	fi
	out=$("$tmp/go/bin/go" version)
	case "$out" in *"go$v "*) ;; *)
		echo "bin/go reports '$out', want go$v" >&2
		exit 1
		;;
	esac
	gosum=$(sha256sum "$tmp/go/bin/go" | cut -d' ' -f1)
	;;
*)
	echo "unknown archive delivery $how" >&2
	exit 2
	;;
esac

printf '%s' "$goenv" >"$tmp/go/go.env"
fp=$(stat -c '%i:%s:%.9Z' "$tmp/go/bin/go")
printf 'archive=%s go=%s stat=%s\n' "$want" "$gosum" "$fp" >"$tmp/go/$marker"
if [ -e "$root/$v" ]; then mv "$root/$v" "$tmp/previous"; fi
mv "$tmp/go" "$root/$v"
rm -rf "$tmp" "$tmp.sha256"
