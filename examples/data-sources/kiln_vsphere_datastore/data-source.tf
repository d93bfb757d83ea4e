data "kiln_vsphere_datastore" "ssd" {
  name = "ssd-01"
}

output "ssd_free_gib" {
  value = floor(data.kiln_vsphere_datastore.ssd.free_space_bytes / 1073741824)
}
