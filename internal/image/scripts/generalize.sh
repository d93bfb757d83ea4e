#!/usr/bin/env bash
# Generalizes a provisioned host before its disk becomes an image, as root:
# writes the image manifest (read from stdin) to /etc/kiln/image.json, then
# removes what must differ between clones and what only takes space. Users'
# ~/.ssh directories are never touched: clones keep their logins.
#
# Arguments, each "true" or "false": cloud-init state, SSH host keys,
# machine-id, logs and histories (journals, /var/log, shell histories, apt
# caches), temporary files, fstrim (freed blocks leave the disk image).
set -euo pipefail
cloud_init=$1 host_keys=$2 machine_id=$3 logs=$4 temp=$5 trim=$6

install -d -m 0755 /etc/kiln
cat >/etc/kiln/image.json.tmp
chmod 0644 /etc/kiln/image.json.tmp
mv -f /etc/kiln/image.json.tmp /etc/kiln/image.json

if [ "$cloud_init" = true ] && command -v cloud-init >/dev/null; then
	# Older cloud-init releases lack some options: pass those this one has,
	# read from its source (each start of cloud-init costs seconds on an
	# emulated host) or else from its help.
	shopt -s nullglob
	sources=(/usr/lib/python3*/*-packages/cloudinit/cmd/clean.py)
	if [ ${#sources[@]} -gt 0 ]; then
		usage=$(<"${sources[0]}")
	else
		usage=$(cloud-init clean --help 2>&1 || true)
	fi
	opts=(--logs --seed)
	[[ $usage == *--machine-id* ]] && opts+=(--machine-id)
	[[ $usage == *--configs* ]] && opts+=(--configs all)
	# clean empties /var/lib/cloud, and with it the scripts the image keeps
	# there to run on every boot, once, or on each clone's first boot: those
	# are the image's, not this instance's state, so they stay. (Its vendor
	# scripts came with this instance's vendor data, and go.)
	kept=$(mktemp -d /var/lib/kiln-generalize.XXXXXX)
	for dir in per-boot per-instance per-once; do
		if [ -d "/var/lib/cloud/scripts/$dir" ]; then mv "/var/lib/cloud/scripts/$dir" "$kept/"; fi
	done
	status=0
	cloud-init clean "${opts[@]}" || status=$?
	if [ -n "$(ls -A "$kept")" ]; then
		install -d -m 0755 /var/lib/cloud/scripts
		mv "$kept"/* /var/lib/cloud/scripts/
	fi
	rmdir "$kept"
	if [ "$status" -ne 0 ]; then exit "$status"; fi
	# cloud-init's own off switch: a host may have turned it off after its
	# first boot, but a clone needs that first boot to become itself.
	rm -f /etc/cloud/cloud-init.disabled
fi

if [ "$host_keys" = true ]; then
	# cloud-init writes the clone's keys on its first boot.
	rm -f /etc/ssh/ssh_host_*key /etc/ssh/ssh_host_*key.pub
fi

if [ "$machine_id" = true ]; then
	# An empty machine-id makes systemd generate a new one at the next boot.
	: >/etc/machine-id
	if [ -f /var/lib/dbus/machine-id ] && [ ! -L /var/lib/dbus/machine-id ]; then
		rm -f /var/lib/dbus/machine-id
	fi
	rm -f /var/lib/systemd/random-seed
fi

if [ "$logs" = true ]; then
	if command -v journalctl >/dev/null; then
		journalctl --rotate >/dev/null 2>&1 || true
		journalctl --vacuum-time=1s >/dev/null 2>&1 || true
	fi
	find /var/log -type f \( -name '*.gz' -o -name '*.[0-9]' -o -name '*.old' \) -delete
	find /var/log -type f -not -path '/var/log/journal/*' -exec truncate -s 0 {} +
	rm -f /root/.bash_history /home/*/.bash_history
	if command -v apt-get >/dev/null; then apt-get clean; fi
	rm -rf /var/lib/apt/lists/*
fi

if [ "$temp" = true ]; then
	find /tmp /var/tmp -mindepth 1 -xdev -delete 2>/dev/null || true
fi

sync
if [ "$trim" = true ] && command -v fstrim >/dev/null; then
	fstrim --all || fstrim / || true
fi
sync
