# The provider's datacenter, or the only one.
data "kiln_vsphere_datacenter" "current" {}

data "kiln_vsphere_datacenter" "dc1" {
  name = "DC1"
}
