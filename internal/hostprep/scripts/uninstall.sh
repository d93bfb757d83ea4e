#!/usr/bin/env bash
# Removes what is left of Kiln's once a resource let go of its toolchains
# (claims.sh): the default link and the go and gofmt links, when the toolchain
# they select is gone; the root, when no resource holds anything in it; and
# the resource's limits and sysctl files (systemd re-executes to drop the
# service limits).
# Arguments: toolchain root, then the files to remove.
set -e
root=$1
shift
if [ -L "$root/current" ] && [ ! -e "$root/current/bin/go" ]; then
	rm -f "$root/current" "$root/.current.tmp"
	for l in /usr/local/bin/go /usr/local/bin/gofmt; do
		case "$(readlink "$l" 2>/dev/null)" in "$root"/*) rm -f "$l" ;; esac
	done
fi
if ! compgen -G "$root/.kiln-owners/*" >/dev/null; then
	rm -rf "$root/.kiln-owners" "$root"/.kiln-tmp-*
	rmdir "$root" 2>/dev/null || true
fi
reexec=0
for f in "$@"; do
	case $f in /etc/systemd/*) [ -f "$f" ] && reexec=1 ;; esac
	rm -f "$f"
done
if [ "$reexec" = 1 ] && command -v systemctl >/dev/null; then systemctl daemon-reexec; fi
