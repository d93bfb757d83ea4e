#!/usr/bin/env bash
# Runs examples/quickstart on this machine: builds the provider, points Terraform
# at it, creates a VM on the local libvirt test bed and prints how to SSH into it.
# "quickstart.sh destroy" removes the VM again.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
cache=${KILN_CACHE:-$HOME/.cache/kiln}
work=$cache/quickstart
mkdir -p "$work"
terraform=$repo/.tools/bin/terraform

source "$cache/testbed.env"

# shellcheck source=scripts/dev-provider.sh
source "$repo/scripts/dev-provider.sh"
dev_provider "$work"
export LIBVIRT_DEFAULT_URI=$KILN_TEST_LIBVIRT_URI

key=$work/id_ed25519
[[ -f $key ]] || ssh-keygen -q -t ed25519 -N '' -C kiln-quickstart -f "$key"

tf() {
	"$terraform" -chdir="$repo/examples/quickstart" "$@" \
		-var "pool=$KILN_TEST_POOL" -var "base_volume=$KILN_TEST_BASE_VOLUME" \
		-var "ssh_public_key=$(cat "$key.pub")" -state="$work/terraform.tfstate"
}

if [[ ${1:-} == destroy ]]; then
	tf destroy -auto-approve
	exit 0
fi

tf apply -auto-approve
"$terraform" -chdir="$repo/examples/quickstart" output -state="$work/terraform.tfstate" -raw known_hosts_line >"$work/known_hosts"
port=$("$terraform" -chdir="$repo/examples/quickstart" output -state="$work/terraform.tfstate" -raw ssh_port)
cat <<MSG

The VM is up. SSH into it, with its host key pinned:

  ssh -i $key -o UserKnownHostsFile=$work/known_hosts -p $port debian@127.0.0.1

Remove it with: make quickstart-destroy
MSG
