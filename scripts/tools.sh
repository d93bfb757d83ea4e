#!/usr/bin/env bash
# Builds the CLIs pinned under tools/ into a cache outside the repository, keyed by
# each tool module's go.mod and go.sum, and links them into .tools/bin/. A module may
# declare several tools (a `tool ( ... )` block); each binary is named after the last
# element of its package path, as go build names it (a major version suffix such as
# /v2 skipped). A module whose pins have not changed is not rebuilt.
# Modules in on_demand are built only when named: goreleaser serves make
# release-snapshot and the install test alone, so make tools (the quickstart, lint)
# does not pay for it.
#
#   bash scripts/tools.sh             # every module under tools/ but the on-demand ones
#   bash scripts/tools.sh kube kwok   # only these modules
#   bash scripts/tools.sh goreleaser
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
cache=${KILN_CACHE:-$HOME/.cache/kiln}/tools
bin=$repo/.tools/bin
mkdir -p "$cache" "$bin"

# tool_packages prints the package paths of a go.mod's tool directives, one a line,
# for both the single-line and the block form.
tool_packages() {
	awk '
		/^tool \(/ { block = 1; next }
		block && /^\)/ { block = 0; next }
		block && NF { print $1; next }
		/^tool / { print $2 }
	' "$1"
}

# bin_name prints the name go build gives a main package's binary.
bin_name() {
	local pkg=$1
	if [[ ${pkg##*/} =~ ^v[0-9]+$ ]]; then
		pkg=${pkg%/*}
	fi
	echo "${pkg##*/}"
}

on_demand=(goreleaser)

if (($# > 0)); then
	dirs=("$@")
else
	dirs=()
	for mod in "$repo"/tools/*/go.mod; do
		dir=$(basename "$(dirname "$mod")")
		[[ " ${on_demand[*]} " == *" $dir "* ]] || dirs+=("$dir")
	done
fi

# The tools only serve tests: built without optimisation or debug information,
# which takes a third less time on a fresh machine (Kubernetes alone is minutes).
flags=(-trimpath -gcflags=all=-N\ -l -ldflags=-s\ -w)

for dir in "${dirs[@]}"; do
	mod=$repo/tools/$dir
	key=$( (cat "$mod/go.mod" "$mod/go.sum"; echo "${flags[*]}") | sha256sum | cut -c1-16)
	out=$cache/$dir-$key
	mapfile -t pkgs < <(tool_packages "$mod/go.mod")
	if ((${#pkgs[@]} == 0)); then
		echo "tools: $mod/go.mod declares no tool" >&2
		exit 1
	fi
	missing=()
	for pkg in "${pkgs[@]}"; do
		[[ -x $out/$(bin_name "$pkg") ]] || missing+=("$pkg")
	done
	if ((${#missing[@]} > 0)); then
		echo "tools: building ${missing[*]} (tools/$dir)" >&2
		mkdir -p "$out"
		tmp=$(mktemp -d "$out/.build.XXXXXX")
		# go build writes one binary per main package into a directory given as -o dir/.
		(cd "$mod" && CGO_ENABLED=0 go build "${flags[@]}" -o "$tmp/" "${missing[@]}")
		for pkg in "${missing[@]}"; do
			mv "$tmp/$(bin_name "$pkg")" "$out/$(bin_name "$pkg")"
		done
		rmdir "$tmp"
	fi
	for pkg in "${pkgs[@]}"; do
		ln -sfn "$out/$(bin_name "$pkg")" "$bin/$(bin_name "$pkg")"
	done
done
