#!/usr/bin/env bash
# Installs the Go tools Kiln built, and records per resource which binaries it
# installed: root/.kiln-tools/<owner> has a line per binary,
# "<path> <sha256> <inode:size:ctime> <package@version>". A binary is removed
# only when a resource that recorded it lets it go, no other resource holds it,
# and it still hashes to what Kiln installed: a binary Kiln did not put there,
# or one replaced by hand since, is never deleted; a file no resource recorded
# is never overwritten (a recorded binary replaced by hand is repaired).
#
# Arguments: toolchain root, owner, what to do, then:
#   install PATH SIZE SHA256 REF  the binary arrives on standard input, SIZE
#                                 bytes; it is written beside PATH, checked
#                                 against SHA256 and renamed into place
#   settle PATH...                the owner holds just these; the others go
#   release                       the owner holds nothing; what it held goes
#   forget                        the owner holds nothing; every binary stays
set -euo pipefail
root=$1 owner=$2 action=$3
shift 3
dir="$root/.kiln-tools"
if [ "$action" != install ] && [ ! -d "$dir" ]; then exit 0; fi
mkdir -p "$dir"
exec 9>"$dir/.lock"
flock 9
manifest="$dir/$owner"
touch "$manifest"

# recorded PATH [SKIP]: whether a manifest other than SKIP's lists PATH.
recorded() {
	local m p _rest
	for m in "$dir"/*; do
		if [ ! -f "$m" ] || [ "${m##*/}" = "${2:-}" ]; then continue; fi
		while read -r p _rest; do
			if [ "$p" = "$1" ]; then return 0; fi
		done <"$m"
	done
	return 1
}

# rewrite: the manifest becomes standard input.
rewrite() {
	cat >"$dir/.$owner.tmp"
	mv "$dir/.$owner.tmp" "$manifest"
}

keep=()
case $action in
install)
	path=$1 size=$2 want=$3 ref=$4
	if [ -e "$path" ] && ! recorded "$path"; then
		echo "$path exists and Kiln did not install it: remove it, or install the tools into another go.tools_dir" >&2
		exit 1
	fi
	mkdir -p "${path%/*}"
	tmp="${path%/*}/.${path##*/}.kiln-tmp"
	head -c "$size" >"$tmp"
	got=$(sha256sum "$tmp" | cut -d' ' -f1)
	if [ "$got" != "$want" ]; then
		rm -f "$tmp"
		echo "$path arrived with sha256 $got, want $want: nothing installed" >&2
		exit 1
	fi
	chmod 0755 "$tmp"
	mv -f "$tmp" "$path"
	fp=$(stat -c '%i:%s:%.9Z' "$path")
	{
		while read -r p rest; do
			if [ -n "$p" ] && [ "$p" != "$path" ]; then printf '%s %s\n' "$p" "$rest"; fi
		done <"$manifest"
		printf '%s %s %s %s\n' "$path" "$want" "$fp" "$ref"
	} | rewrite
	exit 0
	;;
settle) keep=("$@") ;;
release | forget) ;;
*)
	echo "unknown action $action" >&2
	exit 2
	;;
esac

kept=''
while read -r p sum _fp rest; do
	[ -n "$p" ] || continue
	if [[ " ${keep[*]} " == *" $p "* ]]; then
		kept+="$p $sum $_fp $rest"$'\n'
		continue
	fi
	if [ "$action" = forget ] || recorded "$p" "$owner" || [ ! -f "$p" ]; then continue; fi
	if [ "$(sha256sum "$p" | cut -d' ' -f1)" = "$sum" ]; then rm -f "$p"; fi
done <"$manifest"
if [ -n "$kept" ]; then
	printf '%s' "$kept" | rewrite
else
	rm -f "$manifest"
fi
if ! compgen -G "$dir/*" >/dev/null; then rm -rf "$dir"; fi
