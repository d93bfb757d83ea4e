# A Go build host baked into a golden image, and a build VM booted from it with
# Go already installed.
#
# The bake generalizes the source VM and deletes it (source_after_bake): once
# the image exists, replace the two source resources below with
#
#   removed {
#     from = kiln_libvirt_vm.source
#     lifecycle { destroy = false }
#   }
#
# (and the same for kiln_go_host.source), and set source.vm_id and
# source.toolchains to the values they had (terraform output). The image then
# stays as it is until its inputs change.
resource "kiln_libvirt_vm" "source" {
  name          = "go-image-source"
  pool          = "default"
  base_volume   = "debian12-base.qcow2"
  vcpu          = 2
  memory_mib    = 2048
  disk_size_gib = 10

  network_interface {
    user_mode = true
  }

  cloud_init {
    hostname            = "go-image-source"
    ssh_authorized_keys = [file("~/.ssh/id_ed25519.pub")]
  }
}

resource "kiln_go_host" "source" {
  ssh {
    host     = kiln_libvirt_vm.source.ssh_host
    port     = kiln_libvirt_vm.source.ssh_port
    host_key = kiln_libvirt_vm.source.ssh_host_public_key
  }

  go {
    versions = ["1.24"]
  }

  hardening {
    swap_off = true
    nofile   = 65536
  }
}

resource "kiln_image" "go" {
  name = "go-builder"

  source {
    vm_id      = kiln_libvirt_vm.source.id
    toolchains = kiln_go_host.source.installed
  }

  # What the fingerprint cannot see on the host: the hardening asked for.
  inputs = {
    hardening = jsonencode(kiln_go_host.source.hardening)
  }

  generalize {
    # Keep the logs of the provisioning for inspection; the rest is removed.
    logs = false
  }

  source_after_bake = "deleted"
}

# Boots with Go installed: a kiln_go_host declaring the same version here
# finds it intact and installs nothing.
resource "kiln_libvirt_vm" "builder" {
  name          = "go-builder-1"
  pool          = kiln_image.go.pool
  base_volume   = kiln_image.go.volume
  vcpu          = 2
  memory_mib    = 2048
  disk_size_gib = 20

  network_interface {
    user_mode = true
  }

  cloud_init {
    hostname            = "go-builder-1"
    ssh_authorized_keys = [file("~/.ssh/id_ed25519.pub")]
  }
}

output "image" {
  value = {
    volume   = kiln_image.go.volume
    sha256   = kiln_image.go.sha256
    manifest = jsondecode(kiln_image.go.manifest)
  }
}
