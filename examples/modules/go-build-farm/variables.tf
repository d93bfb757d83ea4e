variable "name" {
  type        = string
  description = "The pool's name, and the prefix of its VMs' names (`<name>-1` … `<name>-N`)."

  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9]{0,45}[a-z0-9])?$", var.name))
    error_message = "name must be a DNS label of at most 47 characters (lower-case letters, digits and '-'), so that its VMs' host names stay labels."
  }
}

variable "host_count" {
  type        = number
  default     = 1
  description = "How many build VMs to make, each a Go host and a host of the pool."

  validation {
    condition     = var.host_count >= 1 && var.host_count <= 32 && floor(var.host_count) == var.host_count
    error_message = "host_count must be a whole number from 1 to 32."
  }
}

variable "platform" {
  type        = string
  default     = "libvirt"
  description = "Where the build VMs run: `libvirt` (the provider's `libvirt` block; set `libvirt`) or `vsphere` (its `vsphere` block; set `vsphere`)."

  validation {
    condition     = contains(["libvirt", "vsphere"], var.platform)
    error_message = "platform must be \"libvirt\" or \"vsphere\"."
  }
}

variable "libvirt" {
  type = object({
    pool          = string
    base_volume   = string
    domain_type   = optional(string)
    network       = optional(string)
    vcpu          = optional(number, 2)
    memory_mib    = optional(number, 2048)
    disk_size_gib = optional(number, 16)
  })
  default     = null
  description = <<-EOT
    The build VMs on libvirt, with `platform = "libvirt"`:
    - `pool`, `base_volume`: the storage pool and the Debian 12 cloud image volume each VM's disk is a copy-on-write layer over.
    - `domain_type`: `kvm`, or `qemu` (software emulation); unset picks `kvm` when offered.
    - `network`: a libvirt network to attach to; unset, QEMU user-mode networking with the guest's SSH port forwarded to 127.0.0.1.
    - `vcpu` (default 2), `memory_mib` (default 2048), `disk_size_gib` (default 16).
  EOT

  validation {
    condition     = var.libvirt == null || try(var.libvirt.vcpu >= 1 && var.libvirt.memory_mib >= 512 && var.libvirt.disk_size_gib >= 4, false)
    error_message = "libvirt needs vcpu of at least 1, memory_mib of at least 512 and disk_size_gib of at least 4 (a Go toolchain and its build cache need room)."
  }
}

variable "vsphere" {
  type = object({
    template         = string
    known_hosts_file = string
    cluster          = optional(string)
    resource_pool    = optional(string)
    datastore        = optional(string)
    folder           = optional(string)
    networks         = optional(list(string))
    domain           = optional(string)
    linked_clone     = optional(bool, false)
    snapshot         = optional(string)
    num_cpus         = optional(number, 2)
    memory_mib       = optional(number, 4096)
    disk_size_gib    = optional(number)
  })
  default     = null
  description = <<-EOT
    The build VMs on vSphere, with `platform = "vsphere"`:
    - `template`: the inventory path of the Debian template each VM clones (see the `kiln_vsphere_template` data source); it must authorize `ssh_public_key` for `ssh_user`.
    - `known_hosts_file`: the known_hosts file pinning the clones' SSH host keys (vSphere does not report them).
    - `cluster`, `resource_pool`, `datastore`, `folder`, `networks`: where the clones go (as `kiln_vsphere_vm`'s).
    - `domain`: the clones' DNS domain; `linked_clone` and `snapshot`: a linked clone from that snapshot.
    - `num_cpus` (default 2), `memory_mib` (default 4096), `disk_size_gib` (the first disk grown to this size; unset keeps the template's).
  EOT
}

variable "ssh_user" {
  type        = string
  default     = "debian"
  description = "The VMs' login user, with sudo: it prepares the Go hosts and registers the pool; builds run as the pool's own build user."
}

variable "ssh_public_key" {
  type        = string
  default     = null
  description = "OpenSSH public key authorized for `ssh_user` on the libvirt VMs (by cloud-init). Required with `platform = \"libvirt\"`."

  validation {
    condition     = var.ssh_public_key == null || can(regex("^(ssh-ed25519|ecdsa-sha2-nistp[0-9]+|ssh-rsa) [A-Za-z0-9+/=]+", var.ssh_public_key))
    error_message = "ssh_public_key must be an OpenSSH public key line, such as the content of ~/.ssh/id_ed25519.pub."
  }
}

variable "ssh_private_key" {
  type        = string
  default     = null
  sensitive   = true
  description = "The private key of `ssh_public_key`, in OpenSSH PEM form. Unset, the provider's `ssh` block gives it (or the SSH agent)."
}

variable "go_versions" {
  type        = list(string)
  description = "The Go toolchains each host gets: exact (`1.24.4`) or a minor (`1.24`, the newest patch release, resolved at plan time)."

  validation {
    condition     = length(var.go_versions) > 0 && alltrue([for v in var.go_versions : can(regex("^1\\.[0-9]+(\\.[0-9]+)?$", v))])
    error_message = "go_versions needs at least one Go version such as 1.24 or 1.24.4."
  }
}

variable "go_default" {
  type        = string
  default     = null
  description = "The version `/usr/local/bin/go` runs, one of `go_versions`. Defaults to the first."
}

variable "go_env" {
  type        = map(string)
  default     = {}
  sensitive   = true
  description = "The hosts' system Go environment (each toolchain's `go.env`), for example `{ GOPROXY = \"https://proxy.example.com\", GOPRIVATE = \"git.example.com/*\" }`; sensitive, since a GOPROXY URL may carry a token."

  validation {
    condition     = alltrue([for k in keys(var.go_env) : contains(["GOPROXY", "GOPRIVATE", "GONOSUMDB", "GOSUMDB", "GOFLAGS", "GOTOOLCHAIN"], k)])
    error_message = "go_env keys must be among GOPROXY, GOPRIVATE, GONOSUMDB, GOSUMDB, GOFLAGS and GOTOOLCHAIN."
  }
}

variable "hardening" {
  type = object({
    swap_off  = optional(bool, true)
    nofile    = optional(number, 65536)
    sysctls   = optional(map(string), {})
    cgroup_v2 = optional(string, "verify")
  })
  default     = {}
  description = "How the hosts are hardened for builds (`kiln_go_host`'s `hardening`): `swap_off` (default true), the open-file limit `nofile` (default 65536), kernel `sysctls`, and `cgroup_v2`: `verify` (default), `enable` or `ignore`."

  validation {
    condition     = contains(["verify", "enable", "ignore"], var.hardening.cgroup_v2)
    error_message = "hardening.cgroup_v2 must be \"verify\", \"enable\" or \"ignore\"."
  }

  validation {
    condition     = var.hardening.nofile >= 1024
    error_message = "hardening.nofile must be at least 1024."
  }
}

variable "verify_build" {
  type        = bool
  default     = false
  description = "Also build and run a small program with the default toolchain once per toolchain (about half a minute per host under emulation)."
}

variable "labels" {
  type        = map(string)
  description = "The pool's labels: builds and tests choose the pool with them (`pool_labels`, `kiln_project`'s `build_pool_labels`)."

  validation {
    condition     = length(var.labels) > 0
    error_message = "labels needs at least one label: builds choose the pool by its labels."
  }
}

variable "concurrency" {
  type        = number
  default     = 1
  description = "How many builds each host runs at once."

  validation {
    condition     = var.concurrency >= 1 && var.concurrency <= 64 && floor(var.concurrency) == var.concurrency
    error_message = "concurrency must be a whole number from 1 to 64."
  }
}
