#!/usr/bin/env bash
# Unmounts the tmpfs on the user's GOCACHE and drops it from /etc/fstab.
# Arguments: user.
set -e
d="$(getent passwd "$1" | cut -d: -f6)/.cache/go-build"
if mountpoint -q "$d"; then umount "$d"; fi
awk -v d="$d" '$2 != d' /etc/fstab >/etc/fstab.kiln-tmp
mv /etc/fstab.kiln-tmp /etc/fstab
