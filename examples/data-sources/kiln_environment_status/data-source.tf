data "kiln_environment_status" "dev" {
  project     = "shop"
  environment = "dev"
}

output "dev_images" {
  value = { for w in data.kiln_environment_status.dev.workloads : w.name => w.images }
}
