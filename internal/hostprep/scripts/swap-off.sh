#!/usr/bin/env bash
# Turns swap off now and for good: swap lines in /etc/fstab are commented out
# and swap units masked (systemd can bring GPT or zram swap back).
set -e
swapoff -a
sed -i -E '/^[[:space:]]*#/!{/[[:space:]]swap[[:space:]]/s/^/#kiln# /}' /etc/fstab
if command -v systemctl >/dev/null; then
	for u in $( (systemctl list-unit-files --type=swap --no-legend; systemctl list-units --type=swap --all --plain --no-legend) 2>/dev/null | awk '{print $1}' | sort -u); do
		systemctl mask "$u" >/dev/null 2>&1 || true
	done
fi
