data "kiln_vsphere_cluster" "build" {
  name = "build-cluster"
}

output "build_hosts" {
  value = data.kiln_vsphere_cluster.build.hosts
}
