# A Go build VM on an overlay of a Debian 12 cloud image, reachable over SSH on
# a port of 127.0.0.1 through QEMU user-mode networking.
resource "kiln_libvirt_vm" "builder" {
  name          = "go-builder-1"
  pool          = "default"
  base_volume   = "debian12-base.qcow2"
  vcpu          = 2
  memory_mib    = 2048
  disk_size_gib = 20

  network_interface {
    user_mode = true
  }

  cloud_init {
    hostname            = "go-builder-1"
    ssh_authorized_keys = [file("~/.ssh/id_ed25519.pub")]

    user {
      name                = "ci"
      sudo                = true
      ssh_authorized_keys = [file("~/.ssh/ci.pub")]
    }
  }

  timeouts {
    create = "20m"
  }
}

output "ssh" {
  value = "ssh -p ${kiln_libvirt_vm.builder.ssh_port} debian@${kiln_libvirt_vm.builder.ssh_host}"
}

# Pin the guest's host key in known_hosts instead of trusting it on first use.
output "known_hosts_line" {
  value = "[${kiln_libvirt_vm.builder.ssh_host}]:${kiln_libvirt_vm.builder.ssh_port} ${kiln_libvirt_vm.builder.ssh_host_public_key}"
}
