# The course's shop as one module call: a backend and a frontend from
# k8s/*.yaml, built and tested on the pool labelled pool = "go", released to
# dev once their tests pass, and version v1.0.0 of the tested images released
# to qa. A new commit on main shows in the next plan as a rebuild, a test run
# and a release to dev; qa moves when qa_version names a new version.
terraform {
  required_providers {
    kiln = {
      source = "kilnhq/kiln"
    }
  }
}

variable "registry_password" {
  type      = string
  sensitive = true
}

variable "git_token" {
  type      = string
  sensitive = true
}

provider "kiln" {
  kubernetes {
    config_path = pathexpand("~/.kube/config")
  }

  registry {
    url      = "registry.example.com"
    username = "kiln"
    password = var.registry_password
  }
}

module "shop" {
  source = "../"

  name          = "shop"
  description   = "The course's shop: a backend and a frontend showing the build stamps."
  services_dir  = "${path.module}/k8s"
  startup_order = [["backend"], ["frontend"]]
  variables     = { log_level = "info" }
  dev_variables = { log_level = "debug" }

  pool_labels = { pool = "go" }
  go_version  = "1.24"

  builds = {
    backend = {
      git_url = "https://git.example.com/shop/backend.git"
      ldflags = "-X main.buildStamp={{.Git.CommitDate}}"
    }
    frontend = {
      git_url = "https://git.example.com/shop/frontend.git"
      ldflags = "-X main.buildStamp={{.Git.CommitDate}}"
      # The course's init.sh: a script that writes JUnit reports, 90% of
      # whose tests must pass.
      test_script    = "./test/init.sh"
      test_reports   = ["test-report/*.xml"]
      test_pass_rate = 90
    }
  }
  git_username = "kiln"
  git_password = var.git_token

  qa_version = {
    name        = "v1.0.0"
    description = "The first version with both build stamps."
    labels      = { channel = "candidate" }
  }
}

output "dev_images" {
  value = module.shop.images
}

output "qa_version" {
  value = "${module.shop.version} (revision ${module.shop.qa_revision} in ${module.shop.qa_namespace})"
}
