# The connection comes from VSPHERE_SERVER, VSPHERE_USER and VSPHERE_PASSWORD
# (and VSPHERE_ALLOW_UNVERIFIED_SSL=true for a self-signed certificate), or is
# set here: server = "vcenter.example.test", and so on.
provider "kiln" {
  vsphere {
    # datacenter = "DC1" # needed when vCenter has several
  }
}

# data.kiln_vsphere_template.debian, the template both VMs clone, is looked up
# as in the kiln_vsphere_template data source's example.

# A full clone with a static address, a bigger disk and guestinfo for the guest.
resource "kiln_vsphere_vm" "builder" {
  name          = "go-builder-1"
  source        = data.kiln_vsphere_template.debian.path
  cluster       = "build-cluster"
  resource_pool = "builds"
  datastore     = "ssd-01"
  folder        = "builds/go"
  num_cpus      = 4
  memory_mib    = 8192
  disks         = [{ size_gib = 60 }]
  networks      = ["build-net"]

  extra_config = {
    "guestinfo.kiln.role" = "go-builder"
  }

  customize {
    hostname     = "go-builder-1"
    domain       = "build.example.test"
    dns_servers  = ["10.20.0.2"]
    ipv4_address = "10.20.0.31/24"
    ipv4_gateway = "10.20.0.1"
  }

  # CPU hot-add is off in the template: let Kiln restart the VM to resize it.
  allow_power_cycle = true
}

# A linked clone from the template's current snapshot, on DHCP.
resource "kiln_vsphere_vm" "ci" {
  name         = "go-ci-1"
  source       = data.kiln_vsphere_template.debian.path
  linked_clone = true
  snapshot     = data.kiln_vsphere_template.debian.current_snapshot
  cluster      = "build-cluster"

  customize {}

  timeouts {
    create = "20m"
  }
}

output "builder_ip" {
  value = kiln_vsphere_vm.builder.default_ip_address
}
