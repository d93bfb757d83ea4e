# kiln_go_host on already running VMs (scripts/gohost-bench.sh): Go 1.24.4 from
# a local dl mirror signed with the bench's own key, plus the host hardening.
terraform {
  required_providers {
    kiln = {
      source = "kilnhq/kiln"
    }
  }
}

variable "hosts" {
  type = map(object({
    host     = string
    port     = number
    host_key = string
  }))
  description = "name => SSH endpoint and pinned host key (the vms/ config's hosts output)."
}

variable "private_key_file" {
  type = string
}

variable "mirror_url" {
  type = string
}

variable "keyring_file" {
  type = string
}

variable "key_fingerprint" {
  type = string
}

variable "goproxy" {
  type = string
}

variable "goprivate" {
  type = string
}

provider "kiln" {
  ssh {
    user        = "debian"
    private_key = file(var.private_key_file)
  }
}

resource "kiln_go_host" "bench" {
  for_each = var.hosts

  ssh {
    host     = each.value.host
    port     = each.value.port
    host_key = each.value.host_key
  }

  go {
    versions        = ["1.24.4"]
    source          = "dl"
    mirror_url      = var.mirror_url
    index_url       = "${var.mirror_url}dl.json"
    keyring         = file(var.keyring_file)
    key_fingerprint = var.key_fingerprint
  }

  env = {
    GOPROXY   = var.goproxy
    GOPRIVATE = var.goprivate
  }

  hardening {
    swap_off  = true
    nofile    = 65536
    sysctls   = { "vm.swappiness" = "1" }
    cgroup_v2 = "verify"
  }

  # No verify block: the default checks (go env, the compiler's version),
  # which build nothing.
}

output "go_version" {
  value = { for name, h in kiln_go_host.bench : name => h.verification.go_version }
}
