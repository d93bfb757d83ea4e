output "pool" {
  description = "The pool's name."
  value       = kiln_build_pool.this.name
}

output "labels" {
  description = "The pool's labels, for `pool_labels` and `build_pool_labels`."
  value       = kiln_build_pool.this.labels
}

output "build_user" {
  description = "The user builds run as on the hosts."
  value       = kiln_build_pool.this.build_user
}

output "hosts" {
  description = "Each host by VM name: its SSH `address` and `port`, the pinned `host_key` (null on vSphere), whether the pool found it `ready`, and the exact `go_versions` it has."
  value = {
    for i, h in local.hosts : h.name => {
      address     = h.host
      port        = h.port
      host_key    = h.host_key
      ready       = kiln_build_pool.this.host[i].ready
      go_versions = kiln_build_pool.this.host[i].go_versions
    }
  }
}

output "go_versions" {
  description = "The exact Go versions every host has, `go_versions` resolved (`1.24` → `1.24.4`)."
  value       = kiln_go_host.this[0].go.resolved_versions
}

output "go_default" {
  description = "The exact version `/usr/local/bin/go` runs on the hosts."
  value       = kiln_go_host.this[0].go.default
}
