# The newest Go 1.24 patch release and its hash in the Go checksum database.
data "kiln_go_release" "go124" {
  version = "1.24"
}

output "go124" {
  value = "${data.kiln_go_release.go124.resolved} ${data.kiln_go_release.go124.module_hash}"
}
