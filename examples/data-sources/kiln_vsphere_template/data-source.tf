data "kiln_vsphere_template" "debian" {
  name = "templates/debian-12-go"
}

output "template_disks" {
  value = data.kiln_vsphere_template.debian.disks
}
