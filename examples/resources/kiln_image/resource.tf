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

  # A standalone qcow2 in the source VM's pool, recompressed with zstd on the
  # libvirt host (here the local daemon, so qemu-img runs on this machine).
  # Without compress, flatten = false would instead keep the image as a thin
  # overlay on the source's base volume, debian12-base.qcow2 (backing_volume).
  libvirt {
    compress = "zstd"
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
  pool          = kiln_image.go.libvirt.pool
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

# The same image with no source VM to manage: Kiln boots a transient VM from
# the base volume, provisions it as a kiln_go_host with these go and hardening
# blocks would, bakes it and removes it. A new Go version (or "1.24" resolving
# to a new patch release) plans a new image.
resource "kiln_image" "go_from_base" {
  name = "go-builder-base"

  source {
    base_volume = "debian12-base.qcow2"
    base_pool   = "default"

    go {
      versions = ["1.24", "1.23"]
    }

    hardening {
      swap_off = true
      nofile   = 65536
    }
  }

  libvirt {
    compress = "zstd"
  }
}

# The same on vSphere: a kiln_vsphere_vm that a kiln_go_host provisioned is
# baked into a template (snapshot kiln-base) in the folder templates/go, also
# published to the content library go-images (library_item_id), and a build
# VM is a linked clone of it. The bake reaches the source over SSH at
# its guest IP address: list its host key in the provider's
# ssh.known_hosts_file. Needs the provider's vsphere block.
resource "kiln_vsphere_vm" "source" {
  name       = "go-image-source"
  source     = "templates/debian-12"
  cluster    = "build-cluster"
  num_cpus   = 2
  memory_mib = 2048

  customize {
    hostname     = "go-image-source"
    ipv4_address = "10.20.0.40/24"
    ipv4_gateway = "10.20.0.1"
  }
}

resource "kiln_go_host" "vsphere_source" {
  ssh {
    host             = kiln_vsphere_vm.source.default_ip_address
    known_hosts_file = pathexpand("~/.ssh/known_hosts")
  }

  go {
    versions = ["1.24"]
  }
}

resource "kiln_image" "go_vsphere" {
  name = "go-builder"

  source {
    vm_id      = kiln_vsphere_vm.source.id
    toolchains = kiln_go_host.vsphere_source.installed
  }

  vsphere {
    folder          = "templates/go"
    content_library = "go-images"
  }
}

resource "kiln_vsphere_vm" "vsphere_builder" {
  name         = "go-builder-2"
  source       = kiln_image.go_vsphere.template_path
  linked_clone = true
  snapshot     = kiln_image.go_vsphere.snapshot
  cluster      = "build-cluster"

  customize {}
}
