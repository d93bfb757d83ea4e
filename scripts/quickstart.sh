#!/usr/bin/env bash
# Runs examples/quickstart on this machine: brings up the local libvirt test bed
# (packages, libvirtd, the Debian guest image) while the provider builds, picks a
# Terraform or OpenTofu CLI, creates a VM and prints how to SSH into it. Only what
# the quickstart uses is built: the provider, and the pinned Terraform only when
# no terraform or tofu >= 1.8 is on PATH.
# "quickstart.sh destroy" removes the VM again.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
cache=${KILN_CACHE:-$HOME/.cache/kiln}
work=$cache/quickstart
mkdir -p "$work"
started=$SECONDS
log() { echo "quickstart [$((SECONDS - started))s]: $*" >&2; }

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
	bash "$repo/scripts/tools.sh" terraform
	echo "$repo/.tools/bin/terraform"
}

if [[ ${1:-} != destroy ]]; then
	log "building the provider, and bringing up the libvirt test bed alongside"
	bash "$repo/scripts/testbed.sh" >"$work/testbed.out" &
	testbed=$!
	dev_provider "$work"
	terraform=$(cli)
	log "provider built; waiting for the test bed"
	wait "$testbed" || {
		echo "quickstart: scripts/testbed.sh failed" >&2
		exit 1
	}
else
	dev_provider "$work"
	terraform=$(cli)
fi
source "$cache/testbed.env"
export LIBVIRT_DEFAULT_URI=$KILN_TEST_LIBVIRT_URI

key=$work/id_ed25519
[[ -f $key ]] || ssh-keygen -q -t ed25519 -N '' -C kiln-quickstart -f "$key"

tf() {
	"$terraform" -chdir="$repo/examples/quickstart" "$@" \
		-var "pool=$KILN_TEST_POOL" -var "base_volume=$KILN_TEST_BASE_VOLUME" \
		-var "domain_type=$KILN_TEST_DOMAIN_TYPE" \
		-var "ssh_public_key=$(cat "$key.pub")" -state="$work/terraform.tfstate"
}

if [[ ${1:-} == destroy ]]; then
	tf destroy -auto-approve
	exit 0
fi

log "creating the VM (domain type $KILN_TEST_DOMAIN_TYPE); it is ready when its SSH server answers with its pinned host key"
tf apply -auto-approve
"$terraform" -chdir="$repo/examples/quickstart" output -state="$work/terraform.tfstate" -raw known_hosts_line >"$work/known_hosts"
port=$("$terraform" -chdir="$repo/examples/quickstart" output -state="$work/terraform.tfstate" -raw ssh_port)
log "done"
cat <<MSG

The VM is up. SSH into it, with its host key pinned:

  ssh -i $key -o UserKnownHostsFile=$work/known_hosts -p $port debian@127.0.0.1

Remove it with: make quickstart-destroy
MSG
