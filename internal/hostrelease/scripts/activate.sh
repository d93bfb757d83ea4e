#!/usr/bin/env bash
# Makes a staged release the running one: creates the service user if
# missing, puts the release's files in place (each replaced atomically),
# records their hashes in the manifest, switches the current symlink
# atomically (the one it replaces becomes "previous" unless this is a
# rollback), creates the data directories that are missing (owned by the
# service user, recorded in .kiln/data-dirs as Kiln's to remove), reloads
# systemd, enables the unit and restarts it, noting when in
# .kiln/activated-at so a failure quotes only this run's journal.
#
# Arguments: install dir, service name, release, service user ("" for root),
# mode: "release", "rollback", or "restore" (the running release back to the
# files it ran with before it was restaged, kept by stage.sh), then the data
# directories.
set -euo pipefail
dir=$1 name=$2 release=$3 user=$4 mode=$5
shift 5
rel="$dir/releases/$release"
if [ "$mode" = restore ]; then
	before="$dir/releases/.before-$release"
	if [ ! -d "$before" ]; then
		echo "release $release has no files from before it was restaged" >&2
		exit 1
	fi
	rm -rf "$dir/releases/.failed-$release"
	mv "$rel" "$dir/releases/.failed-$release"
	mv "$before" "$rel"
	rm -rf "$dir/releases/.failed-$release"
	# The host now matches Kiln's records but not the configuration that
	# failed: read.sh reports it until a release succeeds.
	: >"$dir/.kiln/rolled-back"
elif [ "$mode" = release ]; then
	rm -f "$dir/.kiln/rolled-back"
fi
if [ ! -f "$rel/$name" ]; then
	echo "release $release is not staged in $dir" >&2
	exit 1
fi
if [ -n "$user" ] && ! id -u "$user" >/dev/null 2>&1; then
	useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$user"
fi
manifest="$dir/.kiln/manifest.tmp"
sha256sum "$rel/$name" >"$manifest"
files="$rel/.kiln/files"
while IFS= read -r -d '' staged; do
	path=${staged#"$files"}
	mkdir -p "$(dirname "$path")"
	cp -p "$staged" "$path.kiln-tmp"
	# Config files are the service's to read, not to change.
	if [ -n "$user" ] && [ "$path" != "/etc/systemd/system/$name.service" ] && [ "$path" != "$dir/$name.env" ]; then
		chgrp "$user" "$path.kiln-tmp"
	fi
	mv "$path.kiln-tmp" "$path"
	sha256sum "$path" >>"$manifest"
done < <(find "$files" -type f -print0 | sort -z)
mv "$manifest" "$dir/.kiln/manifest"
old=$(readlink "$dir/current" 2>/dev/null || true)
ln -sfn "releases/$release" "$dir/current.kiln-tmp"
mv -T "$dir/current.kiln-tmp" "$dir/current"
if [ "$mode" = rollback ]; then
	rm -f "$dir/previous"
elif [ -n "$old" ] && [ "$old" != "releases/$release" ]; then
	ln -sfn "$old" "$dir/previous.kiln-tmp"
	mv -T "$dir/previous.kiln-tmp" "$dir/previous"
fi
for data in "$@"; do
	if [ ! -e "$data" ]; then
		install -d -m 0750 -o "${user:-root}" -g "${user:-root}" "$data"
		echo "$data" >>"$dir/.kiln/data-dirs"
	fi
done
systemctl daemon-reload
systemctl enable --quiet "$name.service"
date +%s >"$dir/.kiln/activated-at"
systemctl restart "$name.service"
