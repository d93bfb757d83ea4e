#!/usr/bin/env bash
# Benchmarks kiln_image against Packer 1.6.6's qemu builder (Debian's packer):
# the same golden image baked both ways, one after the other, from the test
# bed's base image (scripts/testbed.sh: its pool, base volume and domain type).
# The image is a Go build host: Go 1.24.4 from a signed dl mirror, swap off,
# nofile 65536, cgroup v2 checked; then generalized and shut down.
#
#   packer    packer build: boots the base qcow2 (a copy, grown to 4 GiB) with
#             a cloud-init seed for its SSH communicator, runs the provisioning
#             (scripts/bench/image/provision.sh) and Kiln's own generalize
#             script (internal/image/scripts/generalize.sh, every step on),
#             shuts down and compacts its qcow2 output; accelerator tcg when
#             the test bed's domain type is qemu
#   kiln      one configuration: kiln_libvirt_vm + kiln_go_host, then
#             kiln_image from that VM (source deleted after the bake), in two
#             timed applies: the VM and host provisioning, then the bake
#             (with its bake_seconds output); toolchain cache empty at start
#   no-op     terraform plan -detailed-exitcode of the baked image (must be 0),
#             once the source has left the configuration, as the docs' removed
#             blocks make it
#   from base kiln_image from the base volume plus the same provisioning, in
#             one apply: Kiln boots, provisions, bakes and removes a transient
#             VM (toolchain cache empty at start)
#   boot      two kiln_libvirt_vms, one after the other, each created when its
#             SSH server answers with its pinned host key: one from the plain
#             base volume, one from the image, which then runs go version
#   incremental  a second Go version added: Packer rebuilds from scratch, as
#             its template starts from the base image; Kiln re-plans (timed)
#             and re-bakes from a VM booted from its first image, whose
#             kiln_go_host finds Go 1.24.4 intact and installs the new one only
#
# Both outputs are measured alike: allocation on disk and virtual size
# (qemu-img info), and whether they are generalized: machine-id empty, no SSH
# host keys, no cloud-init instance state, the manifest inside; read from the
# image file itself (a raw copy read by debugfs, nothing booted or mounted).
# The 1-minute load average is sampled every 10 s through the run, with the
# QEMU processes of others beside the bench's: the guests share the machine.
#
# The mirror is python3 -m http.server on 127.0.0.1 (guests reach it as
# 10.0.2.2), serving tarballs repacked from the golang.org/toolchain modules
# (scripts/bench/gohost/make-tarball.py) and signed with a throwaway OpenPGP
# key. Work files are kept in ~/.cache/kiln/bench-image, results in its
# results.env and table.txt; the bench's VMs, volumes and Packer outputs (all
# named kiln-img-bench-<run>) are removed on exit.
#
#   bash scripts/image-bench.sh            # the whole bench, then the table
#   bash scripts/image-bench.sh table      # print the table of the last results
#   bash scripts/image-bench.sh destroy    # remove what a kept run left
#   bash scripts/image-bench.sh all <terraform-or-tofu-binary>
#
# KILN_BENCH_KEEP=1 keeps the images on exit; KILN_BENCH_MIRROR_PORT sets the
# mirror's port.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
cache=${KILN_CACHE:-$HOME/.cache/kiln}
work=$cache/bench-image
terraform=$(realpath -m "${2:-$repo/.tools/bin/terraform}")
generalize=$repo/internal/image/scripts/generalize.sh
go_version=1.24.4
go_added=1.23.10
mirror_port=${KILN_BENCH_MIRROR_PORT:-18474}
disk_gib=4
key=$work/id_ed25519
results=$work/results.env
mirror_pid="" sampler_pid="" prefix=""

bench=image-bench
# shellcheck source=scripts/bench-lib.sh
source "$here/bench-lib.sh"

# timed KEY LABEL CMD...: record how long CMD took as KEY, and the mean load
# while it ran as load_KEY.
timed() {
	local name=$1 t from=$EPOCHSECONDS
	label=$2
	shift 2
	t=$(seconds "$@")
	record "$name" "$t"
	record "load_$name" "$(mean_load "$from")"
}


# sample_load appends, every 10 s: the time, the 1-minute load, and the QEMU
# processes of others (not this run's guests nor Packer's) and of this run.
sample_load() {
	local all mine
	while :; do
		all=$(pgrep -c -f '^[^ ]*qemu-system' || true)
		mine=$(pgrep -c -f "^[^ ]*qemu-system.*($prefix|$work)" || true)
		echo "$EPOCHSECONDS $(cut -d' ' -f1 /proc/loadavg) $((all - mine)) $mine"
		sleep 10
	done
}

mean_load() { # mean_load FROM: the mean sampled load since FROM (epoch seconds)
	awk -v from="$1" '$1 >= from {s += $2; n++} END {if (n) printf "%.1f", s / n; else print "-"}' "$work/load.log"
}

setup() {
	mkdir -p "$work/logs" "$work/tf"
	bash "$here/testbed.sh" >/dev/null
	# shellcheck source=/dev/null
	source "$cache/testbed.env"
	# shellcheck source=scripts/testbed-lib.sh
	source "$here/testbed-lib.sh"
	# Packer makes the seed ISO with mkisofs; debugfs reads the images.
	local missing=() pair
	for pair in packer:packer mkisofs:genisoimage jq:jq bc:bc gpg:gnupg python3:python3 curl:curl \
		qemu-img:qemu-utils debugfs:e2fsprogs sfdisk:fdisk; do
		command -v "${pair%%:*}" >/dev/null || missing+=("${pair#*:}")
	done
	((${#missing[@]} == 0)) || install_missing "${missing[@]}"
	[[ -x $terraform ]] || bash "$here/tools.sh" terraform
	log "building the provider"
	# shellcheck source=scripts/dev-provider.sh
	source "$here/dev-provider.sh"
	dev_provider "$work"
	export LIBVIRT_DEFAULT_URI=$KILN_TEST_LIBVIRT_URI
	[[ -f $key ]] || ssh-keygen -q -t ed25519 -N '' -C kiln-image-bench -f "$key"
	base_path=$(virsh -q vol-path --pool "$KILN_TEST_POOL" "$KILN_TEST_BASE_VOLUME")
	case $KILN_TEST_DOMAIN_TYPE in
	kvm) accelerator=kvm ;;
	*) accelerator=tcg ;;
	esac
}

# make_mirror writes the mirror directory: both tarballs (repacked from the
# toolchain modules once and kept), their detached signatures by a throwaway
# key, the armored public key, its fingerprint and a go.dev style dl.json.
make_mirror() {
	local m=$work/mirror zip v module tarball files=()
	mkdir -p "$m"
	for v in "$go_version" "$go_added"; do
		tarball=go$v.linux-amd64.tar.gz module=golang.org/toolchain@v0.0.1-go$v.linux-amd64
		if [[ ! -f $m/$tarball ]]; then
			log "fetching $module from the module proxy"
			zip=$(cd "$work" && GOFLAGS=-mod=mod go mod download -json "$module" | jq -r .Zip)
			log "repacking it as $tarball"
			python3 "$here/bench/gohost/make-tarball.py" "$zip" "$module/" "$m/$tarball"
		fi
	done
	export GNUPGHOME=$work/gnupg
	if [[ ! -f $m/signing-key.asc || ! -f $work/fingerprint ]]; then
		log "making a throwaway signing key"
		rm -rf "$GNUPGHOME"
		mkdir -m 700 "$GNUPGHOME"
		gpg --batch --quiet --passphrase '' --quick-gen-key 'Kiln Bench <bench@kiln.test>' ed25519 sign never
		gpg --batch --armor --export bench@kiln.test >"$m/signing-key.asc"
		gpg --batch --with-colons --fingerprint bench@kiln.test | awk -F: '$1 == "fpr" {print $10; exit}' >"$work/fingerprint"
	fi
	for v in "$go_version" "$go_added"; do
		tarball=go$v.linux-amd64.tar.gz
		if [[ ! -f $m/$tarball.asc || $m/$tarball -nt $m/$tarball.asc ]]; then
			gpg --batch --quiet --yes --armor --detach-sign -o "$m/$tarball.asc" "$m/$tarball"
		fi
		sha256[$v]=$(sha256sum "$m/$tarball" | cut -d' ' -f1)
		files+=("$(jq -n --arg v "go$v" --arg f "$tarball" --arg s "${sha256[$v]}" --argjson n "$(stat -c %s "$m/$tarball")" \
			'{version: $v, stable: true, files: [{filename: $f, os: "linux", arch: "amd64", version: $v, sha256: $s, size: $n, kind: "archive"}]}')")
	done
	unset GNUPGHOME
	fingerprint=$(cat "$work/fingerprint")
	[[ $fingerprint =~ ^[0-9A-F]{40}$ ]] || die "bad key fingerprint '$fingerprint'"
	printf '%s\n' "${files[@]}" | jq -s . >"$m/dl.json"
}

# image_facts KEY PATH records the image's allocation and virtual size, and
# what generalizing left in it, read from a raw copy with debugfs.
image_facts() {
	local name=$1 path=$2 raw=$work/inspect.raw off info fs keys id manifest
	info=$(qemu-img info -U --output=json "$path")
	record "${name}_alloc_bytes" "$(jq '."actual-size"' <<<"$info")"
	record "${name}_virtual_bytes" "$(jq '."virtual-size"' <<<"$info")"
	record "${name}_backing" "$(jq -r '."backing-filename" // "none"' <<<"$info")"
	# The other side of compression: Packer's output as its disk_compression
	# makes it (qemu-img convert -c, zlib), Kiln's zstd image written plain,
	# as compress = "none" leaves it.
	local converted=$work/converted.qcow2 opts=()
	[[ $name == packer_* ]] && opts=(-c)
	qemu-img convert -U "${opts[@]}" -O qcow2 "$path" "$converted"
	record "${name}_converted_bytes" "$(qemu-img info -U --output=json "$converted" | jq '."actual-size"')"
	rm -f "$converted"
	qemu-img convert -U -O raw "$path" "$raw"
	off=$(($(sfdisk -J "$raw" | jq '.partitiontable.partitions[0].start') * 512))
	fs="$raw?offset=$off"
	dbg() { debugfs -R "$1" "$fs" 2>/dev/null; }
	# debugfs prints nothing for a file that is absent, as for an empty one.
	id=$(dbg 'cat /etc/machine-id' | tr -d '\n')
	if [[ -z $id ]]; then
		id=absent
		[[ -n $(dbg 'ls -p /etc' | awk -F/ '$6 == "machine-id"') ]] && id=empty
	fi
	record "${name}_machine_id" "$id"
	keys=$(dbg 'ls -p /etc/ssh' | awk -F/ '$6 ~ /^ssh_host_/' | wc -l)
	record "${name}_host_keys" "$keys"
	record "${name}_cloud_init_instances" "$(dbg 'ls -p /var/lib/cloud/instances' | awk -F/ '$6 != "" && $6 != "." && $6 != ".."' | wc -l)"
	manifest=$(dbg 'cat /etc/kiln/image.json' | jq -c '[.toolchains[].version]' 2>/dev/null || true)
	record "${name}_manifest" "${manifest:-none}"
	rm -f "$raw"
}

generalized() { # generalized KEY: yes when the image holds no identity of its source
	local id=${1}_machine_id k=${1}_host_keys c=${1}_cloud_init_instances
	[[ -z ${!id:-} ]] && {
		echo -
		return
	}
	[[ ${!id} =~ ^(empty|absent)$ && ${!k} == 0 && ${!c} == 0 ]] && echo yes || echo no
}

# packer_build KEY VERSION...: a packer build of the image with these
# toolchains, from the base image, its output measured.
packer_build() {
	local name=$1 dir=$work/packer/$1 v toolchains=""
	shift
	for v in "$@"; do toolchains+="$v=${sha256[$v]} "; done
	rm -rf "$dir"
	mkdir -p "$dir/seed"
	printf '#cloud-config\nhostname: %s\nmanage_etc_hosts: true\nssh_authorized_keys: ["%s"]\n' \
		"$prefix-packer" "$(cat "$key.pub")" >"$dir/seed/user-data"
	printf 'instance-id: %s\nlocal-hostname: %s\n' "$prefix-$name" "$prefix-packer" >"$dir/seed/meta-data"
	jq -n --arg base "$base_path" --arg sum "sha256:$(sha256sum "$base_path" | cut -d' ' -f1)" --arg out "$dir/out" \
		--arg vm "$prefix-$name.qcow2" --arg accel "$accelerator" --arg disk "$((disk_gib * 1024))M" --arg key "$key" \
		--arg console "file:$dir/console.log" --arg seed "$dir/seed" --arg keyring "$work/mirror/signing-key.asc" \
		--arg provision "$here/bench/image/provision.sh" --arg generalize "$generalize" \
		--arg mirror "http://10.0.2.2:$mirror_port/" --arg toolchains "${toolchains% }" --arg fpr "$fingerprint" '{
		builders: [{
			type: "qemu", vm_name: $vm, output_directory: $out,
			iso_url: $base, iso_checksum: $sum, disk_image: true, use_backing_file: false,
			format: "qcow2", disk_size: $disk, disk_interface: "virtio", net_device: "virtio-net",
			disk_discard: "unmap", disk_detect_zeroes: "unmap",
			accelerator: $accel, cpus: 2, memory: 1024, headless: true, vnc_bind_address: "127.0.0.1",
			qemuargs: [["-serial", $console]],
			cd_files: [($seed + "/user-data"), ($seed + "/meta-data")], cd_label: "cidata",
			boot_wait: "1s",
			communicator: "ssh", ssh_username: "debian", ssh_private_key_file: $key,
			ssh_timeout: "20m", ssh_handshake_attempts: 100,
			shutdown_command: "sudo shutdown -P now", shutdown_timeout: "10m"
		}],
		provisioners: [
			{type: "file", source: $keyring, destination: "/tmp/signing-key.asc"},
			{type: "shell", script: $provision, execute_command: "sudo env {{ .Vars }} bash {{ .Path }}",
			 environment_vars: ["MIRROR=" + $mirror, "TOOLCHAINS=" + $toolchains, "FPR=" + $fpr, "KEYRING=/tmp/signing-key.asc"]},
			{type: "shell", script: $generalize,
			 execute_command: "sudo bash {{ .Path }} true true true true true true </tmp/image.json"}
		]
	}' >"$dir/template.json"
	log "packer: build with Go $* from the base image"
	PACKER_CACHE_DIR=$work/packer/cache CHECKPOINT_DISABLE=1 \
		timed "packer_${name}_seconds" "packer-$name" packer build -color=false -timestamp-ui "$dir/template.json"
	image_facts "packer_$name" "$dir/out/$prefix-$name.qcow2"
}

# kiln CMD ARGS... runs terraform on the bench's configuration and state.
kiln() {
	local command=$1
	shift
	case $command in
	output | state) "$terraform" -chdir="$work/tf" "$command" "$@" ;;
	*) "$terraform" -chdir="$work/tf" "$command" -input=false -no-color -var-file="$work/kiln.tfvars.json" "$@" ;;
	esac
}

# write_kiln_config writes the configuration's fixed part: provider,
# variables, and the image, whose source comes from local.source.
write_kiln_config() {
	rm -rf "$work/tf"
	mkdir -p "$work/tf"
	cat >"$work/tf/main.tf" <<'HCL'
terraform {
  required_providers {
    kiln = {
      source = "kilnhq/kiln"
    }
  }
}

variable "pool" {
  type = string
}

variable "domain_type" {
  type = string
}

variable "ssh_public_key" {
  type = string
}

variable "private_key_file" {
  type = string
}

variable "mirror_url" {
  type = string
}

variable "keyring_file" {
  type = string
}

variable "key_fingerprint" {
  type = string
}

variable "image_name" {
  type = string
}

variable "source_name" {
  type = string
}

variable "base_volume" {
  type = string
}

variable "go_versions" {
  type = list(string)
}

# The source once it has left the configuration (baked.tf).
variable "baked" {
  type = object({
    vm_id      = string
    toolchains = list(object({ version = string, archive_sha256 = string, go_binary_sha256 = string }))
    hardening  = string
  })
  default = null
}

provider "kiln" {
  libvirt {}
  ssh {
    user        = "debian"
    private_key = file(var.private_key_file)
  }
}

resource "kiln_image" "go" {
  name = var.image_name

  # The source VM's pool, a standalone qcow2 recompressed with zstd on the
  # libvirt host: the smallest image Kiln makes.
  libvirt {
    compress = "zstd"
  }

  source {
    vm_id      = local.source.vm_id
    toolchains = local.source.toolchains
  }

  inputs = {
    hardening = local.source.hardening
  }

  source_after_bake = "deleted"

  # A new image is baked from a VM on the old one before the old one goes.
  lifecycle {
    create_before_destroy = true
  }
}

# In both stages, so that taking the source out changes no output.
output "source" {
  value = local.source
}

output "image" {
  value = {
    volume       = kiln_image.go.volume
    fingerprint  = kiln_image.go.fingerprint
    allocation   = kiln_image.go.allocation
    virtual_size = kiln_image.go.virtual_size
    bake_seconds = kiln_image.go.bake_seconds
  }
}
HCL
}

# kiln_source writes the source VM and its Go host (source.tf): booted from
# BASE, provisioned with the VERSIONs.
kiln_source() {
	local name=$1 base=$2
	shift 2
	rm -f "$work/tf/baked.tf"
	cat >"$work/tf/source.tf" <<'HCL'
resource "kiln_libvirt_vm" "src" {
  name          = var.source_name
  pool          = var.pool
  domain_type   = var.domain_type
  base_volume   = var.base_volume
  vcpu          = 2
  memory_mib    = 1024
  disk_size_gib = 4

  network_interface {
    user_mode = true
  }

  cloud_init {
    hostname            = var.source_name
    ssh_authorized_keys = [var.ssh_public_key]
  }

  timeouts {
    create = "20m"
  }
}

resource "kiln_go_host" "src" {
  ssh {
    host     = kiln_libvirt_vm.src.ssh_host
    port     = kiln_libvirt_vm.src.ssh_port
    host_key = kiln_libvirt_vm.src.ssh_host_public_key
  }

  go {
    versions        = var.go_versions
    source          = "dl"
    mirror_url      = var.mirror_url
    index_url       = "${var.mirror_url}dl.json"
    keyring         = file(var.keyring_file)
    key_fingerprint = var.key_fingerprint
  }

  hardening {
    swap_off = true
    nofile   = 65536
  }

  # The bake deletes the VM: there is nothing to remove afterwards.
  remove_on_destroy = false
}

locals {
  source = {
    vm_id      = kiln_libvirt_vm.src.id
    toolchains = kiln_go_host.src.installed
    hardening  = jsonencode(kiln_go_host.src.hardening)
  }
}
HCL
	jq -n --arg pool "$KILN_TEST_POOL" --arg type "$KILN_TEST_DOMAIN_TYPE" --arg pub "$(cat "$key.pub")" --arg key "$key" \
		--arg mirror "http://127.0.0.1:$mirror_port/" --arg keyring "$work/mirror/signing-key.asc" --arg fpr "$fingerprint" \
		--arg image "$prefix" --arg src "$prefix-$name" --arg base "$base" \
		'{pool: $pool, domain_type: $type, ssh_public_key: $pub, private_key_file: $key, mirror_url: $mirror,
		  keyring_file: $keyring, key_fingerprint: $fpr, image_name: $image, source_name: $src, base_volume: $base,
		  go_versions: $ARGS.positional}' --args "$@" >"$work/kiln.tfvars.json"
}

# kiln_baked takes the source out of the configuration after its bake (the
# bake deleted it), as the removed blocks of the docs do: the image keeps the
# source's recorded values.
kiln_baked() {
	local baked
	baked=$(kiln output -json source)
	kiln state rm kiln_go_host.src kiln_libvirt_vm.src >/dev/null
	rm -f "$work/tf/source.tf"
	echo 'locals { source = var.baked }' >"$work/tf/baked.tf"
	jq --argjson b "$baked" '.baked = $b' "$work/kiln.tfvars.json" >"$work/kiln.tfvars.json.tmp"
	mv "$work/kiln.tfvars.json.tmp" "$work/kiln.tfvars.json"
}

created() { # created ADDRESS LOG: seconds of "ADDRESS: Creation complete after 1m53s"
	grep -o "^$1: Creation complete after [0-9hms]*" "$2" | sed 's/.* after //' |
		awk '{n = 0; s = $0; while (match(s, /^[0-9]+[hms]/)) {v = substr(s, 1, RLENGTH - 1); u = substr(s, RLENGTH, 1)
			n += v * (u == "h" ? 3600 : u == "m" ? 60 : 1); s = substr(s, RLENGTH + 1)} print n}'
}

kiln_volume_path() { virsh -q vol-path --pool "$KILN_TEST_POOL" "$(kiln output -json image | jq -r .volume)"; }

# kiln_bake KEY: the two applies of a bake, timed, and the image measured.
kiln_bake() {
	local name=$1 bake
	log "kiln: $name: the source VM and its Go host"
	rm -f "$work/logs/kiln-$name-provision-provider.log" "$work/logs/kiln-$name-bake-provider.log" # TF_LOG_PATH appends
	TF_LOG_PROVIDER=INFO TF_LOG_PATH=$work/logs/kiln-$name-provision-provider.log \
		timed "kiln_${name}_provision_seconds" "kiln-$name-provision" kiln apply -auto-approve -target=kiln_go_host.src
	# The VM's and the host's own times, as Terraform reports them.
	record "kiln_${name}_vm_seconds" "$(created kiln_libvirt_vm.src "$work/logs/kiln-$name-provision.log")"
	record "kiln_${name}_host_seconds" "$(created kiln_go_host.src "$work/logs/kiln-$name-provision.log")"
	# The toolchains kiln_go_host installed (not those it found intact).
	record "kiln_${name}_installed" "$(grep -o 'installed toolchain:.* version=[^ ]*' "$work/logs/kiln-$name-provision-provider.log" |
		sed 's/.* version=//' | tr -d '"' | paste -sd, -)"
	log "kiln: $name: the bake"
	TF_LOG_PROVIDER=INFO TF_LOG_PATH=$work/logs/kiln-$name-bake-provider.log \
		timed "kiln_${name}_bake_apply_seconds" "kiln-$name-bake" kiln apply -auto-approve
	bake=$(kiln output -json image | jq .bake_seconds)
	record "kiln_${name}_bake_seconds" "$(awk -v b="$bake" 'BEGIN {printf "%.1f", b}')"
	image_facts "kiln_$name" "$(kiln_volume_path)"
	kiln_baked
}

# kiln_from_base bakes the first image's equivalent from the base volume and
# the provisioning spec alone, in one timed apply, measures it and removes it.
kiln_from_base() {
	cat >"$work/tf/base.tf" <<'HCL'
resource "kiln_image" "base" {
  name = "${var.image_name}-base"

  libvirt {
    compress = "zstd"
  }

  source {
    base_volume = var.base_volume
    base_pool   = var.pool
    domain_type = var.domain_type

    go {
      versions        = var.go_versions
      source          = "dl"
      mirror_url      = var.mirror_url
      index_url       = "${var.mirror_url}dl.json"
      keyring         = file(var.keyring_file)
      key_fingerprint = var.key_fingerprint
    }

    hardening {
      swap_off = true
      nofile   = 65536
    }
  }
}

output "base_image" {
  value = { volume = kiln_image.base.volume, bake_seconds = kiln_image.base.bake_seconds }
}
HCL
	jq --arg base "$KILN_TEST_BASE_VOLUME" '.base_volume = $base' "$work/kiln.tfvars.json" >"$work/kiln.tfvars.json.tmp"
	mv "$work/kiln.tfvars.json.tmp" "$work/kiln.tfvars.json"
	export KILN_CACHE_DIR=$work/kiln-cache-base
	rm -rf "$KILN_CACHE_DIR"
	log "kiln: the image from the base volume"
	TF_LOG_PROVIDER=INFO TF_LOG_PATH=$work/logs/kiln-base-provider.log \
		timed kiln_base_seconds kiln-base kiln apply -auto-approve -target=kiln_image.base
	export KILN_CACHE_DIR=$work/kiln-cache
	record kiln_base_bake_seconds "$(kiln output -json base_image | jq .bake_seconds | awk '{printf "%.1f", $1}')"
	image_facts kiln_base "$(virsh -q vol-path --pool "$KILN_TEST_POOL" "$(kiln output -json base_image | jq -r .volume)")"
	record kiln_base_leftovers "$(virsh -q list --all --name | grep -c -- '-bake$' || true)"
	log "kiln: removing the image from the base volume"
	kiln destroy -auto-approve -target=kiln_image.base >"$work/logs/kiln-base-destroy.log" 2>&1
	rm -f "$work/tf/base.tf"
}

# kiln_boot times two VMs to an SSH answer, one after the other: from the
# plain base volume and from the first image, which must run its baked Go.
kiln_boot() {
	local which key_file=$work/known_hosts out
	cat >"$work/tf/boot.tf" <<'HCL'
resource "kiln_libvirt_vm" "boot" {
  for_each = {
    plain  = var.base_volume
    golden = kiln_image.go.volume
  }

  name          = "${var.image_name}-boot-${each.key}"
  pool          = var.pool
  domain_type   = var.domain_type
  base_volume   = each.value
  vcpu          = 2
  memory_mib    = 1024
  disk_size_gib = 4

  network_interface {
    user_mode = true
  }

  cloud_init {
    hostname            = "${var.image_name}-boot-${each.key}"
    ssh_authorized_keys = [var.ssh_public_key]
  }
}

output "boot" {
  value = { for k, vm in kiln_libvirt_vm.boot : k => { host = vm.ssh_host, port = vm.ssh_port, host_key = vm.ssh_host_public_key } }
}
HCL
	jq --arg base "$KILN_TEST_BASE_VOLUME" '.base_volume = $base' "$work/kiln.tfvars.json" >"$work/kiln.tfvars.json.tmp"
	mv "$work/kiln.tfvars.json.tmp" "$work/kiln.tfvars.json"
	for which in plain golden; do
		log "kiln: a VM from the $which volume"
		timed "kiln_boot_${which}_apply_seconds" "kiln-boot-$which" kiln apply -auto-approve "-target=kiln_libvirt_vm.boot[\"$which\"]"
		record "kiln_boot_${which}_seconds" "$(created "kiln_libvirt_vm.boot\\[\"$which\"\\]" "$work/logs/kiln-boot-$which.log")"
	done
	kiln output -json boot | jq -r '.golden | "[\(.host)]:\(.port) \(.host_key)"' >"$key_file"
	out=$(kiln output -json boot | jq -r '.golden | "\(.port) \(.host)"' | {
		read -r port host
		ssh -i "$key" -p "$port" -o UserKnownHostsFile="$key_file" -o StrictHostKeyChecking=yes -o BatchMode=yes \
			"debian@$host" "/usr/local/go/$go_version/bin/go version"
	}) || out=failed
	record kiln_boot_golden_go "$out"
	log "kiln: removing the two VMs"
	kiln destroy -auto-approve -target=kiln_libvirt_vm.boot >"$work/logs/kiln-boot-destroy.log" 2>&1
	rm -f "$work/tf/boot.tf"
}

run() {
	local plan=() codes=() i t rc out
	write_kiln_config
	record run "$prefix"
	record packer_version "$(packer version | head -n1)"
	record domain_type "$KILN_TEST_DOMAIN_TYPE"
	record accelerator "$accelerator"
	record load_other_guests_start "$(($(pgrep -c -f '^[^ ]*qemu-system' || true)))"
	record load_start "$(cut -d' ' -f1-3 /proc/loadavg)"

	# The first image: Go alone.
	packer_build first "$go_version"
	export KILN_CACHE_DIR=$work/kiln-cache
	rm -rf "$KILN_CACHE_DIR"
	kiln_source src1 "$KILN_TEST_BASE_VOLUME" "$go_version"
	kiln_bake first

	# No change: exit code 0 is an empty plan, 2 a plan with changes.
	for i in 1 2 3; do
		t=$EPOCHREALTIME rc=0
		kiln plan -detailed-exitcode >"$work/logs/kiln-plan-$i.log" 2>&1 || rc=$?
		plan+=("$(echo "$EPOCHREALTIME - $t" | bc | awk '{printf "%.1f", $1}')")
		codes+=("$rc")
	done
	record kiln_plan_seconds "$(median "${plan[@]}")"
	record kiln_plan_runs "${plan[*]}"
	record kiln_plan_exitcodes "${codes[*]}"
	kiln_boot
	kiln_from_base


	# One input changed: a second Go version.
	packer_build added "$go_version" "$go_added"
	kiln_source src2 "$(kiln output -json image | jq -r .volume)" "$go_version" "$go_added"
	label=kiln-replan
	t=$(seconds kiln plan)
	record kiln_replan_seconds "$t"
	out=$(grep -o 'Plan: .*' "$work/logs/kiln-replan.log" || true)
	record kiln_replan_summary "${out:--}"
	kiln_bake added
	record load_end "$(cut -d' ' -f1-3 /proc/loadavg)"
	record load_mean "$(mean_load 0)"
	record load_other_guests_max "$(awk '$3 > m {m = $3} END {print m + 0}' "$work/load.log")"
}

# destroy removes the bench's image and, should a run have stopped half way,
# its source VM; then any domain or volume of the run that is left, by its
# name: kiln-img-bench-<run>.
destroy() {
	local name vol
	[[ -n $prefix ]] || return 0
	if [[ -f $work/tf/terraform.tfstate && -f $work/kiln.tfvars.json ]] &&
		[[ $(jq '.resources | length' "$work/tf/terraform.tfstate") != 0 ]]; then
		log "destroying the kiln images and VMs of run $prefix"
		kiln destroy -auto-approve -refresh=false >"$work/logs/kiln-destroy.log" 2>&1 ||
			log "destroy failed: see $work/logs/kiln-destroy.log"
	fi
	for name in $(virsh -q list --all --name | grep "^$prefix-" || true); do
		log "removing domain $name"
		virsh -q destroy "$name" >/dev/null 2>&1 || true
		virsh -q undefine "$name" >/dev/null 2>&1 || true
	done
	for vol in $(virsh -q vol-list "$KILN_TEST_POOL" | awk '{print $1}' | grep "^$prefix-" || true); do
		log "removing volume $vol"
		virsh -q vol-delete "$vol" --pool "$KILN_TEST_POOL" >/dev/null 2>&1 || true
	done
	rm -rf "$work/packer/first" "$work/packer/added"
}

cleanup() {
	local rc=$?
	set +e
	[[ -n $sampler_pid ]] && kill "$sampler_pid" 2>/dev/null
	[[ -n $mirror_pid ]] && kill "$mirror_pid" 2>/dev/null
	if [[ ${KILN_BENCH_KEEP:-} == 1 ]]; then
		log "kept run $prefix (bash $0 destroy removes it)"
	else
		destroy
	fi
	exit "$rc"
}

table() {
	[[ -f $results ]] || die "no results yet: run the bench first"
	# shellcheck source=/dev/null
	source <(sed -E "s/^([a-z_0-9]+)=(.*)$/\1='\2'/" "$results")
	ratio() { [[ ${1:--} != - && ${2:--} != - ]] && echo "$1 / $2" | bc -l | awk '{printf "%.2f", $1}' || echo "-"; }
	verdict() { [[ $1 != - ]] && awk -v r="$1" -v t="$2" 'BEGIN {print (r <= t) ? "ok" : "MISSED"}' || echo "-"; }
	sum() { [[ ${1:--} != - && ${2:--} != - ]] && echo "$1 + $2" | bc | awk '{printf "%.1f", $1}' || echo "-"; }
	mib() { [[ ${1:--} != - ]] && awk -v b="$1" 'BEGIN {printf "%.0f", b / 1048576}' || echo "-"; }
	gib() { [[ ${1:--} != - ]] && awk -v b="$1" 'BEGIN {printf "%.1f", b / 1073741824}' || echo "-"; }
	row() { printf '  %-58s %8s %8s %8s  %s\n' "$1" "${2:-}" "${3:-}" "${4:-}" "${5:-}" | sed 's/ *$//'; }
	local kf ka kfr kbr kar sf sa pv
	kf=$(sum "${kiln_first_provision_seconds:-}" "${kiln_first_bake_apply_seconds:-}")
	ka=$(sum "${kiln_added_provision_seconds:-}" "${kiln_added_bake_apply_seconds:-}")
	ka=$(sum "$ka" "${kiln_replan_seconds:-}")
	kfr=$(ratio "$kf" "${packer_first_seconds:-}") kar=$(ratio "$ka" "${packer_added_seconds:-}")
	kbr=$(ratio "${kiln_first_bake_seconds:-}" "${packer_first_seconds:-}")
	sf=$(ratio "${kiln_first_alloc_bytes:-}" "${packer_first_alloc_bytes:-}")
	sa=$(ratio "${kiln_added_alloc_bytes:-}" "${packer_added_alloc_bytes:-}")
	pv=$(verdict "${kiln_plan_seconds:--}" 1)
	[[ ${kiln_plan_exitcodes:-} =~ ^0( 0)*$ ]] || pv="MISSED (not empty)"
	echo
	echo "Golden image of a Go build host: ${packer_version:-Packer} qemu builder vs kiln_image (run ${run:--})"
	echo "$(nproc) host cores; domain type ${domain_type:--}, Packer's accelerator ${accelerator:--}; load average at start ${load_start:--}, at end ${load_end:--}, mean ${load_mean:--};"
	echo "others' QEMU guests at start ${load_other_guests_start:--}, at most ${load_other_guests_max:--} during the run; load = mean 1-minute load while a step ran"
	echo
	row "first image: Go $go_version, swap off, nofile, generalized" packer kiln kiln/packer target
	row "whole path, s" "${packer_first_seconds:--}" "$kf" "$kfr"
	row "  kiln: VM + Go host (apply -target), s" "" "${kiln_first_provision_seconds:--}" "" "VM ${kiln_first_vm_seconds:--}, host ${kiln_first_host_seconds:--}; installed: ${kiln_first_installed:--}"
	row "  kiln: bake apply (refresh, generalize, copy, hash), s" "" "${kiln_first_bake_apply_seconds:--}"
	row "  kiln: bake alone (bake_seconds) / packer's whole path" "" "${kiln_first_bake_seconds:--}" "$kbr" "<= 0.5 $(verdict "$kbr" 0.5)"
	row "image on disk (qemu-img actual size), MiB; kiln zstd" "$(mib "${packer_first_alloc_bytes:--}")" "$(mib "${kiln_first_alloc_bytes:--}")" "$sf" "<= 0.6 $(verdict "$sf" 0.6)"
	row "  both compressed: packer's disk_compression (zlib), MiB" "$(mib "${packer_first_converted_bytes:--}")" "$(mib "${kiln_first_alloc_bytes:--}")" \
		"$(ratio "${kiln_first_alloc_bytes:--}" "${packer_first_converted_bytes:--}")"
	row "  neither: kiln's image written plain, MiB" "$(mib "${packer_first_alloc_bytes:--}")" "$(mib "${kiln_first_converted_bytes:--}")" \
		"$(ratio "${kiln_first_converted_bytes:--}" "${packer_first_alloc_bytes:--}")"
	row "virtual size, GiB" "$(gib "${packer_first_virtual_bytes:--}")" "$(gib "${kiln_first_virtual_bytes:--}")"
	row "backing file" "${packer_first_backing:--}" "${kiln_first_backing:--}"
	row "generalized (machine-id, host keys, cloud-init state)" "$(generalized packer_first)" "$(generalized kiln_first)"
	row "  machine-id" "${packer_first_machine_id:--}" "${kiln_first_machine_id:--}"
	row "  SSH host keys / cloud-init instances" "${packer_first_host_keys:--} / ${packer_first_cloud_init_instances:--}" "${kiln_first_host_keys:--} / ${kiln_first_cloud_init_instances:--}"
	row "  manifest inside: Go versions" "${packer_first_manifest:--}" "${kiln_first_manifest:--}"
	row "load: packer; kiln VM + host / bake" "${load_packer_first_seconds:--}" "${load_kiln_first_provision_seconds:--}/${load_kiln_first_bake_apply_seconds:--}"
	row "no change: plan -detailed-exitcode, median of 3, s" "" "${kiln_plan_seconds:--}" "" "<= 1 $pv"
	row "  runs, s (exit codes: 0 is empty)" "" "" "" "${kiln_plan_runs:--} (${kiln_plan_exitcodes:--})"
	row "boot to SSH: VM from the plain base volume, s" "" "${kiln_boot_plain_seconds:--}"
	row "boot to SSH: VM from the image, s" "" "${kiln_boot_golden_seconds:--}" "" \
		"<= plain + 2 $(verdict "$(sum "${kiln_boot_golden_seconds:--}" "-${kiln_boot_plain_seconds:-0}")" 2)"
	row "  the image's VM runs its Go, no install" "" "" "" "${kiln_boot_golden_go:--}"
	echo
	row "first image from the base volume (one apply, transient VM)" packer kiln kiln/packer target
	row "whole path, s" "${packer_first_seconds:--}" "${kiln_base_seconds:--}" "$(ratio "${kiln_base_seconds:--}" "${packer_first_seconds:--}")"
	row "  kiln: bake_seconds (boot, provision, bake), s" "" "${kiln_base_bake_seconds:--}" \
		"$(ratio "${kiln_base_bake_seconds:--}" "${packer_first_seconds:--}")" "the same work as Packer's"
	row "image on disk (qemu-img actual size), MiB; kiln zstd" "$(mib "${packer_first_alloc_bytes:--}")" "$(mib "${kiln_base_alloc_bytes:--}")" \
		"$(ratio "${kiln_base_alloc_bytes:--}" "${packer_first_alloc_bytes:--}")" "<= 0.6 $(verdict "$(ratio "${kiln_base_alloc_bytes:--}" "${packer_first_alloc_bytes:--}")" 0.6)"
	row "generalized (machine-id, host keys, cloud-init state)" "$(generalized packer_first)" "$(generalized kiln_base)"
	row "  manifest inside: Go versions" "${packer_first_manifest:--}" "${kiln_base_manifest:--}"
	row "  transient VMs left after the apply" "" "${kiln_base_leftovers:--}"
	row "load: packer; kiln" "${load_packer_first_seconds:--}" "${load_kiln_base_seconds:--}"
	echo
	row "incremental: Go $go_added added" packer kiln kiln/packer
	row "whole path, s" "${packer_added_seconds:--}" "$ka" "$kar"
	row "  packer: from scratch (its template starts from the base)"
	row "  kiln: re-plan, s" "" "${kiln_replan_seconds:--}" "" "${kiln_replan_summary:--}"
	row "  kiln: VM from the first image + Go host, s" "" "${kiln_added_provision_seconds:--}" "" "VM ${kiln_added_vm_seconds:--}, host ${kiln_added_host_seconds:--}; installed: ${kiln_added_installed:--}"
	row "  kiln: bake apply (the first image destroyed after), s" "" "${kiln_added_bake_apply_seconds:--}"
	row "  kiln: bake alone (bake_seconds), s" "" "${kiln_added_bake_seconds:--}" "$(ratio "${kiln_added_bake_seconds:--}" "${packer_added_seconds:--}")"
	row "image on disk (qemu-img actual size), MiB" "$(mib "${packer_added_alloc_bytes:--}")" "$(mib "${kiln_added_alloc_bytes:--}")" "$sa"
	row "virtual size, GiB" "$(gib "${packer_added_virtual_bytes:--}")" "$(gib "${kiln_added_virtual_bytes:--}")"
	row "backing file" "${packer_added_backing:--}" "${kiln_added_backing:--}"
	row "generalized (machine-id, host keys, cloud-init state)" "$(generalized packer_added)" "$(generalized kiln_added)"
	row "  manifest inside: Go versions" "${packer_added_manifest:--}" "${kiln_added_manifest:--}"
	row "load: packer; kiln VM + host / bake" "${load_packer_added_seconds:--}" "${load_kiln_added_provision_seconds:--}/${load_kiln_added_bake_apply_seconds:--}"
}

main() {
	local what=${1:-all}
	declare -gA sha256=()
	case $what in
	table)
		table
		return
		;;
	all | destroy) ;;
	*) die "usage: $0 [all|table|destroy]" ;;
	esac
	setup
	if [[ $what == destroy ]]; then
		prefix=$(sed -n 's/^run=//p' "$results" 2>/dev/null)
		destroy
		return
	fi
	# What a kept run left goes first: this run's configuration replaces its.
	prefix=$(sed -n 's/^run=//p' "$results" 2>/dev/null || true)
	destroy
	prefix=kiln-img-bench-$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')
	trap cleanup EXIT
	rm -f "$results" "$work/load.log"
	make_mirror
	start_mirror
	sample_load >"$work/load.log" &
	sampler_pid=$!
	run
	table | tee "$work/table.txt"
}

main "$@"
