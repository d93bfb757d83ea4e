# Quickstart: one Go build VM on the local libvirt daemon. `make quickstart`
# sets the variables from the test bed and prints how to SSH into the VM.
terraform {
  required_providers {
    kiln = {
      source = "kilnhq/kiln"
    }
  }
}

variable "pool" {
  type        = string
  description = "Storage pool holding the base image."
}

variable "base_volume" {
  type        = string
  description = "Debian 12 cloud image volume in the pool."
}

variable "domain_type" {
  type        = string
  default     = null
  description = "libvirt domain type: \"kvm\", or \"qemu\" (software emulation) where KVM cannot boot a stock guest. Unset picks kvm when offered."
}

variable "ssh_public_key" {
  type        = string
  description = "Public key authorized for the VM's default user, debian."
}

provider "kiln" {
  libvirt {}
}

resource "kiln_libvirt_vm" "quickstart" {
  name          = "kiln-quickstart"
  domain_type   = var.domain_type
  pool          = var.pool
  base_volume   = var.base_volume
  vcpu          = 2
  memory_mib    = 1024
  disk_size_gib = 8

  network_interface {
    user_mode = true
  }

  cloud_init {
    hostname            = "kiln-quickstart"
    ssh_authorized_keys = [var.ssh_public_key]
  }
}

output "ssh_port" {
  value = kiln_libvirt_vm.quickstart.ssh_port
}

output "known_hosts_line" {
  value = "[${kiln_libvirt_vm.quickstart.ssh_host}]:${kiln_libvirt_vm.quickstart.ssh_port} ${kiln_libvirt_vm.quickstart.ssh_host_public_key}"
}
