resource "kiln_release" "dev" {
  project     = kiln_project.shop.name
  environment = kiln_environment.dev.name
  version     = "v1.4.0"

  services = {
    db  = "postgres:16"
    api = "registry.example.com/shop/api:20250101120000-main"
    web = "registry.example.com/shop/web:20250101120000-main"
  }

  rollback_on_failure = true
  rollout_timeout     = "3m"
  history_limit       = 20
}

output "dev_revision" {
  value = kiln_release.dev.revision
}
