#!/usr/bin/env bash
# Builds the Debian 12 guest base image the acceptance tests boot: debootstrap, an
# MBR disk with one ext4 partition, GRUB in the MBR (so kernel command-line changes
# are real), openssh-server, cloud-init (NoCloud) and qemu-guest-agent.
# The image is cached by the hash of its recipe (this script from the recipe
# marker on); the path is printed on stdout.
set -euo pipefail

cache=${KILN_CACHE:-$HOME/.cache/kiln}
mirror=${KILN_DEBIAN_MIRROR:-http://deb.debian.org/debian}
key=$(sed -n '/^# --- recipe/,$p' "$0" | sha256sum | cut -c1-16)
out=$cache/images/debian12-$key.qcow2
log() { echo "guest-image: $*" >&2; }
if [[ -f $out ]]; then
	log "cached: $out"
	echo "$out"
	exit 0
fi
log "not cached ($out): building it, about 10 minutes on a fresh machine"

# --- recipe: everything below makes the image; a change here makes a new one.
mkdir -p "$cache/images" "$cache/tmp"
# One build at a time; a caller that waited finds the image built.
exec 9>"$cache/images/.build.lock"
flock 9
if [[ -f $out ]]; then
	echo "$out"
	exit 0
fi
work=$(mktemp -d "$cache/tmp/image.XXXXXX")
disk_loop="" part_loop=""
cleanup() {
	set +e
	cleanup_mounts
	mountpoint -q "$work/mnt" && umount "$work/mnt"
	[[ -n $part_loop ]] && losetup -d "$part_loop"
	[[ -n $disk_loop ]] && losetup -d "$disk_loop"
	rm -rf "$work"
}
trap cleanup EXIT

root=$work/root
chroot_mounts=()
cleanup_mounts() {
	local m
	for m in "${chroot_mounts[@]}"; do umount -l "$m" 2>/dev/null || true; done
	chroot_mounts=()
}
# Downloaded packages are kept between builds so a rebuild does not fetch again.
debs=$cache/debootstrap-debs
mkdir -p "$debs"
log "debootstrap bookworm from $mirror"
debootstrap --variant=minbase --cache-dir="$debs" \
	--include=systemd-sysv,udev,dbus,kmod,procps,iproute2,openssh-server,sudo,ca-certificates,curl,e2fsprogs,gnupg \
	bookworm "$root" "$mirror" >"$work/debootstrap.log" 2>&1 || {
	tail -n 30 "$work/debootstrap.log" "$root/debootstrap/debootstrap.log" >&2 || true
	exit 1
}

log "installing the kernel, GRUB, cloud-init and the guest agent"
# The cloud kernel has the virtio drivers and a fifth of the generic kernel's
# modules; an initramfs of only the modules the root disk needs is a tenth of
# the default one. Both matter under software emulation, where loading and
# probing them was a third of the boot.
mkdir -p "$root/etc/initramfs-tools/conf.d"
echo MODULES=list >"$root/etc/initramfs-tools/conf.d/kiln.conf"
for m in proc sys dev; do
	mount --bind "/$m" "$root/$m"
	chroot_mounts+=("$root/$m")
done
# No service may start inside the build chroot.
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod +x "$root/usr/sbin/policy-rc.d"
cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
cp "$debs"/*.deb "$root/var/cache/apt/archives/" 2>/dev/null || true
if ! DEBIAN_FRONTEND=noninteractive chroot "$root" sh -c '
	apt-get update -qq &&
	apt-get install -y -qq --no-install-recommends linux-image-cloud-amd64 initramfs-tools \
		grub-pc-bin grub2-common cloud-init cloud-guest-utils qemu-guest-agent systemd-resolved &&
	printf "virtio_pci\\nvirtio_blk\\n" >>/etc/initramfs-tools/modules &&
	update-initramfs -u -k all' >"$work/apt.log" 2>&1; then
	tail -n 40 "$work/apt.log" >&2
	exit 1
fi
cp -n "$root"/var/cache/apt/archives/*.deb "$debs/" 2>/dev/null || true
rm -f "$root/usr/sbin/policy-rc.d" "$root/etc/resolv.conf"
cleanup_mounts

uuid=$(cat /proc/sys/kernel/random/uuid)
kernel=$(basename "$(ls "$root"/boot/vmlinuz-* | sort -V | tail -n 1)")
initrd=initrd.img-${kernel#vmlinuz-}
# no_timer_check: on a loaded machine the emulated timer can miss the kernel's
# early check, and the guest panicked ("IO-APIC + timer doesn't work!") on a
# reboot; cloud images of other distributions boot with it for that reason.
cmdline="console=ttyS0,115200n8 net.ifnames=0 no_timer_check"

log "configuring the root file system"
cat >"$root/etc/fstab" <<FSTAB
UUID=$uuid / ext4 errors=remount-ro 0 1
FSTAB
echo debian >"$root/etc/hostname"
# systemd-networkd brings up what cloud-init renders for it, in seconds where
# ifupdown's dhclient took ten; resolved serves the names DHCP gives.
chroot "$root" systemctl enable -q systemd-networkd systemd-resolved
# Timers that fire on a guest's first boot (they have never run) and compete
# with its builds: apt's daily update and upgrade, the dpkg database backup,
# file system scrubbing and trimming. A build host is changed by its owner.
chroot "$root" systemctl disable -q apt-daily.timer apt-daily-upgrade.timer dpkg-db-backup.timer \
	e2scrub_all.timer e2scrub_reap.service fstrim.timer
ln -sf ../run/systemd/resolve/stub-resolv.conf "$root/etc/resolv.conf"
# Each cloud-init module costs seconds of Python under emulation: keep those a
# build host's user-data uses (identity, users and keys, files, packages,
# commands, growing the root disk) and drop the rest (locale generation, GRUB's
# debconf, apt sources, console fingerprints).
cat >"$root/etc/cloud/cloud.cfg.d/90-kiln.cfg" <<CLOUD
datasource_list: [NoCloud, None]
system_info:
  network:
    renderers: [networkd]
cloud_init_modules: [bootcmd, write_files, growpart, resizefs, set_hostname, update_hostname, update_etc_hosts, users_groups, ssh]
cloud_config_modules: [set_passwords, timezone, runcmd]
cloud_final_modules: [package_update_upgrade_install, write_files_deferred, scripts_per_once, scripts_per_boot, scripts_per_instance, scripts_user, power_state_change]
CLOUD
# cloud-init's work is done on the first boot (Kiln's seed gives a VM its identity
# once), but its Python stages take a minute of every later boot under software
# emulation: the first boot's last stage turns it off. A golden image baked from
# such a guest removes the file again.
mkdir -p "$root/var/lib/cloud/scripts/per-instance"
cat >"$root/var/lib/cloud/scripts/per-instance/kiln-first-boot-only" <<'ONCE'
#!/bin/sh
touch /etc/cloud/cloud-init.disabled
ONCE
chmod 0755 "$root/var/lib/cloud/scripts/per-instance/kiln-first-boot-only"
cat >"$root/etc/default/grub" <<GRUB
GRUB_DEFAULT=0
GRUB_TIMEOUT=0
GRUB_DISTRIBUTOR=Debian
GRUB_CMDLINE_LINUX_DEFAULT=""
GRUB_CMDLINE_LINUX="$cmdline"
GRUB_TERMINAL=serial
GRUB_SERIAL_COMMAND="serial --speed=115200"
GRUB
# Every SSH login ran the message-of-the-day scripts through PAM, about a
# second of emulated CPU each (a login costs four in all), and the tests log
# in hundreds of times.
sed -i '/pam_motd\.so/d' "$root/etc/pam.d/sshd"
# Every guest gets its own host keys (cloud-init writes them) and machine id.
rm -f "$root"/etc/ssh/ssh_host_*
: >"$root/etc/machine-id"
rm -f "$root/var/lib/dbus/machine-id"
chroot "$root" apt-get clean
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/log/*.log

log "building the disk"
raw=$work/disk.raw
truncate -s 3G "$raw"
echo 'start=2048, type=83, bootable' | sfdisk -q "$raw"
part=$work/part.ext4
truncate -s $((3 * 1024 - 1))M "$part"
mkfs.ext4 -q -U "$uuid" -L kilnroot -d "$root" "$part"
dd if="$part" of="$raw" bs=1M seek=1 conv=notrunc,sparse status=none
rm -f "$part"

log "installing GRUB"
disk_loop=$(losetup -f --show "$raw")
part_loop=$(losetup -f --show -o $((2048 * 512)) "$raw")
mkdir -p "$work/mnt"
mount "$part_loop" "$work/mnt"
grub-install --target=i386-pc --boot-directory="$work/mnt/boot" \
	--modules="part_msdos ext2 search_fs_uuid" "$disk_loop" >&2
cat >"$work/mnt/boot/grub/grub.cfg" <<CFG
serial --speed=115200
terminal_input serial
terminal_output serial
set timeout=0
search --no-floppy --fs-uuid --set=root $uuid
menuentry 'Debian GNU/Linux' {
	linux /boot/$kernel root=UUID=$uuid ro $cmdline
	initrd /boot/$initrd
}
CFG
umount "$work/mnt"
losetup -d "$part_loop" && part_loop=""
losetup -d "$disk_loop" && disk_loop=""

log "converting to qcow2"
qemu-img convert -c -O qcow2 "$raw" "$work/image.qcow2"
mv "$work/image.qcow2" "$out"
echo "$out"
