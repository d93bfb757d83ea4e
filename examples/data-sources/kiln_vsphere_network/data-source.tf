data "kiln_vsphere_network" "build" {
  name = "build-net"
}
