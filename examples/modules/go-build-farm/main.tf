locals {
  # The build VMs' names, one per host: <name>-1 … <name>-N.
  vm_names = [for i in range(var.host_count) : "${var.name}-${i + 1}"]

  # Each VM as the SSH target of its Go host and pool host: on libvirt the
  # host key is pinned from the VM; on vSphere from known_hosts_file.
  hosts = var.platform == "libvirt" ? [
    for vm in kiln_libvirt_vm.this : {
      name     = vm.name
      host     = vm.ssh_host
      port     = vm.ssh_port
      host_key = vm.ssh_host_public_key
    }
    ] : [
    for vm in kiln_vsphere_vm.this : {
      name     = vm.name
      host     = vm.default_ip_address
      port     = 22
      host_key = null
    }
  ]
}

# The build VMs on libvirt: a copy-on-write disk over the base volume, the
# login key authorized by cloud-init.
resource "kiln_libvirt_vm" "this" {
  count = var.platform == "libvirt" ? var.host_count : 0

  name          = local.vm_names[count.index]
  domain_type   = var.libvirt.domain_type
  pool          = var.libvirt.pool
  base_volume   = var.libvirt.base_volume
  vcpu          = var.libvirt.vcpu
  memory_mib    = var.libvirt.memory_mib
  disk_size_gib = var.libvirt.disk_size_gib

  network_interface {
    network   = var.libvirt.network
    user_mode = var.libvirt.network == null ? true : null
  }

  cloud_init {
    hostname            = local.vm_names[count.index]
    ssh_authorized_keys = [var.ssh_public_key]
  }

  lifecycle {
    precondition {
      condition     = var.libvirt != null
      error_message = "platform is \"libvirt\": set libvirt (the storage pool and base volume of the build VMs)."
    }
    precondition {
      condition     = var.ssh_public_key != null
      error_message = "platform is \"libvirt\": set ssh_public_key, the key cloud-init authorizes for ssh_user."
    }
  }
}

# The build VMs on vSphere: clones of a template that authorizes the login key.
resource "kiln_vsphere_vm" "this" {
  count = var.platform == "vsphere" ? var.host_count : 0

  name          = local.vm_names[count.index]
  source        = var.vsphere.template
  linked_clone  = var.vsphere.linked_clone
  snapshot      = var.vsphere.snapshot
  cluster       = var.vsphere.cluster
  resource_pool = var.vsphere.resource_pool
  datastore     = var.vsphere.datastore
  folder        = var.vsphere.folder
  num_cpus      = var.vsphere.num_cpus
  memory_mib    = var.vsphere.memory_mib
  disks         = var.vsphere.disk_size_gib == null ? null : [{ size_gib = var.vsphere.disk_size_gib }]
  networks      = var.vsphere.networks

  customize {
    hostname = local.vm_names[count.index]
    domain   = var.vsphere.domain
  }

  lifecycle {
    precondition {
      condition     = var.vsphere != null
      error_message = "platform is \"vsphere\": set vsphere (the template the build VMs clone and where they go)."
    }
  }
}

# Each VM hardened as a Go build host: the toolchains, swap off, the open-file
# limit, cgroup v2 checked.
resource "kiln_go_host" "this" {
  count = var.host_count

  ssh {
    host             = local.hosts[count.index].host
    port             = local.hosts[count.index].port
    user             = var.ssh_user
    private_key      = var.ssh_private_key
    host_key         = local.hosts[count.index].host_key
    known_hosts_file = var.platform == "vsphere" ? var.vsphere.known_hosts_file : null
  }

  go {
    versions = var.go_versions
    default  = var.go_default
  }

  env = length(var.go_env) > 0 ? var.go_env : null

  hardening {
    swap_off  = var.hardening.swap_off
    nofile    = var.hardening.nofile
    sysctls   = length(var.hardening.sysctls) > 0 ? var.hardening.sysctls : null
    cgroup_v2 = var.hardening.cgroup_v2
  }

  verify {
    build = var.verify_build
  }

  # The VM goes with the host: removing its toolchains first would only cost time.
  remove_on_destroy = false

  lifecycle {
    # Here, not in the variable's validation: Terraform 1.8 validates a
    # variable by itself alone.
    precondition {
      condition     = var.go_default == null || contains(var.go_versions, coalesce(var.go_default, "-"))
      error_message = "go_default must be one of go_versions."
    }
  }
}

# The hosts as one build pool: builds and tests choose it by its labels.
resource "kiln_build_pool" "this" {
  name   = var.name
  labels = var.labels

  dynamic "host" {
    for_each = local.hosts
    content {
      ssh {
        host             = host.value.host
        port             = host.value.port
        user             = var.ssh_user
        private_key      = var.ssh_private_key
        host_key         = host.value.host_key
        known_hosts_file = var.platform == "vsphere" ? var.vsphere.known_hosts_file : null
      }
      concurrency = var.concurrency
    }
  }

  # A host joins the pool once its toolchains are installed.
  depends_on = [kiln_go_host.this]
}
