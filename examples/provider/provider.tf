provider "kiln" {
  # Projects, environments and releases on this cluster.
  kubernetes {
    config_path = pathexpand("~/.kube/config")
  }

  # Go build VMs on the local libvirt daemon.
  libvirt {
    uri = "qemu:///system"
  }

  # Where kiln_build pushes its images and artifacts.
  registry {
    url      = "registry.example.com"
    username = "kiln"
    password = var.registry_password
  }

  # Defaults for SSH provisioning steps.
  ssh {
    user = "root"
  }
}
