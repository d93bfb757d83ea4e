# The shop's backend as a systemd service on two hosts, one at a time: each
# host must answer /health within its thresholds before the next one starts,
# and a host whose release fails goes back to the release it ran before. The
# binary is checked against its SHA-256 and its release signature on the
# machine running Terraform before any host receives it. Its data directory
# outlives it: destroy keeps it (set remove_data_on_destroy to remove it).
variable "release_signing_key" {
  type        = string
  description = "The release signer's armored OpenPGP public key."
}

variable "backend_db_password" {
  type      = string
  sensitive = true
  ephemeral = true
}

resource "kiln_host_release" "backend" {
  name = "backend"

  artifact {
    version = "1.4.0"
    url     = "https://artifacts.example.com/shop/backend-1.4.0-linux-amd64"
    sha256  = "5f2b4c8e0a9d7e6f1b3c5d7e9f0a2b4c6d8e0f1a3b5c7d9e1f2a4b6c8d0e2f4a"
    # A kiln_build's file comes from the registry instead of a URL, by the
    # file's own ref or by the artifact's (its manifest):
    #   oci_ref = kiln_build.backend.artifact_files["dist/backend"].ref
    #   oci_ref = kiln_build.backend.image_ref
    #   sha256  = kiln_build.backend.artifact_files["dist/backend"].sha256

    signature_url = "https://artifacts.example.com/shop/backend-1.4.0-linux-amd64.asc"
    public_key    = var.release_signing_key
  }

  systemd {
    exec_start = "/opt/kiln/backend/current/backend -listen :8080 -config /etc/backend/backend.toml"
    user       = "backend"
    environment = {
      GOMAXPROCS = "2"
    }
    environment_sensitive         = { DB_PASSWORD = var.backend_db_password }
    environment_sensitive_version = 1

    limits {
      nofile     = 65536
      memory_max = "512M"
      cpu_quota  = "150%"
    }
  }

  config_files = {
    "/etc/backend/backend.toml" = "log_level = \"info\"\n"
  }

  data_dirs = ["/var/lib/backend"]

  health_check {
    http {
      port        = 8080
      path        = "/health"
      expect_body = "ok"
    }
    interval            = "2s"
    timeout             = "2s"
    start_period        = "3s"
    healthy_threshold   = 2
    unhealthy_threshold = 3
  }

  rollout {
    batch_size = 1
    pause      = "10s"
  }

  host {
    ssh {
      host             = "192.0.2.10"
      user             = "deploy"
      known_hosts_file = pathexpand("~/.ssh/known_hosts")
    }
  }

  host {
    ssh {
      host             = "192.0.2.11"
      user             = "deploy"
      known_hosts_file = pathexpand("~/.ssh/known_hosts")
    }
  }
}

# The same kind of service on the hosts of the build pools labelled
# team = "shop" (kiln_build_pool), at the addresses and host keys their
# records pin. Kiln logs in as the provider's ssh block says, a user with
# sudo: the pools' build user has none. Needs the provider's kubernetes block.
resource "kiln_host_release" "worker" {
  name        = "worker"
  pool_labels = { team = "shop" }

  artifact {
    version = "1.4.0"
    url     = "https://artifacts.example.com/shop/worker-1.4.0-linux-amd64"
    sha256  = "8c1d3e5f7a9b0c2d4e6f8a1b3c5d7e9f0a2b4c6d8e1f3a5b7c9d0e2f4a6b8c1d"
  }

  systemd {
    user = "worker"
  }

  health_check {
    tcp {
      port = 9090
    }
  }
}
