#!/usr/bin/env bash
# Stages a release under <install dir>/releases/<release>: the binary, and a
# copy of every file the release installs (its unit, environment file and
# config files) under .kiln/files/<absolute path>, for activate.sh to put in
# place, now or when a later release rolls back to this one. The release is
# built beside its place and renamed into it once complete and verified.
#
# Arguments: install dir, service name, release, the binary's SHA-256, and how
# the binary arrives: "reuse" (already staged there, hash checked again) or
# the byte count of the binary on standard input. Standard input then holds
# the files, each a header line "<mode> <size> <absolute path>" followed by
# exactly <size> bytes; file contents never appear in a command line.
set -euo pipefail
dir=$1 name=$2 release=$3 want=$4 binary=$5
marker="$dir/.kiln/service"
if [ -e "$dir" ] && [ -n "$(ls -A "$dir")" ] && ! { [ -f "$marker" ] && [ "$(cat "$marker")" = "$name" ]; }; then
	echo "$dir exists and was not installed by Kiln for $name: refusing to release into it" >&2
	exit 1
fi
if [ ! -e "$marker" ] && [ -e "/etc/systemd/system/$name.service" ]; then
	echo "/etc/systemd/system/$name.service exists and was not installed by Kiln: refusing to replace it" >&2
	exit 1
fi
mkdir -p "$dir/.kiln" "$dir/releases"
chmod 0755 "$dir"
chmod 0700 "$dir/.kiln"
printf '%s' "$name" >"$marker"
tmp="$dir/releases/.staging-$release"
rm -rf "$tmp"
mkdir -p "$tmp/.kiln/files"
chmod 0700 "$tmp/.kiln"
if [ "$binary" = reuse ]; then
	cp -p "$dir/releases/$release/$name" "$tmp/$name"
else
	head -c "$binary" >"$tmp/$name"
fi
got=$(sha256sum <"$tmp/$name" | cut -d' ' -f1)
if [ "$got" != "$want" ]; then
	rm -rf "$tmp"
	echo "the binary arrived with sha256 $got, want $want: nothing released" >&2
	exit 1
fi
chmod 0755 "$tmp/$name"
while read -r mode size path; do
	case $path in /*) ;; *)
		echo "file path $path is not absolute" >&2
		exit 1
		;;
	esac
	mkdir -p "$(dirname "$tmp/.kiln/files$path")"
	head -c "$size" >"$tmp/.kiln/files$path"
	chmod "$mode" "$tmp/.kiln/files$path"
done
old="$dir/releases/.replaced-$release"
rm -rf "$old"
if [ -e "$dir/releases/$release" ]; then mv "$dir/releases/$release" "$old"; fi
mv "$tmp" "$dir/releases/$release"
# Restaging the running release (new files, same binary): what it ran with is
# kept as .before-<release>, for activate.sh to restore if the new files fail.
if [ "$(readlink "$dir/current" 2>/dev/null || true)" = "releases/$release" ] && [ -e "$old" ]; then
	rm -rf "$dir/releases/.before-$release"
	mv "$old" "$dir/releases/.before-$release"
fi
rm -rf "$old"
