#!/usr/bin/env bash
# Builds the CLIs pinned under tools/ into a cache outside the repository, keyed by
# each tool module's go.mod and go.sum, and links them into .tools/bin/. A tool whose
# pins have not changed is not rebuilt.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
cache=${KILN_CACHE:-$HOME/.cache/kiln}/tools
bin=$repo/.tools/bin
mkdir -p "$cache" "$bin"

# tool module directory -> binary name
declare -A tools=(
	[terraform]=terraform
	[tofu]=tofu
	[tfplugindocs]=tfplugindocs
	[golangci-lint]=golangci-lint
)

for dir in "${!tools[@]}"; do
	name=${tools[$dir]}
	mod=$repo/tools/$dir
	key=$(cat "$mod/go.mod" "$mod/go.sum" | sha256sum | cut -c1-16)
	target=$cache/$name-$key/$name
	if [[ ! -x $target ]]; then
		echo "tools: building $name" >&2
		pkg=$(awk '/^tool /{print $2}' "$mod/go.mod")
		mkdir -p "$cache/$name-$key"
		(cd "$mod" && CGO_ENABLED=0 go build -trimpath -o "$target.tmp" "$pkg")
		mv "$target.tmp" "$target"
	fi
	ln -sfn "$target" "$bin/$name"
done
