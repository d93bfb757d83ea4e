#!/usr/bin/env bash
# Benchmarks kiln_go_host against the usual ways of making a hardened Go build
# host (Go 1.24.4 from a signed dl mirror, swap off, nofile 65536, a sysctl,
# cgroup v2 check, then a check of the toolchain), each on a fresh guest VM of
# the local libvirt test bed. kiln checks with its defaults (go env, the
# compiler's version: nothing built); Ansible and the shell steps
# also build a small program, and the table shows them without that build too.
#
#   kiln      terraform apply of one kiln_go_host (toolchain cache warm: filled
#             by the fleet run below, so the apply streams from the cache)
#   ansible   ansible-playbook doing the same steps (scripts/bench/gohost/ansible)
#   shell     the same steps as plain shell over one ssh (bench/gohost/shell-steps.sh)
#   baseline  ssh 'sudo tar -xzf - -C <new dir>' < tarball: the floor for any tool
#   no-op     terraform plan (refresh, -detailed-exitcode must be 0) against the
#             kiln host vs ansible-playbook --check against the ansible host
#   fleet     4 kiln_go_host resources in one config, empty KILN_CACHE_DIR: the
#             mirror's access log must show the tarball fetched from it once;
#             the table lists each host's steps and their seconds
#
# The mirror is python3 -m http.server on 127.0.0.1 (guests reach it as
# 10.0.2.2) serving a go1.24.4 tarball repacked from the golang.org/toolchain
# module and signed with a throwaway OpenPGP key. Work files and Terraform
# state are kept in ~/.cache/kiln/bench-gohost; VMs are destroyed on exit.
#
#   bash scripts/gohost-bench.sh            # fleet, then compare, then the table
#   bash scripts/gohost-bench.sh fleet      # only the 4-host cache run
#   bash scripts/gohost-bench.sh compare    # only kiln/ansible/shell/baseline/no-op
#   bash scripts/gohost-bench.sh table      # print the table of the last results
#   bash scripts/gohost-bench.sh destroy    # remove the bench VMs
#
# KILN_BENCH_KEEP=1 keeps the VMs on exit; KILN_BENCH_MIRROR_PORT sets the port.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
bench=$here/bench/gohost
cache=${KILN_CACHE:-$HOME/.cache/kiln}
work=$cache/bench-gohost
terraform=$repo/.tools/bin/terraform
go_version=1.24.4
tarball=go$go_version.linux-amd64.tar.gz
module=golang.org/toolchain@v0.0.1-go$go_version.linux-amd64
mirror_port=${KILN_BENCH_MIRROR_PORT:-18473}
goproxy="https://goproxy.example.com,direct"
goprivate="git.example.com/*"
key=$work/id_ed25519
known_hosts=$work/known_hosts
results=$work/results.env
mirror_pid=""

bench=gohost-bench
# shellcheck source=scripts/bench-lib.sh
source "$here/bench-lib.sh"

# timed KEY LABEL CMD...: record how long CMD took as KEY.
timed() {
	local name=$1 t
	label=$2
	shift 2
	t=$(seconds "$@")
	record "$name" "$t"
}


setup() {
	mkdir -p "$work/logs" "$work/tf"
	bash "$here/testbed.sh" >/dev/null
	# shellcheck source=/dev/null
	source "$cache/testbed.env"
	[[ -x $terraform ]] || bash "$here/tools.sh" terraform
	log "building the provider"
	# shellcheck source=scripts/dev-provider.sh
	source "$here/dev-provider.sh"
	dev_provider "$work"
	export LIBVIRT_DEFAULT_URI=$KILN_TEST_LIBVIRT_URI
	# Terraform runs on copies, so no .terraform files land in the repository.
	rm -rf "$work/tf/vms" "$work/tf/kiln"
	cp -r "$bench/vms" "$bench/kiln" "$work/tf/"
	[[ -f $key ]] || ssh-keygen -q -t ed25519 -N '' -C kiln-gohost-bench -f "$key"
	local missing=() pair
	for pair in ansible-playbook:ansible-core jq:jq bc:bc gpg:gnupg python3:python3; do
		command -v "${pair%%:*}" >/dev/null || missing+=("${pair#*:}")
	done
	if ((${#missing[@]})); then
		log "installing ${missing[*]}"
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
	fi
}

# make_mirror writes the mirror directory: the tarball (repacked from the
# toolchain module once and kept), its detached signature by a throwaway key,
# the armored public key, its fingerprint and a go.dev style dl.json.
make_mirror() {
	local m=$work/mirror zip
	mkdir -p "$m"
	if [[ ! -f $m/$tarball ]]; then
		log "fetching $module from the module proxy"
		zip=$(cd "$work" && GOFLAGS=-mod=mod go mod download -json "$module" | jq -r .Zip)
		log "repacking it as $tarball"
		python3 "$bench/make-tarball.py" "$zip" "$module/" "$m/$tarball"
	fi
	export GNUPGHOME=$work/gnupg
	if [[ ! -f $m/$tarball.asc || ! -f $m/signing-key.asc || $m/$tarball -nt $m/$tarball.asc ]]; then
		log "signing $tarball with a throwaway key"
		rm -rf "$GNUPGHOME"
		mkdir -m 700 "$GNUPGHOME"
		gpg --batch --quiet --passphrase '' --quick-gen-key 'Kiln Bench <bench@kiln.test>' ed25519 sign never
		gpg --batch --quiet --yes --armor --detach-sign -o "$m/$tarball.asc" "$m/$tarball"
		gpg --batch --armor --export bench@kiln.test >"$m/signing-key.asc"
		gpg --batch --with-colons --fingerprint bench@kiln.test | awk -F: '$1 == "fpr" {print $10; exit}' >"$work/fingerprint"
	fi
	unset GNUPGHOME
	fingerprint=$(cat "$work/fingerprint")
	[[ $fingerprint =~ ^[0-9A-F]{40}$ ]] || die "bad key fingerprint '$fingerprint'"
	sha256=$(sha256sum "$m/$tarball" | cut -d' ' -f1)
	local size
	size=$(stat -c %s "$m/$tarball")
	jq -n --arg v "go$go_version" --arg f "$tarball" --arg s "$sha256" --argjson n "$size" \
		'[{version: $v, stable: true, files: [{filename: $f, os: "linux", arch: "amd64", version: $v, sha256: $s, size: $n, kind: "archive"}]}]' \
		>"$m/dl.json"
}

tarball_gets() { grep -c "\"GET /$tarball HTTP" "$work/mirror.log" || true; }

# tf CONFIG SET COMMAND ARGS... runs terraform on the CONFIG (vms or kiln) copy
# with the state and variables of VM set SET.
tf() {
	local config=$1 set=$2 command=$3
	shift 3
	local args=(-state="$work/$config-$set.tfstate")
	if [[ $command != output ]]; then
		args+=(-input=false -var-file="$work/$config-$set.tfvars.json")
	fi
	"$terraform" -chdir="$work/tf/$config" "$command" "${args[@]}" "$@"
}
vms() { tf vms "$@"; }
kiln() { tf kiln "$@"; }

ssh_to() { # ssh_to PORT CMD...
	local port=$1
	shift
	ssh -i "$key" -o UserKnownHostsFile="$known_hosts" -o StrictHostKeyChecking=yes -o BatchMode=yes \
		-o ConnectTimeout=20 -p "$port" debian@127.0.0.1 "$@"
}

# create_vms SET NAME... boots fresh VMs, pins their host keys in known_hosts and
# waits until each has finished booting (cloud-init done).
create_vms() {
	local set=$1 name port
	shift
	jq -n --arg pool "$KILN_TEST_POOL" --arg base "$KILN_TEST_BASE_VOLUME" --arg type "$KILN_TEST_DOMAIN_TYPE" \
		--arg pub "$(cat "$key.pub")" \
		'{pool: $pool, base_volume: $base, domain_type: $type, ssh_public_key: $pub, names: $ARGS.positional}' --args "$@" \
		>"$work/vms-$set.tfvars.json"
	log "booting VMs ($*)"
	timed "vms_${set}_boot_seconds" "vms-$set-apply" vms "$set" apply -auto-approve
	vms "$set" output -json hosts >"$work/hosts-$set.json"
	jq -r 'to_entries[] | "[\(.value.host)]:\(.value.port) \(.value.host_key)"' "$work/hosts-$set.json" >"$known_hosts"
	for name in "$@"; do
		port=$(jq -r --arg n "$name" '.[$n].port' "$work/hosts-$set.json")
		for _ in $(seq 1 30); do
			ssh_to "$port" true 2>/dev/null && break
			sleep 2
		done
		ssh_to "$port" 'cloud-init status --wait >/dev/null || true' || die "cannot log in to $name on port $port"
	done
}

destroy_vms() {
	local set=$1
	[[ -f $work/vms-$set.tfstate ]] || return 0
	if [[ $(jq '.resources | length' "$work/vms-$set.tfstate") != 0 ]]; then
		log "destroying VMs of set $set"
		vms "$set" destroy -auto-approve >"$work/logs/vms-$set-destroy.log" 2>&1 ||
			log "destroy of VM set $set failed: see $work/logs/vms-$set-destroy.log"
	fi
	# The kiln_go_host resources were on these VMs: nothing is left to remove.
	rm -f "$work/kiln-$set.tfstate" "$work/kiln-$set.tfstate.backup"
}

cleanup() {
	local rc=$?
	set +e
	if [[ ${KILN_BENCH_KEEP:-} != 1 ]]; then
		destroy_vms fleet
		destroy_vms cmp
	fi
	[[ -n $mirror_pid ]] && kill "$mirror_pid" 2>/dev/null
	exit "$rc"
}

write_kiln_vars() { # write_kiln_vars SET [NAME]: the kiln/ variables for the VMs of SET (only NAME)
	jq -n --slurpfile hosts "$work/hosts-$1.json" --arg only "${2:-}" --arg key "$key" --arg mirror "http://127.0.0.1:$mirror_port/" \
		--arg keyring "$work/mirror/signing-key.asc" --arg fpr "$fingerprint" --arg proxy "$goproxy" --arg private "$goprivate" \
		'{hosts: ($hosts[0] | with_entries(select($only == "" or .key == $only))), private_key_file: $key, mirror_url: $mirror, keyring_file: $keyring,
		  key_fingerprint: $fpr, goproxy: $proxy, goprivate: $private}' >"$work/kiln-$1.tfvars.json"
}

ansible_playbook() {
	ANSIBLE_CONFIG=$bench/ansible/ansible.cfg \
		ansible-playbook -i "$work/inventory.ini" -e "@$work/ansible-vars.json" "$bench/ansible/playbook.yml" "$@"
}

shell_steps() { # shell_steps PORT: shell-steps.sh, its settings prepended, over one ssh
	{
		printf 'MIRROR=%q SHA256=%q FPR=%q KEYRING=%q GOPROXY_VALUE=%q GOPRIVATE_VALUE=%q\n' \
			"http://10.0.2.2:$mirror_port/" "$sha256" "$fingerprint" "$(cat "$work/mirror/signing-key.asc")" "$goproxy" "$goprivate"
		cat "$bench/shell-steps.sh"
	} | ssh_to "$1" sudo bash -s
}

baseline() { # baseline PORT: stream the tarball and extract it in a new directory
	# shellcheck disable=SC2016 # $$ is the remote shell's
	ssh_to "$1" 'sudo mkdir /opt/baseline-$$ && sudo tar -xzf - -C /opt/baseline-$$' <"$work/mirror/$tarball"
}

# fleet: 4 fresh VMs, one config of 4 kiln_go_host, an empty toolchain cache.
run_fleet() {
	destroy_vms fleet
	create_vms fleet f1 f2 f3 f4
	write_kiln_vars fleet
	rm -rf "$work/kiln-cache"
	export KILN_CACHE_DIR=$work/kiln-cache
	local before
	before=$(tarball_gets)
	log "kiln apply on 4 hosts, empty toolchain cache"
	rm -f "$work/logs/kiln-fleet-provider.log" # TF_LOG_PATH appends
	TF_LOG_PROVIDER=INFO TF_LOG_PATH=$work/logs/kiln-fleet-provider.log \
		timed fleet_apply_seconds kiln-fleet-apply kiln fleet apply -auto-approve
	record fleet_tarball_gets $(($(tarball_gets) - before))
	record fleet_hosts "$(kiln fleet output -json go_version | jq -c 'to_entries | map(.value) | length')"
	fleet_floor
	destroy_vms fleet
}

# qemu_cpu_seconds NAME: the CPU time the QEMU process of VM NAME has used.
qemu_cpu_seconds() {
	local pid
	pid=$(pgrep -f "^/usr/bin/qemu-system.* -name guest=kiln-gohost-$1,") || die "no QEMU process for kiln-gohost-$1"
	ps -o cputimes= -p "$pid" | tr -d ' '
}

# fleet_floor: the baseline on the fleet's hosts, on one alone and then on all
# four at once, with the guests' CPU time during the one: what this machine
# allows a fleet whatever the tool.
fleet_floor() {
	local ports=() port cpu pids=() first
	mapfile -t ports < <(jq -r '.[].port' "$work/hosts-fleet.json")
	first=$(jq -r 'keys[0]' "$work/hosts-fleet.json")
	cpu=$(qemu_cpu_seconds "$first")
	log "fleet floor: ssh tar -xzf - < tarball on one host"
	timed fleet_one_baseline_seconds fleet-baseline-one baseline "${ports[0]}"
	record fleet_one_baseline_cpu_seconds "$(($(qemu_cpu_seconds "$first") - cpu))"
	log "fleet floor: ssh tar -xzf - < tarball on ${#ports[@]} hosts at once"
	all_baselines() {
		for port in "${ports[@]}"; do
			baseline "$port" &
			pids+=($!)
		done
		for port in "${pids[@]}"; do wait "$port"; done
	}
	timed fleet_baseline_seconds fleet-baseline-all all_baselines
}

# compare: kiln, ansible and shell each on a fresh VM, then the baseline and the no-op runs.
run_compare() {
	local ansible_port shell_port out t i plan=() check=()
	destroy_vms cmp
	create_vms cmp kiln ansible shell
	ansible_port=$(jq -r .ansible.port "$work/hosts-cmp.json")
	shell_port=$(jq -r .shell.port "$work/hosts-cmp.json")
	export KILN_CACHE_DIR=$work/kiln-cache
	if [[ -z $(find "$KILN_CACHE_DIR" -name '*.tar.gz' -path '*objects*' 2>/dev/null) ]]; then
		log "the toolchain cache is empty (no fleet run yet): kiln's apply below fetches from the mirror"
		record kiln_cache warm-no
	else
		record kiln_cache "warm (filled by the fleet run)"
	fi

	# kiln
	write_kiln_vars cmp kiln
	log "kiln: terraform apply of one kiln_go_host"
	rm -f "$work/logs/kiln-provider.log" # TF_LOG_PATH appends
	TF_LOG_PROVIDER=INFO TF_LOG_PATH=$work/logs/kiln-provider.log \
		timed kiln_seconds kiln-apply kiln cmp apply -auto-approve

	# ansible
	ssh_to "$ansible_port" python3 --version >"$work/logs/ansible-python.log" 2>&1 ||
		die "no python3 on the guest: Ansible cannot run there (see $work/logs/ansible-python.log)"
	cat >"$work/inventory.ini" <<INV
[gohost]
ansible ansible_host=127.0.0.1 ansible_port=$ansible_port ansible_user=debian ansible_ssh_private_key_file=$key ansible_ssh_common_args='-o UserKnownHostsFile=$known_hosts -o StrictHostKeyChecking=yes'
INV
	jq -n --arg mirror "http://10.0.2.2:$mirror_port/" --arg sha "$sha256" --arg fpr "$fingerprint" \
		--arg keyring "$work/mirror/signing-key.asc" --arg proxy "$goproxy" --arg private "$goprivate" \
		'{mirror: $mirror, sha256: $sha, fingerprint: $fpr, keyring_file: $keyring, goproxy: $proxy, goprivate: $private}' \
		>"$work/ansible-vars.json"
	log "ansible: ansible-playbook"
	timed ansible_seconds ansible-apply ansible_playbook

	# shell
	log "shell: the steps over one ssh"
	timed shell_seconds shell-apply shell_steps "$shell_port"

	# baseline: stream the tarball and extract it, on the shell host, in a new directory
	log "baseline: ssh tar -xzf - < tarball"
	timed baseline_seconds baseline baseline "$shell_port"

	# no-op re-runs
	for i in 1 2 3; do
		log "no-op: terraform plan -detailed-exitcode ($i)"
		label=kiln-plan-$i # exit code 2 (changes) fails like an error
		t=$(seconds kiln cmp plan -detailed-exitcode)
		plan+=("$t")
	done
	record kiln_plan_seconds "$(median "${plan[@]}")"
	record kiln_plan_runs "${plan[*]}"
	record kiln_plan_exitcode 0
	# What the plan costs without reading the host, and one login on its own.
	plan=()
	for i in 1 2 3; do
		label=kiln-plan-norefresh-$i
		plan+=("$(seconds kiln cmp plan -refresh=false -detailed-exitcode)")
	done
	record kiln_plan_norefresh_seconds "$(median "${plan[@]}")"
	plan=()
	for i in 1 2 3; do
		label=ssh-login-$i
		plan+=("$(seconds ssh_to "$shell_port" true)")
	done
	record ssh_login_seconds "$(median "${plan[@]}")"
	for i in 1 2 3; do
		log "no-op: ansible-playbook --check ($i)"
		label=ansible-check-$i
		t=$(seconds ansible_playbook --check)
		check+=("$t")
	done
	out=$(grep -E '^ansible +:' "$work/logs/ansible-check-3.log" | tr -s ' ')
	record ansible_check_seconds "$(median "${check[@]}")"
	record ansible_check_runs "${check[*]}"
	record ansible_check_recap "${out#*: }"
	destroy_vms cmp
}

# build_seconds TOOL: how long the verification's `go run` of the small program
# took in TOOL's run, as ansible and shell printed it (kiln builds nothing by
# default).
build_seconds() {
	local l=$work/logs d
	case $1 in
	ansible) # the shell module's delta, H:MM:SS.ffffff
		d=$(grep -ho 'build_seconds=[0-9:.]*' "$l/ansible-apply.log" 2>/dev/null | head -n1 | cut -d= -f2)
		[[ -n $d ]] && awk -F: -v d="$d" 'BEGIN { split(d, p, ":"); printf "%.1f", p[1] * 3600 + p[2] * 60 + p[3] }'
		;;
	shell) grep -ho 'build_seconds=[0-9.]*' "$l/shell-apply.log" 2>/dev/null | head -n1 | cut -d= -f2 ;;
	esac
}

# install_seconds: how long kiln's install step (stream, hash and inspect in
# flight, unpack, commit) took, from its provider log.
install_seconds() {
	grep -ho 'installed toolchain:.*seconds=[0-9.]*' "$work/logs/kiln-provider.log" 2>/dev/null | tail -n1 |
		grep -o 'seconds=[0-9.]*' | cut -d= -f2 | awk '{printf "%.1f", $1}'
}

# fleet_steps: each step of kiln's fleet apply, host by host, with its seconds
# (the provider's "step done" log lines).
fleet_steps() {
	local log=$work/logs/kiln-fleet-provider.log
	[[ -f $log ]] || return 0
	grep 'step done:' "$log" | awk '{
		h = s = t = ""
		if (match($0, / host=[^ ]+/)) h = substr($0, RSTART + 6, RLENGTH - 6)
		if (match($0, / seconds=[0-9.]+/)) t = substr($0, RSTART + 9, RLENGTH - 9)
		if (match($0, / step="[^"]*"/)) s = substr($0, RSTART + 7, RLENGTH - 8)
		else if (match($0, / step=[^ ]+/)) s = substr($0, RSTART + 6, RLENGTH - 6)
		printf "    %-20s %-24s %6s\n", h, s, t
	}' | sort -s -k1,1
}

minus() { [[ ${1:--} != - && ${2:--} != - ]] && echo "$1 - $2" | bc | awk '{printf "%.1f", $1}' || echo "-"; }

table() {
	[[ -f $results ]] || die "no results yet: run the bench first"
	# shellcheck source=/dev/null
	source <(sed -E "s/^([a-z_0-9]+)=(.*)$/\1='\2'/" "$results")
	ratio() { [[ ${1:--} != - && ${2:--} != - ]] && echo "$1 / $2" | bc -l | awk '{printf "%.2f", $1}' || echo "-"; }
	verdict() { [[ $1 != - ]] && awk -v r="$1" -v t="$2" 'BEGIN {print (r <= t) ? "ok" : "MISSED"}' || echo "-"; }
	local kb ka abuild sbuild anb snb ki ki_ratio kf
	kb=$(ratio "${kiln_seconds:-}" "${baseline_seconds:-}")
	ka=$(ratio "${kiln_seconds:-}" "${ansible_seconds:-}")
	abuild=$(build_seconds ansible || true) sbuild=$(build_seconds shell || true)
	ki=$(install_seconds || true) ki_ratio=$(ratio "${ki:--}" "${baseline_seconds:-}")
	anb=$(minus "${ansible_seconds:-}" "$abuild") snb=$(minus "${shell_seconds:-}" "$sbuild")
	kf=$(ratio "${fleet_apply_seconds:-}" "${kiln_seconds:-}")
	cat <<TABLE

Go $go_version build host on a fresh VM ($(nproc) host cores, TCG guests; shared CPU: noisy)
kiln toolchain cache: ${kiln_cache:--}; Ansible with pipelining, no fact gathering

  measure                                   seconds   target
  kiln      terraform apply (default checks, no build)  ${kiln_seconds:--}
  ansible   ansible-playbook (with the build)           ${ansible_seconds:--}
  shell     steps over one ssh (with the build)         ${shell_seconds:--}
  baseline  ssh tar -xzf - < tarball        ${baseline_seconds:--}
  kiln / baseline                           $kb      <= 1.5  $(verdict "$kb" 1.5)
  kiln / ansible                            $ka
  without the verification build (go run of a println program, cold build cache):
  ansible   ${anb}   (build ${abuild:--})
  shell     ${snb}   (build ${sbuild:--})
  kiln / ansible without its build          $(ratio "${kiln_seconds:-}" "$anb")      <= 0.30  $(verdict "$(ratio "${kiln_seconds:-}" "$anb")" 0.30)
  kiln install step alone                   ${ki:--}   / baseline ${ki_ratio}  <= 1.15  $(verdict "$ki_ratio" 1.15)
  no-op: terraform plan (median of 3)       ${kiln_plan_seconds:--}   <= 0.6  $(verdict "${kiln_plan_seconds:--}" 0.6)   runs: ${kiln_plan_runs:--}, exit code ${kiln_plan_exitcode:--}
         of which: the plan with -refresh=false ${kiln_plan_norefresh_seconds:--}; one ssh login running true ${ssh_login_seconds:--}
  no-op: ansible-playbook --check (median)  ${ansible_check_seconds:--}   runs: ${ansible_check_runs:--}
         ansible --check recap: ${ansible_check_recap:--}
  fleet: ${fleet_hosts:--} hosts, one apply, empty cache        ${fleet_apply_seconds:--}
  fleet / one host                          $kf      <= 2.5  $(verdict "$kf" 2.5)
  fleet floor: ssh tar on one host          ${fleet_one_baseline_seconds:--}   (guests' CPU ${fleet_one_baseline_cpu_seconds:--} s: $(ratio "${fleet_one_baseline_cpu_seconds:-}" "${fleet_one_baseline_seconds:-}") cores)
  fleet floor: ssh tar on 4 hosts at once   ${fleet_baseline_seconds:--}   / one $(ratio "${fleet_baseline_seconds:-}" "${fleet_one_baseline_seconds:-}")
  fleet / fleet floor                       $(ratio "${fleet_apply_seconds:-}" "${fleet_baseline_seconds:-}")      (kiln / baseline for one host: $kb)
  fleet: tarball GETs at the mirror         ${fleet_tarball_gets:--}        must be 1  $([[ ${fleet_tarball_gets:-} == 1 ]] && echo ok || echo MISSED)
  VM boot (terraform apply of the VMs)      fleet of 4: ${vms_fleet_boot_seconds:--}, compare set of 3: ${vms_cmp_boot_seconds:--}
  fleet steps (host, step, seconds):
$(fleet_steps)
TABLE
}

main() {
	local what=${1:-all}
	case $what in
	table)
		table
		return
		;;
	all | fleet | compare | destroy) ;;
	*) die "usage: $0 [all|fleet|compare|table|destroy]" ;;
	esac
	setup
	trap cleanup EXIT
	[[ $what == destroy ]] && return
	[[ $what == all ]] && rm -f "$results"
	make_mirror
	start_mirror
	[[ $what == all || $what == fleet ]] && run_fleet
	[[ $what == all || $what == compare ]] && run_compare
	table | tee "$work/table.txt"
}

main "$@"
