#!/usr/bin/env bash
# Replaces a file's content atomically.
# Arguments: path, content.
set -e
path=$1 content=$2
mkdir -p "$(dirname "$path")"
printf '%s' "$content" >"$path.kiln-tmp"
chmod 0644 "$path.kiln-tmp"
mv "$path.kiln-tmp" "$path"
