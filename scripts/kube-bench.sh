#!/usr/bin/env bash
# Benchmarks kiln_release on the local control plane (scripts/kube-testbed.sh):
# a project of N services (one Deployment each, default 100) released to one
# environment. Prints the time of the first `terraform apply` and of no-change
# `terraform plan` runs (target: plan within 1.0 s), then destroys everything.
#
#   bash scripts/kube-bench.sh [services] [terraform-or-tofu-binary]
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
n=${1:-100}
tf=$(realpath "${2:-$repo/.tools/bin/terraform}")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

eval "$(bash "$here/kube-testbed.sh" | grep '^KILN_TEST_KUBECONFIG=')"
# shellcheck source=scripts/dev-provider.sh
source "$here/dev-provider.sh"
dev_provider "$work"

project=kiln-bench-$RANDOM
{
	cat <<HCL
terraform {
  required_providers {
    kiln = { source = "kilnhq/kiln" }
  }
}

provider "kiln" {
  kubernetes {
    config_path = "$KILN_TEST_KUBECONFIG"
  }
}

locals {
  names = [for i in range($n) : format("svc%03d", i)]
}

resource "kiln_project" "bench" {
  name = "$project"
  services = { for s in local.names : s => <<-YAML
    apiVersion: apps/v1
    kind: Deployment
    metadata:
      name: \${s}
    spec:
      selector:
        matchLabels: { app: \${s} }
      template:
        metadata:
          labels: { app: \${s} }
        spec:
          nodeSelector: { type: kwok }
          containers:
          - name: app
            image: \$\${image}
    YAML
  }
}

resource "kiln_environment" "bench" {
  project = kiln_project.bench.name
  name    = "bench"
}

resource "kiln_release" "bench" {
  project         = kiln_project.bench.name
  environment     = kiln_environment.bench.name
  version         = "v1"
  services        = { for s in local.names : s => "registry.bench.test/\${s}:1.0" }
  rollout_timeout = "10m"
}
HCL
} >"$work/main.tf"

cd "$work"
seconds() { local s=$EPOCHREALTIME; "$@" >"$work/out.log" 2>&1 || { cat "$work/out.log" >&2; return 1; }; echo "$EPOCHREALTIME - $s" | bc; }
echo "bench: $n services, $(basename "$tf")"
echo "apply_seconds=$(seconds "$tf" apply -auto-approve -input=false)"
for i in 1 2 3; do
	t=$(seconds "$tf" plan -input=false -detailed-exitcode)
	echo "plan_no_change_seconds_$i=$t"
done
echo "destroy_seconds=$(seconds "$tf" destroy -auto-approve -input=false)"
