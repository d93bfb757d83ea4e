#!/usr/bin/env bash
# Removes what Kiln installed: the toolchains that carry its marker, the
# default link and the go and gofmt links into the root, and its limits and
# sysctl files (systemd re-executes to drop the service limits).
# Arguments: toolchain root, marker file name, PAM limits file, systemd
# limits file, sysctl file.
set -e
root=$1 marker=$2 limits=$3 service_limits=$4 sysctls=$5
for d in "$root"/*/; do
	[ -L "${d%/}" ] && continue
	[ -f "$d$marker" ] && rm -rf "${d%/}"
done
rm -f "$root/current" "$root/.current.tmp"
rm -rf "$root"/.kiln-tmp-*
for l in /usr/local/bin/go /usr/local/bin/gofmt; do
	case "$(readlink "$l" 2>/dev/null)" in "$root"/*) rm -f "$l" ;; esac
done
rmdir "$root" 2>/dev/null || true
had_limits=0
[ -f "$service_limits" ] && had_limits=1
rm -f "$limits" "$service_limits" "$sysctls"
if [ "$had_limits" = 1 ] && command -v systemctl >/dev/null; then systemctl daemon-reexec; fi
