#!/usr/bin/env bash
# Brings up the libvirt test bed the acceptance tests use, on this machine:
# Debian packages, virtlogd and libvirtd started by hand (no systemd here), a
# directory storage pool, and the cached Debian 12 guest base image.
# Idempotent: on a warm machine it only checks and prints. It prints KEY=VALUE
# lines the tests read (and writes them to $KILN_CACHE/testbed.env).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cache=${KILN_CACHE:-$HOME/.cache/kiln}
pool=${KILN_TEST_POOL:-kiln-test}
pool_dir=${KILN_TEST_POOL_DIR:-/var/lib/kiln/pool}
uri=qemu:///system
log() { echo "testbed: $*" >&2; }
virsh_() { virsh -q -c "$uri" "$@"; }

# Guests the acceptance tests name with these prefixes (and the blank disks
# and images some of them make); a test killed by its timeout leaves them
# behind, and "stop" removes them.
test_guests='^kiln-(acc|host|readme|boot|img)-'
test_volumes='^(blank-)?kiln-(acc|host|readme|boot|img)-'

# stop removes the guests and volumes the tests left behind, then stops
# libvirtd and virtlogd.
stop() {
	if virsh_ version >/dev/null 2>&1; then
		local name vol
		for name in $(virsh_ list --all --name | grep -E "$test_guests" || true); do
			log "removing leftover guest $name"
			virsh_ destroy "$name" >/dev/null 2>&1 || true
			virsh_ undefine "$name" --nvram >/dev/null 2>&1 || virsh_ undefine "$name" >/dev/null 2>&1 || true
		done
		for vol in $(virsh_ vol-list "$pool" 2>/dev/null | awk '{print $1}' | grep -E "$test_volumes" || true); do
			virsh_ vol-delete "$vol" --pool "$pool" >/dev/null 2>&1 || true
		done
	fi
	for d in libvirtd virtlogd; do
		if pkill -x "$d"; then
			log "stopped $d"
		fi
	done
}
if [[ ${1:-} == stop ]]; then
	stop
	exit 0
fi

# One bring-up at a time: the two CLIs' test runs may call this together.
mkdir -p "$cache"
exec 8>"$cache/testbed.lock"
flock 8

source "$here/testbed-lib.sh"
# shellcheck is for the unit tests, which check the host scripts with it.
install_missing libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients qemu-system-x86 \
	qemu-utils ipxe-qemu seabios debootstrap grub-pc-bin grub2-common e2fsprogs fdisk openssh-client \
	shellcheck

# The accounts and directories the Debian packages expect their systemd units
# and postinst steps to have made.
for g in kvm libvirt libvirt-qemu; do
	getent group "$g" >/dev/null || groupadd --system "$g"
done
getent passwd libvirt-qemu >/dev/null || useradd --system --no-create-home -g libvirt-qemu -G kvm libvirt-qemu
mkdir -p /var/log/libvirt/qemu /var/lib/libvirt/qemu /var/cache/libvirt /run/libvirt

# QEMU runs as root without a security driver: there is no systemd and no udev
# here. Whether guests use KVM or software emulation is probed below.
conf=/etc/libvirt/qemu.conf
want='user = "root"
group = "root"
security_driver = "none"'
if ! grep -q '^# kiln test bed' "$conf"; then
	printf '\n# kiln test bed\n%s\n' "$want" >>"$conf"
fi

# The daemons must not inherit the bring-up lock (fd 8), or it is never released.
if ! pgrep -x virtlogd >/dev/null; then
	log "starting virtlogd"
	virtlogd -d 8>&-
fi
if ! virsh_ version >/dev/null 2>&1; then
	pkill -x libvirtd 2>/dev/null && sleep 1 || true
	log "starting libvirtd"
	libvirtd -d 8>&-
	for _ in $(seq 1 50); do
		virsh_ version >/dev/null 2>&1 && break
		sleep 0.2
	done
	virsh_ version >/dev/null
fi

if ! virsh_ pool-info "$pool" >/dev/null 2>&1; then
	log "defining storage pool $pool at $pool_dir"
	mkdir -p "$pool_dir"
	virsh_ pool-define-as "$pool" dir --target "$pool_dir" >/dev/null
	virsh_ pool-autostart "$pool" >/dev/null
fi
pool_running() { [[ $(virsh_ pool-info "$pool") =~ State:[[:space:]]+running ]]; }
# A restarted libvirtd may be starting the autostart pool itself.
if ! pool_running; then
	virsh_ pool-start "$pool" >/dev/null 2>&1 || pool_running
fi

image=$("$here/guest-image.sh")
base=debian12-base.qcow2
# The base volume is a copy of the cached image, refreshed when the image changes.
stamp=$cache/testbed-$pool-$base.source
if [[ ! -f $pool_dir/$base || "$(cat "$stamp" 2>/dev/null)" != "$image" ]]; then
	log "installing base volume $base"
	cp --sparse=always "$image" "$pool_dir/$base.tmp"
	mv "$pool_dir/$base.tmp" "$pool_dir/$base"
	echo "$image" >"$stamp"
fi
virsh_ pool-refresh "$pool" >/dev/null

mkdir -p "$cache"
domain_type=$(bash "$here/domain-type.sh" "$image")
cat >"$cache/testbed.env" <<ENV
KILN_TEST_LIBVIRT_URI=$uri
KILN_TEST_POOL=$pool
KILN_TEST_BASE_VOLUME=$base
KILN_TEST_BASE_IMAGE=$image
KILN_TEST_DOMAIN_TYPE=$domain_type
ENV
cat "$cache/testbed.env"
