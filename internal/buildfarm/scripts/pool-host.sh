#!/usr/bin/env bash
# Registers a host in a build pool, or checks that it still is: the
# unprivileged build user (no password, no sudo) with its own workspace, module
# cache and build cache, and the pool's key authorized for it and nothing else.
# Runs as root. Prints "home=", "workspace=" and "key=" (the authorized key).
#
# Arguments: mode ("register", "check" or "forget"), build user, workspace (""
# for ~user/workspace), the pool's public key (authorized_keys format).
set -euo pipefail
mode=$1 user=$2 workspace=$3 key=$4

if ! id -u "$user" >/dev/null 2>&1; then
	case $mode in
	register) useradd --create-home --shell /bin/bash --user-group "$user" ;;
	*) echo "user=missing"; exit 0 ;;
	esac
fi
home=$(getent passwd "$user" | cut -d: -f6)
workspace=${workspace:-$home/workspace}
keys=$home/.ssh/authorized_keys
case $mode in
register)
	usermod -p '*' "$user" # key logins only
	install -d -o "$user" -g "$user" -m 0700 "$home/.ssh"
	# Each directory is named, so each is the build user's.
	install -d -o "$user" -g "$user" -m 0750 "$home/go" "$home/go/pkg" "$home/go/pkg/mod" \
		"$home/.cache" "$home/.cache/go-build"
	install -d -o "$user" -g "$user" -m 0750 "$workspace" "$workspace/slots" "$workspace/builds"
	printf 'restrict %s\n' "$key" >"$keys.kiln"
	chown "$user:" "$keys.kiln"
	chmod 0600 "$keys.kiln"
	mv -f "$keys.kiln" "$keys"
	;;
forget)
	rm -f "$keys"
	;;
esac
echo "user=present"
echo "home=$home"
echo "workspace=$workspace"
if [ -f "$keys" ]; then
	while read -r line; do echo "key=${line#restrict }"; done <"$keys"
fi
