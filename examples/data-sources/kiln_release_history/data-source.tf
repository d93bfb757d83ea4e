data "kiln_release_history" "dev" {
  project     = "shop"
  environment = "dev"
}

output "dev_versions" {
  value = [for r in data.kiln_release_history.dev.revisions : "${r.revision}: ${r.version} (${r.status})"]
}
