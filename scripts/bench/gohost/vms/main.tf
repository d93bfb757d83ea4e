# Fresh guest VMs for scripts/gohost-bench.sh: one per name, on the local
# libvirt test bed, SSH forwarded to 127.0.0.1:<ssh_port>, login user debian.
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

variable "base_volume" {
  type = string
}

variable "ssh_public_key" {
  type = string
}

variable "names" {
  type        = list(string)
  description = "VM names; each VM is kiln-gohost-<name>."
}

provider "kiln" {
  libvirt {}
}

resource "kiln_libvirt_vm" "host" {
  for_each      = toset(var.names)
  name          = "kiln-gohost-${each.key}"
  pool          = var.pool
  domain_type   = var.domain_type
  base_volume   = var.base_volume
  vcpu          = 2
  memory_mib    = 1024
  disk_size_gib = 8

  network_interface {
    user_mode = true
  }

  cloud_init {
    hostname            = "kiln-gohost-${each.key}"
    ssh_authorized_keys = [var.ssh_public_key]
  }

  timeouts {
    create = "20m"
  }
}

# name => { host, port, host_key } as one JSON value for the script.
output "hosts" {
  value = {
    for name, vm in kiln_libvirt_vm.host : name => {
      host     = vm.ssh_host
      port     = vm.ssh_port
      host_key = vm.ssh_host_public_key
    }
  }
}
