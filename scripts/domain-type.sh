#!/usr/bin/env bash
# Prints the libvirt domain type guests should use on this machine, "kvm" or
# "qemu", decided by what boots rather than by what libvirt offers: /dev/kvm
# may be absent, or be PVM (kvm_pvm), which runs only kernels built for it and
# leaves a stock guest hanging after GRUB. With a usable-looking /dev/kvm, the
# base image IMAGE is booted once under KVM with QEMU directly (a throwaway
# snapshot) and KVM is chosen only if the kernel prints within the probe time.
# The verdict is cached per boot of this machine and image.
#
#   bash scripts/domain-type.sh IMAGE
set -euo pipefail

image=$1
cache=${KILN_CACHE:-$HOME/.cache/kiln}
probe_seconds=${KILN_KVM_PROBE_SECONDS:-60}
log() { echo "domain-type: $*" >&2; }

verdict() {
	log "$1: using $2"
	echo "$2"
}

if [[ -n ${KILN_TEST_DOMAIN_TYPE:-} ]]; then
	verdict "KILN_TEST_DOMAIN_TYPE is set" "$KILN_TEST_DOMAIN_TYPE"
	exit 0
fi
if [[ ! -c /dev/kvm ]]; then
	verdict "no /dev/kvm" qemu
	exit 0
fi
if [[ -d /sys/module/kvm_pvm ]]; then
	verdict "/dev/kvm is PVM (kvm_pvm), which boots only PVM guest kernels" qemu
	exit 0
fi

key=$( (cat /proc/sys/kernel/random/boot_id; echo "$image") | sha256sum | cut -c1-16)
memo=$cache/domain-type-$key
if [[ -f $memo ]]; then
	verdict "probed earlier on this boot" "$(cat "$memo")"
	exit 0
fi

log "probing a KVM boot of the base image (up to ${probe_seconds}s)"
work=$(mktemp -d)
trap 'kill "$qemu_pid" 2>/dev/null || true; rm -rf "$work"' EXIT
qemu_pid=""
qemu-system-x86_64 -accel kvm -m 512 -display none -no-reboot \
	-snapshot -drive "file=$image,if=virtio" -nic none \
	-serial "file:$work/serial.log" >"$work/qemu.log" 2>&1 &
qemu_pid=$!
type=qemu
for _ in $(seq 1 "$probe_seconds"); do
	if grep -q 'Linux version' "$work/serial.log" 2>/dev/null; then
		type=kvm
		break
	fi
	kill -0 "$qemu_pid" 2>/dev/null || break
	sleep 1
done
if [[ $type == qemu ]]; then
	log "the kernel printed nothing under KVM; last lines: $(tail -c 300 "$work/serial.log" "$work/qemu.log" 2>/dev/null | tr -d '\r' | tr '\n' ' ')"
fi
echo "$type" >"$memo"
verdict "probe" "$type"
