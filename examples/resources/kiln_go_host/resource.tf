# A Go build host on a VM made by kiln_libvirt_vm, its host key pinned from the VM.
resource "kiln_go_host" "builder" {
  ssh {
    host        = kiln_libvirt_vm.builder.ssh_host
    port        = kiln_libvirt_vm.builder.ssh_port
    user        = "debian"
    private_key = file("~/.ssh/id_ed25519")
    host_key    = kiln_libvirt_vm.builder.ssh_host_public_key
  }

  go {
    # golang.org/toolchain modules, verified against the Go checksum database.
    versions = ["1.26.8", "1.24.4"]
    default  = "1.24.4"

    # Built here for the host's platform by the newest of versions the tool's
    # module accepts (Delve v1.27 needs Go 1.25, staticcheck v0.8 Go 1.26),
    # installed into /usr/local/bin; "latest" is resolved when planning.
    tools = [
      "github.com/go-delve/delve/cmd/dlv@v1.27.2",
      "honnef.co/go/tools/cmd/staticcheck@latest",
    ]
  }

  env = {
    GOPROXY   = "https://proxy.golang.org,direct"
    GOPRIVATE = "git.example.com/*"
  }

  hardening {
    swap_off  = true
    nofile    = 65536
    sysctls   = { "vm.swappiness" = "1" }
    cgroup_v2 = "verify"

    # The build user's GOCACHE in memory.
    gocache_tmpfs_mib = 2048
    gocache_user      = "debian"
  }

  # Every apply checks the default toolchain cheaply (go env, the compiler's
  # version); build also compiles and runs a small program, once
  # per toolchain, and test_packages run `go test -short`.
  verify {
    build         = true
    test_packages = ["strings"]
  }
}

# Release tarballs from an internal mirror, signed with the mirror's own key.
resource "kiln_go_host" "mirrored" {
  ssh {
    host             = "build-7.example.com"
    user             = "root"
    private_key      = file("~/.ssh/id_ed25519")
    known_hosts_file = pathexpand("~/.ssh/known_hosts")
  }

  go {
    versions        = ["1.24.4"]
    source          = "dl"
    mirror_url      = "https://mirror.example.com/golang/"
    index_url       = "https://mirror.example.com/golang/dl.json"
    keyring         = file("mirror-signing-key.asc")
    key_fingerprint = "0123456789ABCDEF0123456789ABCDEF01234567"
  }
}

# A fleet host next to its mirror, reached through a bastion: it downloads the
# tarball itself and Kiln checks the SHA-256 from the index (or one pinned with
# `sha256 = { "1.23.10" = "..." }`) on the host. "1.24" follows the newest
# patch release in the index: a new one shows in `terraform plan`.
resource "kiln_go_host" "fleet" {
  ssh {
    host             = "10.20.0.31"
    user             = "admin"
    private_key      = file("~/.ssh/id_ed25519")
    known_hosts_file = pathexpand("~/.ssh/known_hosts")

    bastion {
      host             = "bastion.example.com"
      known_hosts_file = pathexpand("~/.ssh/known_hosts")
    }
  }

  go {
    versions   = ["1.24", "1.23.10"]
    source     = "host"
    mirror_url = "http://mirror.internal/golang/"
    index_url  = "https://mirror.example.com/golang/dl.json"
  }
}
