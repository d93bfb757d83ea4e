#!/usr/bin/env bash
# Benchmarks kiln_build on one fresh guest of the local libvirt test bed, with
# the test registry and git server (scripts/build-testbed.sh) and the local
# control plane (scripts/kube-testbed.sh) for the records. The sample service
# (internal/testenv/sample) is pushed to a new repository and built as an image
# of one Go binary; the guest reaches a module proxy on this machine (the
# sample's modules, downloaded here once) as 10.0.2.2. Prints:
#
#   first_build_seconds     terraform apply of the first build (cold build cache:
#                           under emulation it compiles the standard library,
#                           most of half an hour)
#   second_build_seconds    terraform apply after a new commit (warm caches)
#   floor_seconds           the same work by hand for a third commit: the source
#                           streamed over ssh, go build with build.sh's flags as
#                           the build user (its warm caches), the binary back, and
#                           pushed as a one-layer image with curl
#   plan_no_change_seconds  terraform plan -detailed-exitcode, three times
#   and the ratios second/floor (target <= 1.1) and second/first.
#
# Then the pool grows to two hosts (a second fresh guest, seeded like the
# first) and a second configuration, which finds the pool through its record in
# the cluster as any other configuration would, builds 10 services (10
# repositories of the sample, each with its own commit):
#
#   pool_sequential_seconds terraform apply -parallelism=1 after a new commit in
#                           every repository: the 10 builds one after another
#   pool_parallel_seconds   the same after another new commit, default
#                           parallelism: the pool's two hosts, one build each
#   pool_plan_seconds       terraform plan of the 10 builds, nothing changed
#                           (three times; one registry HEAD per build)
#   twin_*                  one commit built twice at once, so on both hosts:
#                           the hosts, and whether the binaries and images match
#   and the ratio parallel/sequential (target <= 0.6).
#
#   bash scripts/build-bench.sh [terraform-or-tofu-binary]
#
# KILN_BENCH_PHASES="pool" runs only the pool part (default "single pool").
# Numbers from a loaded machine mean little: run it alone. KILN_BENCH_KEEP=1
# keeps the work directory and the guest. KILN_BENCH_SEED=<tar.gz of a Go build
# cache> (TestAccBuild_farm keeps one in ~/.cache/kiln/build-cache-seeds)
# seeds the build users' caches before the first build: a quick check that the
# bench runs, whose second/first ratio means nothing. Without it, the second
# host's first build is cold too; the pool's figures come after a warm-up round
# on both hosts either way.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
tf=$(realpath "${1:-$repo/.tools/bin/terraform}")
cache=${KILN_CACHE:-$HOME/.cache/kiln}
go_version=1.24.4
work=$(mktemp -d "${TMPDIR:-/tmp}/kiln-build-bench.XXXXXX")
phases=${KILN_BENCH_PHASES:-single pool}
proxy_pid="" bare=""

log() { echo "build-bench: $*" >&2; }

cleanup() {
	local rc=$?
	set +e
	[[ -n $proxy_pid ]] && kill "$proxy_pid" 2>/dev/null
	if [[ ${KILN_BENCH_KEEP:-} != 1 ]]; then
		if [[ -f $work/services/terraform.tfstate ]]; then
			log "destroying the services' builds"
			(cd "$work/services" && "$tf" destroy -auto-approve -input=false >"$work/destroy-services.log" 2>&1) ||
				log "destroy failed: see $work/destroy-services.log"
		fi
		if [[ -f $work/terraform.tfstate ]]; then
			log "destroying the guest and the records"
			(cd "$work" && "$tf" destroy -auto-approve -input=false -var hosts=2 >"$work/destroy.log" 2>&1) ||
				log "destroy failed: see $work/destroy.log"
		fi
		[[ -n $bare ]] && rm -rf "$bare" "${bare%.git}"-svc-*.git
		rm -rf "$work"
	else
		log "kept $work"
	fi
	exit "$rc"
}
trap cleanup EXIT

# seconds CMD... runs CMD with its output in $work/out.log and prints the
# wall-clock seconds it took.
seconds() {
	local s=$EPOCHREALTIME
	"$@" >"$work/out.log" 2>&1 || {
		tail -n 40 "$work/out.log" >&2
		return 1
	}
	echo "$EPOCHREALTIME - $s" | bc | awk '{printf "%.1f", $1}'
}

ratio() { echo "$1 / $2" | bc -l | awk '{printf "%.2f", $1}'; }

for pair in jq:jq bc:bc python3:python3 curl:curl git:git; do
	command -v "${pair%%:*}" >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${pair#*:}" >/dev/null
done
bash "$here/testbed.sh" >/dev/null
bash "$here/build-testbed.sh" >/dev/null
bash "$here/kube-testbed.sh" >/dev/null
# shellcheck source=/dev/null
source "$cache/testbed.env"
# shellcheck source=/dev/null
source "$cache/build/env"
# shellcheck source=/dev/null
source "$cache/kube/env"
# shellcheck source=scripts/dev-provider.sh
source "$here/dev-provider.sh"
dev_provider "$work"
export LIBVIRT_DEFAULT_URI=$KILN_TEST_LIBVIRT_URI
ssh-keygen -q -t ed25519 -N '' -C kiln-build-bench -f "$work/id_ed25519"

# The sample's modules, served as a module proxy (a module cache's download
# directory has the proxy's layout).
log "downloading the sample's modules"
(cd "$repo/internal/testenv/sample" && GOMODCACHE=$work/modcache GOFLAGS=-modcacherw go mod download)
proxy_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
python3 -m http.server --bind 127.0.0.1 "$proxy_port" --directory "$work/modcache/cache/download" >"$work/proxy.log" 2>&1 &
proxy_pid=$!

# The sample in a new repository of the git server; commit adds a line to
# main.go, so each commit is a new build.
name=kiln-build-bench-$RANDOM
bare=$KILN_TEST_GIT_ROOT/$name.git
git init -q --bare -b main "$bare"
git init -q -b main "$work/src"
cp -r "$repo/internal/testenv/sample/." "$work/src/"
commit() {
	echo "// $1" >>"$work/src/main.go"
	git -C "$work/src" add -A
	git -C "$work/src" -c user.name=bench -c user.email=bench@kiln.invalid commit -q -m "$1"
	git -C "$work/src" push -q "$bare" main
}
commit "first"

cat >"$work/main.tf" <<HCL
terraform {
  required_providers {
    kiln = { source = "kilnhq/kiln" }
  }
}

provider "kiln" {
  libvirt {}
  kubernetes {
    config_path = "$KILN_TEST_KUBECONFIG"
  }
  registry {
    url      = "$KILN_TEST_REGISTRY"
    username = "$KILN_TEST_REGISTRY_USERNAME"
    password = "$KILN_TEST_REGISTRY_PASSWORD"
    insecure = true
  }
  ssh {
    user        = "debian"
    private_key = file("$work/id_ed25519")
  }
}

variable "hosts" {
  type    = number
  default = 1
}

resource "kiln_libvirt_vm" "host" {
  count         = var.hosts
  name          = "$name-\${count.index}"
  pool          = "$KILN_TEST_POOL"
  domain_type   = "$KILN_TEST_DOMAIN_TYPE"
  base_volume   = "$KILN_TEST_BASE_VOLUME"
  vcpu          = 2
  memory_mib    = 1024
  disk_size_gib = 8
  network_interface {
    user_mode = true
  }
  cloud_init {
    hostname            = "$name-\${count.index}"
    ssh_authorized_keys = [file("$work/id_ed25519.pub")]
  }
  timeouts {
    create = "20m"
  }
}

locals {
  ssh = [for vm in kiln_libvirt_vm.host : {
    host     = vm.ssh_host
    port     = vm.ssh_port
    host_key = vm.ssh_host_public_key
  }]
}

resource "kiln_go_host" "host" {
  count = var.hosts
  ssh {
    host     = local.ssh[count.index].host
    port     = local.ssh[count.index].port
    host_key = local.ssh[count.index].host_key
  }
  go {
    versions = ["$go_version"]
    default  = "$go_version"
  }
  env = { GOPROXY = "http://10.0.2.2:$proxy_port" }
}

resource "kiln_build_pool" "bench" {
  name   = "$name"
  labels = { pool = "$name" }
  dynamic "host" {
    for_each = local.ssh
    content {
      ssh {
        host     = host.value.host
        port     = host.value.port
        host_key = host.value.host_key
      }
    }
  }
  depends_on = [kiln_go_host.host]
}

resource "kiln_build" "backend" {
  name        = "$name"
  go_version  = "$go_version"
  pool_labels = { pool = "$name" }
  source {
    git {
      url      = "$KILN_TEST_GIT_URL/$name.git"
      ref      = "main"
      username = "$KILN_TEST_GIT_USERNAME"
      password = "$KILN_TEST_GIT_PASSWORD"
    }
  }
  go {
    package = "."
  }
  depends_on = [kiln_build_pool.bench]
}

output "ssh" {
  value = local.ssh
}
HCL
cd "$work"

# on_host N CMD...: CMD over ssh on the pool's host N (from 0).
on_host() {
	local n=$1
	shift
	"$tf" output -json ssh >"$work/ssh.json"
	jq -r '.[] | "[\(.host)]:\(.port) \(.host_key)"' "$work/ssh.json" >"$work/known_hosts"
	ssh -i "$work/id_ed25519" -o UserKnownHostsFile="$work/known_hosts" -o StrictHostKeyChecking=yes \
		-o BatchMode=yes -p "$(jq -r ".[$n].port" "$work/ssh.json")" "debian@$(jq -r ".[$n].host" "$work/ssh.json")" "$@"
}
seed() { # seed N: the build user's Go build cache on host N, from KILN_BENCH_SEED
	[[ -n ${KILN_BENCH_SEED:-} ]] || return 0
	log "seeding host $1's build cache from $KILN_BENCH_SEED"
	on_host "$1" 'sudo -H -u kiln-build tar -xzmf - -C ~kiln-build/.cache/go-build' <"$KILN_BENCH_SEED"
}
if [[ $phases == *single* ]]; then
	log "booting the guest, installing Go $go_version, registering the pool"
	seconds "$tf" apply -auto-approve -input=false -target=kiln_build_pool.bench >/dev/null
	seed 0
	log "first build"
	first=$(seconds "$tf" apply -auto-approve -input=false)
	echo "first_build_seconds=$first"
	commit "second"
	log "second build (a new commit, warm caches)"
	second=$(seconds "$tf" apply -auto-approve -input=false)
	echo "second_build_seconds=$second"

	# No change: one registry HEAD for the build, no build (before the floor's
	# commit, which would be a rebuild).
	for i in 1 2 3; do
		plan=$(seconds "$tf" plan -input=false -detailed-exitcode)
		echo "plan_no_change_seconds_$i=$plan"
	done

	# The floor: a third commit built by hand with build.sh's flags as the build
	# user, the binary pushed as a one-layer image with the registry's HTTP API.
	commit "third"
	floor() {
		local bin=$work/floor/ko-app/backend reg=http://$KILN_TEST_REGISTRY/v2/$name/floor
		local auth=$KILN_TEST_REGISTRY_USERNAME:$KILN_TEST_REGISTRY_PASSWORD
		mkdir -p "$(dirname "$bin")"
		# shellcheck disable=SC2016 # expanded on the host, by the build user's shell
		git -C "$work/src" archive main | on_host 0 'sudo -H -u kiln-build bash -c "
			rm -rf ~/floor && mkdir ~/floor && cd ~/floor && tar -x &&
			CGO_ENABLED=0 GOTOOLCHAIN=local /usr/local/go/'$go_version'/bin/go build -trimpath -buildvcs=false -ldflags=-buildid= -o backend . &&
			cat backend"' >"$bin"
		chmod 0755 "$bin"
		tar -C "$work/floor" --owner=0 --group=0 --mtime=@0 -cf "$work/floor/layer.tar" ko-app
		gzip -nkf "$work/floor/layer.tar"
		local diff_id layer config manifest
		diff_id=sha256:$(sha256sum <"$work/floor/layer.tar" | cut -d' ' -f1)
		jq -cn --arg d "$diff_id" '{architecture: "amd64", os: "linux", config: {Entrypoint: ["/ko-app/backend"]},
			rootfs: {type: "layers", diff_ids: [$d]}}' >"$work/floor/config.json"
		upload() { # upload FILE: a blob, monolithically; prints its digest
			local digest location
			digest=sha256:$(sha256sum <"$1" | cut -d' ' -f1)
			location=$(curl -fsS -u "$auth" -X POST -D - -o /dev/null "$reg/blobs/uploads/" | tr -d '\r' | awk 'tolower($1) == "location:" {print $2}')
			[[ $location == http* ]] || location=http://$KILN_TEST_REGISTRY$location
			curl -fsS -u "$auth" -X PUT -H 'Content-Type: application/octet-stream' --data-binary "@$1" "$location&digest=$digest" >/dev/null
			echo "$digest"
		}
		layer=$(upload "$work/floor/layer.tar.gz")
		config=$(upload "$work/floor/config.json")
		manifest=$(jq -cn --arg c "$config" --argjson cs "$(stat -c %s "$work/floor/config.json")" \
			--arg l "$layer" --argjson ls "$(stat -c %s "$work/floor/layer.tar.gz")" \
			'{schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json",
			  config: {mediaType: "application/vnd.oci.image.config.v1+json", digest: $c, size: $cs},
			  layers: [{mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: $l, size: $ls}]}')
		curl -fsS -u "$auth" -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' \
			--data-binary "$manifest" "$reg/manifests/third" >/dev/null
	}
	log "the floor: a third commit by hand"
	floor_s=$(seconds floor)
	echo "floor_seconds=$floor_s"

	echo "second_over_floor=$(ratio "$second" "$floor_s") (target <= 1.1)"
	echo "second_over_first=$(ratio "$second" "$first")"
fi

# The pool of two: a second guest, the same steps as the first. Only the pool
# is applied: the build above follows main, whose last commit is the floor's.
log "the pool of two hosts"
pool_grow=$(seconds "$tf" apply -auto-approve -input=false -var hosts=2 -target=kiln_build_pool.bench)
echo "pool_grow_seconds=$pool_grow"
[[ $phases == *single* ]] || seed 0
seed 1

# Ten services, each its own repository of the sample, built by a second
# configuration that knows only the pool's labels.
services=(svc-0 svc-1 svc-2 svc-3 svc-4 svc-5 svc-6 svc-7 svc-8 svc-9)
for svc in "${services[@]}"; do
	git init -q --bare -b main "${bare%.git}-$svc.git"
	git init -q -b main "$work/$svc"
	cp -r "$repo/internal/testenv/sample/." "$work/$svc/"
	echo "// $svc" >>"$work/$svc/main.go"
done
commit_all() { # commit_all MESSAGE: a new commit in every service's repository
	local svc
	for svc in "${services[@]}"; do
		echo "// $1" >>"$work/$svc/main.go"
		git -C "$work/$svc" add -A
		git -C "$work/$svc" -c user.name=bench -c user.email=bench@kiln.invalid commit -q -m "$1"
		git -C "$work/$svc" push -q "${bare%.git}-$svc.git" main
	done
}
commit_all "warm-up"
mkdir "$work/services"
sed -n '/^terraform {/,/^}/p; /^provider "kiln" {/,/^}/p' "$work/main.tf" >"$work/services/main.tf"
cat >>"$work/services/main.tf" <<HCL

resource "kiln_build" "svc" {
  for_each    = toset([$(printf '"%s", ' "${services[@]}")])
  name        = "$name-\${each.key}"
  go_version  = "$go_version"
  pool_labels = { pool = "$name" }
  source {
    git {
      url      = "$KILN_TEST_GIT_URL/$name-\${each.key}.git"
      ref      = "main"
      username = "$KILN_TEST_GIT_USERNAME"
      password = "$KILN_TEST_GIT_PASSWORD"
    }
  }
  go {
    package = "."
  }
}
HCL
services_apply() { (cd "$work/services" && "$tf" apply -auto-approve -input=false "$@"); }
log "the 10 services: a warm-up round on both hosts"
warm=$(seconds services_apply)
echo "pool_warm_up_seconds=$warm"
commit_all "sequential"
log "the 10 services one after another (-parallelism=1)"
sequential=$(seconds services_apply -parallelism=1)
echo "pool_sequential_seconds=$sequential"
commit_all "parallel"
log "the 10 services on the pool of two"
parallel=$(seconds services_apply)
echo "pool_parallel_seconds=$parallel"
for i in 1 2 3; do
	plan=$(seconds bash -c "cd '$work/services' && '$tf' plan -input=false -detailed-exitcode")
	echo "pool_plan_seconds_$i=$plan"
done
(cd "$work/services" && "$tf" show -json) | jq -r '.values.root_module.resources[] |
	select(.type == "kiln_build") | "pool_build_host_\(.index)=\(.values.host)"'
echo "parallel_over_sequential=$(ratio "$parallel" "$sequential") (target <= 0.6)"

# Two hosts, one digest: one commit built twice at once, so that each host
# takes one of the two builds.
cat >>"$work/services/main.tf" <<HCL

resource "kiln_build" "twin" {
  for_each    = toset(["a", "b"])
  name        = "$name-twin-\${each.key}"
  go_version  = "$go_version"
  pool_labels = { pool = "$name" }
  source {
    git {
      url      = "$KILN_TEST_GIT_URL/$name-svc-0.git"
      ref      = "main"
      username = "$KILN_TEST_GIT_USERNAME"
      password = "$KILN_TEST_GIT_PASSWORD"
    }
  }
  go {
    package = "."
  }
}
HCL
log "one commit built on both hosts at once"
seconds services_apply -target='kiln_build.twin' >/dev/null
(cd "$work/services" && "$tf" show -json) | jq -r '.values.root_module.resources[] |
	select(.type == "kiln_build" and .name == "twin") |
	"twin_\(.index)_host=\(.values.host)", "twin_\(.index)_binary_sha256=\(.values.binary_sha256)",
	"twin_\(.index)_image_digest=\(.values.image_digest)"'
