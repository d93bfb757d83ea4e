provider "kiln" {
  # Go build VMs on the local libvirt daemon.
  libvirt {
    uri = "qemu:///system"
  }

  # Defaults for SSH provisioning steps.
  ssh {
    user = "root"
  }
}
