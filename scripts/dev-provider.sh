# shellcheck shell=bash
# Sourced by the scripts that run Terraform on this checkout's provider.
#
# dev_provider DIR builds the provider into DIR and points Terraform (and
# OpenTofu) at it through a dev_overrides CLI configuration, DIR/cli.tfrc.
dev_provider() {
	local dir=$1 repo
	repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
	mkdir -p "$dir/plugins"
	echo "dev-provider: building terraform-provider-kiln" >&2
	(cd "$repo" && go build -o "$dir/plugins/terraform-provider-kiln" .)
	cat >"$dir/cli.tfrc" <<RC
provider_installation {
  dev_overrides {
    "kilnhq/kiln" = "$dir/plugins"
  }
  direct {}
}
RC
	export TF_CLI_CONFIG_FILE=$dir/cli.tfrc TF_IN_AUTOMATION=1 CHECKPOINT_DISABLE=1
}
