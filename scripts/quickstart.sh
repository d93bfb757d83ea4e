#!/usr/bin/env bash
# Runs the ZadigX course's main job (examples/quickstart) on this machine:
# brings up the local test beds (libvirt with the Debian guest image, the
# Kubernetes control plane, the OCI registry and the git server) while the
# provider builds, pushes the shop's two services (examples/quickstart/services)
# to the git server, then a build VM → a hardened Go host → a build pool →
# build and test of both services → release to dev → a version released to qa,
# and prints the environments' status and the versions.
#
#   quickstart.sh           the main job (again: brings everything to the HCL)
#   quickstart.sh fix       commits the course's bug fix to the frontend's
#                           repository and re-applies: only the frontend rebuilds
#   quickstart.sh destroy   removes what the quickstart made (the test beds stay)
#   quickstart.sh seed      makes (or finds) the build cache seed and prints its
#                           path; TestAccQuickstart seeds its build VM with it
#
# Terraform runs in a copy of examples/ under the cache (its state and
# .terraform stay there, not in the checkout). The CLI is the first terraform
# or tofu >= 1.8 on PATH, else the pinned Terraform, built once.
set -eEuo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
cache=${KILN_CACHE:-$HOME/.cache/kiln}
work=$cache/quickstart
run=$work/run/quickstart
mode=${1:-main}
mkdir -p "$work"
started=$SECONDS
log() { echo "quickstart [$((SECONDS - started))s]: $*" >&2; }
step_no=0
step() {
	step_no=$((step_no + 1))
	echo >&2
	echo "==> [$((SECONDS - started))s] step $step_no: $*" >&2
}
fail() {
	echo "quickstart: $*" >&2
	exit 1
}

trap 'echo "quickstart: step $step_no failed (scripts/quickstart.sh line $LINENO)" >&2' ERR

case $mode in main | fix | destroy | seed) ;; *) fail "unknown mode $mode: run it with no argument, fix, destroy or seed" ;; esac

# shellcheck source=scripts/dev-provider.sh
source "$repo/scripts/dev-provider.sh"

# cli prints a terraform or tofu of version 1.8 or later: the first on PATH, else
# the pinned Terraform, built once into the tools cache.
cli() {
	local name path version
	for name in terraform tofu; do
		path=$(command -v "$name") || continue
		version=$("$path" version 2>/dev/null | sed -n '1s/^[A-Za-z]* v\([0-9.]*\).*/\1/p')
		if [[ -n $version && $(printf '1.8.0\n%s\n' "$version" | sort -V | head -n 1) == 1.8.0 ]]; then
			log "using $path ($version)"
			echo "$path"
			return
		fi
	done
	log "no terraform or tofu >= 1.8 on PATH: building the pinned Terraform (a few minutes on a fresh machine)"
	bash "$repo/scripts/tools.sh" terraform >&2
	echo "$repo/.tools/bin/terraform"
}

# beds starts (or finds running) the four test beds side by side, while the
# provider builds, and reads what they print: KEY=VALUE lines.
beds() {
	local bed pids=() names=(testbed kube-testbed build-testbed) i
	for bed in "${names[@]}"; do
		bash "$repo/scripts/$bed.sh" >"$work/$bed.env.out" 2>"$work/$bed.log" &
		pids+=($!)
	done
	dev_provider "$work"
	terraform=$(cli)
	log "provider built; waiting for the test beds"
	for i in "${!names[@]}"; do
		if ! wait "${pids[$i]}"; then
			tail -n 30 "$work/${names[$i]}.log" >&2
			fail "scripts/${names[$i]}.sh failed (its log: $work/${names[$i]}.log)"
		fi
		# shellcheck disable=SC2046 # KEY=VALUE words, none with spaces
		export $(grep -E '^KILN_TEST_[A-Z_]+=[^ ]*$' "$work/${names[$i]}.env.out")
	done
}

# tf runs the CLI in the work copy of the configuration.
tf() {
	"$terraform" -chdir="$run" "$@"
}

# apply runs tf apply with args, showing the resources' progress; the whole
# output is kept in $work/apply.log and its end shown when it fails.
apply() {
	# Every resource's start and end, and every half minute of a long one.
	local progress=': (Creating|Creation complete|Modifying|Modifications complete|Destroying|Destruction complete|Reading|Read complete)|: Still [a-z]+\.\.\. \[([0-9]+m)?(0|30)s elapsed\]|^Apply complete|^(Error|Warning):'
	if ! tf apply -auto-approve -input=false -no-color "$@" 2>&1 | tee "$work/apply.log" | { grep --line-buffered -E "$progress" || true; }; then
		echo >&2
		tail -n 40 "$work/apply.log" >&2
		fail "apply failed; the whole output is in $work/apply.log"
	fi
}

# workcopy refreshes the work copy of examples/quickstart and the modules it
# uses, keeping its state and .terraform.
workcopy() {
	mkdir -p "$run" "$work/run/modules"
	cp -a "$repo/examples/quickstart/." "$run/"
	rm -rf "$work/run/modules"
	cp -a "$repo/examples/modules" "$work/run/modules"
	tf get -no-color >/dev/null
}

# The shop's repositories on the git server, one per service (so a commit to
# one rebuilds that one), and their work trees here.
git_id=(-c user.name="Kiln quickstart" -c user.email=quickstart@kiln.invalid)
bare() { echo "$KILN_TEST_GIT_ROOT/quickstart-$1.git"; }
src() { echo "$work/src/$1"; }

# push_sample makes each repository's main hold the sources shipped in
# examples/quickstart/services: a new commit when they differ (a rerun after
# quickstart-fix brings the bug back, as a new commit).
push_sample() {
	local s dir
	for s in backend frontend; do
		dir=$(src "$s")
		[[ -d $(bare "$s") ]] || git init -q --bare -b main "$(bare "$s")"
		if [[ ! -d $dir/.git ]]; then
			git init -q -b main "$dir"
			git -C "$dir" remote add origin "$(bare "$s")"
		fi
		git -C "$dir" fetch -q origin
		if git -C "$dir" rev-parse -q --verify origin/main >/dev/null; then
			git -C "$dir" checkout -q -B main origin/main
		fi
		find "$dir" -mindepth 1 -maxdepth 1 ! -name .git -exec rm -rf {} +
		cp -a "$repo/examples/quickstart/services/$s/." "$dir/"
		git -C "$dir" add -A
		if ! git -C "$dir" rev-parse -q --verify HEAD >/dev/null || ! git -C "$dir" diff --cached --quiet; then
			git -C "$dir" "${git_id[@]}" commit -q -m "The shop's $s, as examples/quickstart ships it"
			git -C "$dir" push -q origin main
			log "$s: pushed $(git -C "$dir" rev-parse --short HEAD) to $KILN_TEST_GIT_URL/quickstart-$s.git"
		else
			log "$s: $KILN_TEST_GIT_URL/quickstart-$s.git is up to date at $(git -C "$dir" rev-parse --short HEAD)"
		fi
	done
}

# on_vm runs a command on the build VM as its login user, host key pinned.
on_vm() {
	local port
	port=$(tf output -raw ssh_port)
	tf output -raw known_hosts_line >"$work/known_hosts"
	ssh -q -i "$key" -o UserKnownHostsFile="$work/known_hosts" -o StrictHostKeyChecking=yes \
		-o BatchMode=yes -p "$port" debian@127.0.0.1 "$@"
}

# build_cache_seed sets seed to the path of a tar.gz of a Go build cache holding
# what the shop's builds and tests compile (the standard library, testing,
# vet), compiled here once with the same toolchain, flags and environment as
# Kiln's build script (internal/buildfarm/scripts/build.sh) and kept in the
# cache. Go keys its cache by the compiler and the inputs, not by paths, so a
# VM seeded with it compiles only the shop's own packages: under software
# emulation that is a minute instead of half an hour.
build_cache_seed() {
	local goroot seed_key home s
	goroot=$(GOTOOLCHAIN=go$go_version go env GOROOT)
	seed_key=$(cd "$repo" && sha256sum internal/buildfarm/scripts/build.sh examples/quickstart/services/*/* | sha256sum | cut -c1-16)
	seed=$work/build-cache-go$go_version-$seed_key.tar.gz
	if [[ ! -f $seed ]]; then
		log "compiling the build cache seed here (go$go_version)"
		home=$(mktemp -d)
		for s in backend frontend; do
			mkdir -p "$home/src/$s"
			cp -a "$repo/examples/quickstart/services/$s/." "$home/src/$s/"
			(
				cd "$home/src/$s"
				env -i PATH="$goroot/bin:/usr/bin:/bin" HOME="$home" GOROOT="$goroot" CGO_ENABLED=0 GOTOOLCHAIN=local \
					go build -trimpath -buildvcs=false -o /dev/null -ldflags "-buildid= -X main.buildStamp=seed" -tags "" .
				env -i PATH="$goroot/bin:/usr/bin:/bin" HOME="$home" GOROOT="$goroot" CGO_ENABLED=0 GOTOOLCHAIN=local \
					go test -json ./... >/dev/null
			)
		done
		tar -czf "$seed.tmp" -C "$home/.cache/go-build" .
		mv "$seed.tmp" "$seed"
		chmod -R u+w "$home" && rm -rf "$home"
	fi
}

# seed_build_cache unpacks the seed into the build user's Go build cache on
# the VM.
seed_build_cache() {
	build_cache_seed
	# shellcheck disable=SC2016 # expanded on the VM
	on_vm 'sudo -n runuser -u kiln-build -- bash -c '\''c=$(getent passwd kiln-build | cut -d: -f6)/.cache/go-build; mkdir -p "$c" && tar -xzmf - -C "$c"'\' <"$seed"
	log "build cache seeded ($(du -h "$seed" | cut -f1))"
}

go_version=1.24.4

if [[ $mode == seed ]]; then
	build_cache_seed
	echo "$seed"
	exit 0
fi

step "the test beds (libvirt, Kubernetes, registry, git server) and the provider"
beds
export LIBVIRT_DEFAULT_URI=$KILN_TEST_LIBVIRT_URI
key=$work/id_ed25519
[[ -f $key ]] || ssh-keygen -q -t ed25519 -N '' -C kiln-quickstart -f "$key"
export TF_VAR_libvirt_uri=$KILN_TEST_LIBVIRT_URI TF_VAR_pool=$KILN_TEST_POOL \
	TF_VAR_base_volume=$KILN_TEST_BASE_VOLUME TF_VAR_domain_type=$KILN_TEST_DOMAIN_TYPE \
	TF_VAR_ssh_key_file=$key TF_VAR_kubeconfig=$KILN_TEST_KUBECONFIG \
	TF_VAR_registry=$KILN_TEST_REGISTRY TF_VAR_registry_username=$KILN_TEST_REGISTRY_USERNAME \
	TF_VAR_registry_password=$KILN_TEST_REGISTRY_PASSWORD TF_VAR_git_url=$KILN_TEST_GIT_URL \
	TF_VAR_git_username=$KILN_TEST_GIT_USERNAME TF_VAR_git_password=$KILN_TEST_GIT_PASSWORD \
	TF_VAR_go_version=$go_version
workcopy

case $mode in
destroy)
	step "destroy the environments, the version, the builds' records, the pool and the build VM"
	tf destroy -auto-approve -input=false -no-color | grep --line-buffered -E ': Destr|^Destroy complete|^Error' || true
	[[ -z $(tf state list 2>/dev/null) ]] || fail "the state still lists resources: $(tf state list | tr '\n' ' ')"
	rm -rf "$(bare backend)" "$(bare frontend)" "$work/src"
	log "done: the shop's repositories are removed too; the test beds keep running (make testbed-stop and the like stop them)"
	exit 0
	;;
fix)
	[[ -f $run/terraform.tfstate && -n $(tf state list 2>/dev/null) ]] || fail "nothing to fix yet: run make quickstart first"
	step "the course's bug fix: the frontend asks the backend at /api/buildstamp, not /api/build-stamp"
	dir=$(src frontend)
	sed -i 's|"/api/build-stamp"|"/api/buildstamp"|' "$dir/main.go"
	if git -C "$dir" diff --quiet; then
		log "the frontend already asks /api/buildstamp: nothing to commit"
	else
		git -C "$dir" diff --stat >&2
		git -C "$dir" "${git_id[@]}" commit -q -am "frontend: ask the backend for its build stamp at /api/buildstamp"
		git -C "$dir" push -q origin main
		log "pushed $(git -C "$dir" rev-parse --short HEAD) to $KILN_TEST_GIT_URL/quickstart-frontend.git"
	fi
	step "the plan: what the new frontend commit changes"
	tf plan -input=false -no-color -out="$work/fix.tfplan" >"$work/plan.log" 2>&1 || {
		tail -n 40 "$work/plan.log" >&2
		fail "plan failed; its output is in $work/plan.log"
	}
	grep -E '^  # .* (will be|must be)|^Plan:|^No changes' "$work/plan.log" | grep -v 'will be read during apply' >&2 || true
	step "apply it: the frontend is built, tested and released to dev; qa keeps its version"
	apply "$work/fix.tfplan"
	;;
main)
	step "the shop's sources on the git server"
	push_sample
	step "a build VM, hardened as a Go host, in a build pool (module go-build-farm)"
	apply -target=module.farm
	step "the build user's Go build cache, seeded"
	seed_build_cache
	step "build and test both services, release to dev, a version of the tested images released to qa (module delivery-project); the backend released on the build VM as a systemd service"
	apply
	;;
esac

step "where things stand"
echo "Environments (kiln_environment_status):"
tf output -no-color status
echo "Versions:"
tf output -no-color versions
echo "Tests:"
tf output -no-color tests
echo "The backend on the build VM (kiln_host_release), and what it answers there:"
tf output -no-color host_release
on_vm curl -fsS http://127.0.0.1:8080/api/buildstamp || fail "the backend released on the build VM does not answer /api/buildstamp"
log "done in $((SECONDS - started))s"
port=$(tf output -raw ssh_port)
tf output -raw known_hosts_line >"$work/known_hosts"
cat <<MSG

What to try next:
  - make quickstart-fix: the course's bug fix (the frontend asked the backend
    at the wrong path), committed to the frontend's repository and applied:
    the plan shows only the frontend rebuilt, retested and released to dev.
  - Promote to qa: set qa_version = "v1.1.0" in examples/quickstart/main.tf
    (its variable's default) and run make quickstart: a new version of the
    tested images, released to qa.
  - Look at the environments: KUBECONFIG=$KILN_TEST_KUBECONFIG kubectl -n shop-env-dev get deploy -o wide
  - Break the backend on the build VM as a person would, then plan: the
    drift shows, and apply repairs it:
      ssh ... sudo systemctl stop quickstart-backend
  - Log in to the build VM (the pool's host):
      ssh -i $key -o UserKnownHostsFile=$work/known_hosts -p $port debian@127.0.0.1
  - Read the modules: examples/modules/go-build-farm and examples/modules/delivery-project.
  - Remove it all: make quickstart-destroy
MSG
