#!/usr/bin/env bash
# Mounts a tmpfs, owned by the user, on the user's default GOCACHE and lists it
# in /etc/fstab; a mounted one is resized in place.
# Arguments: user, size in MiB.
set -e
u=$1 mib=$2
home=$(getent passwd "$u" | cut -d: -f6)
[ -n "$home" ] || {
	echo "no user $u on the host" >&2
	exit 1
}
uid=$(id -u "$u") gid=$(id -g "$u")
[ -d "$home/.cache" ] || install -d -o "$uid" -g "$gid" -m 0755 "$home/.cache"
d="$home/.cache/go-build"
mkdir -p "$d"
opts="size=${mib}m,uid=$uid,gid=$gid,mode=0700,nosuid,nodev"
awk -v d="$d" '$2 != d' /etc/fstab >/etc/fstab.kiln-tmp
echo "tmpfs $d tmpfs $opts 0 0" >>/etc/fstab.kiln-tmp
mv /etc/fstab.kiln-tmp /etc/fstab
if mountpoint -q "$d"; then mount -o "remount,$opts" "$d"; else mount "$d"; fi
