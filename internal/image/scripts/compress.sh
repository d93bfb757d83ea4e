#!/usr/bin/env bash
# Recompresses a standalone qcow2 image in place, as root on the libvirt host:
# every cluster compressed with zstd (compat 1.1). The new file is written
# beside the old one and renamed over it, with the old one's owner and mode,
# so the volume is never half written.
#
# Argument: the image file's path.
set -euo pipefail
image=$1
tmp="$image.kiln-compress"
trap 'rm -f -- "$tmp"' EXIT
qemu-img convert -c -f qcow2 -O qcow2 -o compat=1.1,compression_type=zstd -- "$image" "$tmp"
chown --reference="$image" -- "$tmp"
chmod --reference="$image" -- "$tmp"
mv -f -- "$tmp" "$image"
