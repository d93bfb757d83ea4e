#!/usr/bin/env bash
# Removes the login Kiln gave a transient bake VM, once the host is
# generalized: the user, its home (holding the bake's authorized key) and its
# sudo rule, so that no clone carries them. It runs through sudo as that very
# user, whose session ends with the VM. Argument: the user name.
set -euo pipefail
user=$1
if entry=$(getent passwd "$user"); then
	home=$(cut -d: -f6 <<<"$entry")
	# --force: the user is logged in, running this.
	userdel --force --remove "$user" 2>/dev/null || true
	if getent passwd "$user" >/dev/null; then
		echo "could not remove user $user" >&2
		exit 1
	fi
	case $home in
	/home/?*) rm -rf -- "$home" ;;
	esac
fi
rules=/etc/sudoers.d/90-cloud-init-users
if [ -f "$rules" ]; then
	sed -i -e "/^# User rules for ${user}\$/d" -e "/^${user} /d" "$rules"
fi
