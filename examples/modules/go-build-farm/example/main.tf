# Three build VMs on this machine's libvirt, each a hardened Go host with Go
# 1.24 and 1.23, registered as the pool labelled pool = "go" that builds and
# tests choose (kiln_build's pool_labels, kiln_project's build_pool_labels).
# For vSphere, set platform = "vsphere" and a vsphere object in place of
# libvirt.
terraform {
  required_providers {
    kiln = {
      source = "kilnhq/kiln"
    }
  }
}

variable "ssh_key_file" {
  type        = string
  description = "The login's private key file; its public key is the file with .pub appended."
}

provider "kiln" {
  libvirt {
    uri = "qemu:///system"
  }

  # The pool's records live in the cluster.
  kubernetes {
    config_path = pathexpand("~/.kube/config")
  }
}

module "farm" {
  source = "../"

  name       = "go"
  host_count = 3

  libvirt = {
    pool        = "default"
    base_volume = "debian12-base.qcow2"
    memory_mib  = 4096
  }
  ssh_public_key  = file("${var.ssh_key_file}.pub")
  ssh_private_key = file(var.ssh_key_file)

  go_versions = ["1.24", "1.23.10"]
  go_env      = { GOPRIVATE = "git.example.com/*" }
  hardening   = { sysctls = { "vm.swappiness" = "1" } }

  labels      = { pool = "go", arch = "amd64" }
  concurrency = 2
}

output "hosts" {
  value = module.farm.hosts
}

output "go_versions" {
  value = module.farm.go_versions
}
