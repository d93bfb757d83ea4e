# The quickstart: the ZadigX course's main job on this machine. A build VM on
# the local libvirt daemon becomes a hardened Go host and a build pool (the
# go-build-farm module); the two-service shop in services/ is built and tested
# on it from the local git server, its images pushed to the local registry,
# released to dev on the local Kubernetes control plane, and the tested
# images, pinned as a version, released to qa (the delivery-project module).
# `make quickstart` sets the variables from the local test beds and runs it.
terraform {
  required_version = ">= 1.8"

  required_providers {
    kiln = {
      source = "kilnhq/kiln"
    }
  }
}

variable "libvirt_uri" {
  type        = string
  default     = "qemu:///system"
  description = "The libvirt daemon the build VM runs on."
}

variable "pool" {
  type        = string
  description = "Storage pool holding the base image."
}

variable "base_volume" {
  type        = string
  description = "Debian 12 cloud image volume in the pool."
}

variable "domain_type" {
  type        = string
  default     = null
  description = "libvirt domain type: \"kvm\", or \"qemu\" (software emulation) where KVM cannot boot a stock guest. Unset picks kvm when offered."
}

variable "ssh_key_file" {
  type        = string
  description = "The build VM's login key (a private key file; its public key is the file with .pub appended)."
}

variable "kubeconfig" {
  type        = string
  description = "Kubeconfig of the cluster the environments and the pool's records live in."
}

variable "registry" {
  type        = string
  description = "The OCI registry the builds push to, host:port."
}

variable "registry_username" {
  type        = string
  description = "The registry's user."
}

variable "registry_password" {
  type        = string
  sensitive   = true
  description = "The registry user's password."
}

variable "git_url" {
  type        = string
  description = "Base URL of the git server holding the shop's repositories, <git_url>/quickstart-backend.git and <git_url>/quickstart-frontend.git."
}

variable "git_username" {
  type        = string
  description = "The git server's user."
}

variable "git_password" {
  type        = string
  sensitive   = true
  description = "The git user's password."
}

variable "go_version" {
  type        = string
  default     = "1.24.4"
  description = "The Go toolchain of the build host, the builds and the tests."
}

variable "qa_version" {
  type        = string
  default     = "v1.0.0"
  description = "The version of the tested images released to qa; a new name makes a new version of the current images."
}

provider "kiln" {
  libvirt {
    uri = var.libvirt_uri
  }

  kubernetes {
    config_path = var.kubeconfig
  }

  registry {
    url      = var.registry
    username = var.registry_username
    password = var.registry_password
    # The local registry listens on 127.0.0.1 without TLS.
    insecure = true
  }

  # The login for the host release below: the build pool's record pins each
  # host's address and key, and the release logs in as this user, with sudo.
  ssh {
    user        = "debian"
    private_key = file(var.ssh_key_file)
  }
}

# A build VM → a hardened Go host → a build pool labelled pool = quickstart.
module "farm" {
  source = "../modules/go-build-farm"

  name = "kiln-quickstart"
  libvirt = {
    pool        = var.pool
    base_volume = var.base_volume
    domain_type = var.domain_type
  }
  ssh_public_key  = file("${var.ssh_key_file}.pub")
  ssh_private_key = file(var.ssh_key_file)

  go_versions = [var.go_version]
  labels      = { pool = "quickstart" }
}

# The shop: a project from k8s/*.yaml, each service built and tested on the
# pool, released to dev once the tests pass, and a version released to qa.
module "shop" {
  source = "../modules/delivery-project"

  name          = "shop"
  description   = "The quickstart's shop: a backend serving /api/buildstamp and a frontend showing both build stamps."
  services_dir  = "${path.module}/k8s"
  startup_order = [["backend"], ["frontend"]]
  variables     = { node_type = "kwok", log_level = "info" }
  dev_variables = { log_level = "debug" }

  pool_labels = module.farm.labels
  go_version  = var.go_version

  builds = {
    backend = {
      git_url = "${var.git_url}/quickstart-backend.git"
      ldflags = "-X main.buildStamp={{.Git.CommitDate}}"
    }
    frontend = {
      git_url = "${var.git_url}/quickstart-frontend.git"
      ldflags = "-X main.buildStamp={{.Git.CommitDate}}"
    }
  }
  git_username = var.git_username
  git_password = var.git_password

  qa_version = {
    name        = var.qa_version
    description = "The shop's tested images."
  }

  # The builds need the pool's hosts ready.
  depends_on = [module.farm]
}

# The backend runs on the build VM too, as a systemd service: a script build
# leaves its binary in the registry as an artifact, and the release installs
# it on the pool's hosts, waits until /healthz answers, and keeps the previous
# release to roll back to.
resource "kiln_build" "backend_binary" {
  name        = "quickstart-backend"
  go_version  = var.go_version
  pool_labels = module.farm.labels

  source {
    git {
      url      = "${var.git_url}/quickstart-backend.git"
      ref      = "main"
      username = var.git_username
      password = var.git_password
    }
  }

  # SOURCE_DATE_EPOCH is the commit's time: the same stamp as the image's.
  script    = "mkdir -p dist && go build -trimpath -ldflags \"-X main.buildStamp=$(date -u -d @$SOURCE_DATE_EPOCH +%Y-%m-%dT%H:%M:%SZ)\" -o dist/backend ."
  artifacts = ["dist/backend"]

  depends_on = [module.farm]
}

resource "kiln_host_release" "backend" {
  name        = "quickstart-backend"
  pool_labels = module.farm.labels

  artifact {
    version = substr(kiln_build.backend_binary.commit, 0, 12)
    oci_ref = kiln_build.backend_binary.artifact_files["dist/backend"].ref
    sha256  = kiln_build.backend_binary.artifact_files["dist/backend"].sha256
  }

  systemd {
    exec_start = "/opt/kiln/quickstart-backend/current/quickstart-backend -listen 127.0.0.1:8080"
    user       = "shop"
  }

  health_check {
    http {
      port        = 8080
      path        = "/healthz"
      expect_body = "ok"
    }
  }
}

data "kiln_environment_status" "dev" {
  project     = module.shop.project
  environment = "dev"
  depends_on  = [module.shop]
}

data "kiln_environment_status" "qa" {
  project     = module.shop.project
  environment = "qa"
  depends_on  = [module.shop]
}

output "build_host" {
  description = "The build VM: its SSH address and port, and the Go versions the pool found on it."
  value       = module.farm.hosts
}

output "commits" {
  description = "The commit each service was built and tested at."
  value       = module.shop.commits
}

output "tests" {
  description = "Each service's test run."
  value       = module.shop.tests
}

output "versions" {
  description = "What dev and qa run: dev's version label and images, qa's version and its images."
  value = {
    dev = { version = module.shop.dev_version, revision = module.shop.dev_revision, images = module.shop.dev_images }
    qa  = { version = module.shop.version, revision = module.shop.qa_revision, images = module.shop.qa_images }
  }
}

output "status" {
  description = "The environments' workloads: rolled out or why not, and their images."
  value = {
    for env, s in { dev = data.kiln_environment_status.dev, qa = data.kiln_environment_status.qa } : env => {
      for w in s.workloads : w.service => {
        rolled_out = w.rolled_out
        message    = w.message
        images     = w.images
      }
    }
  }
}

output "ssh_port" {
  description = "The build VM's SSH port on 127.0.0.1."
  value       = module.farm.hosts["kiln-quickstart-1"].port
}

output "known_hosts_line" {
  description = "The build VM's SSH host key, as a known_hosts line."
  value       = "[${module.farm.hosts["kiln-quickstart-1"].address}]:${module.farm.hosts["kiln-quickstart-1"].port} ${module.farm.hosts["kiln-quickstart-1"].host_key}"
}

output "host_release" {
  description = "The backend released on the build VM: its release and health per host."
  value       = kiln_host_release.backend.pool_hosts
}
