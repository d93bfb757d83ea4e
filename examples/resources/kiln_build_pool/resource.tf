# Two Go hosts (prepared with kiln_go_host) registered as one pool. Builds
# select it by its labels; each host runs two builds at once.
resource "kiln_build_pool" "linux" {
  name   = "linux-amd64"
  labels = { os = "linux", arch = "amd64" }

  host {
    ssh {
      host     = kiln_libvirt_vm.builder1.ssh_host
      port     = kiln_libvirt_vm.builder1.ssh_port
      user     = "debian" # a login with sudo; builds run as kiln-build
      host_key = kiln_libvirt_vm.builder1.ssh_host_public_key
    }
    concurrency = 2
  }

  host {
    ssh {
      host     = kiln_libvirt_vm.builder2.ssh_host
      port     = kiln_libvirt_vm.builder2.ssh_port
      user     = "debian"
      host_key = kiln_libvirt_vm.builder2.ssh_host_public_key
    }
    concurrency = 2
  }

  depends_on = [kiln_go_host.builder1, kiln_go_host.builder2]
}
