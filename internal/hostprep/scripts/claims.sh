#!/usr/bin/env bash
# Records which toolchains a resource holds, and removes the ones it lets go
# that no other resource holds. Each resource has a manifest, root/.kiln-owners/
# <owner>, listing the versions it declared; the lock keeps resources applying
# to one host at once from removing what another has just claimed. Only
# toolchains carrying Kiln's marker are ever removed.
#
# Arguments: toolchain root, marker file name, owner, what to do, versions:
#   claim    the owner holds the versions too
#   settle   the owner holds just the versions; the others it held go
#   release  the owner holds nothing; what it held and the versions go
#   forget   the owner holds nothing; every toolchain stays
set -euo pipefail
root=$1 marker=$2 owner=$3 action=$4
shift 4
dir="$root/.kiln-owners"
# Nothing to forget on a host without manifests: leave no directory behind.
if [ "$action" = forget ] && [ ! -d "$dir" ]; then exit 0; fi
mkdir -p "$dir"
exec 9>"$dir/.lock"
flock 9
old=
if [ -f "$dir/$owner" ]; then read -r old <"$dir/$owner" || true; fi
hold='' drop=''
case $action in
claim) hold="$old $*" ;;
settle) hold="$*" drop=$old ;;
release) drop="$old $*" ;;
forget) ;;
*)
	echo "unknown action $action" >&2
	exit 2
	;;
esac
# shellcheck disable=SC2086 # word splitting and sorting of version lists
hold=$(printf '%s\n' $hold | sort -uV | tr '\n' ' ')
if [ -n "${hold// /}" ]; then
	printf '%s\n' "${hold% }" >"$dir/.$owner.tmp"
	mv "$dir/.$owner.tmp" "$dir/$owner"
else
	rm -f "$dir/$owner"
fi
held=" $hold "
for m in "$dir"/*; do
	if [ ! -f "$m" ] || [ "${m##*/}" = "$owner" ]; then continue; fi
	read -r line <"$m" || true
	held+="$line "
done
for v in $drop; do
	case $held in *" $v "*) continue ;; esac
	if [ -f "$root/$v/$marker" ]; then rm -rf "${root:?}/$v"; fi
done
