# The backend service of the shop project, built from main: a new commit on
# main shows in the next plan as a rebuild. The image is named by the
# project's image_rule and pushed to the provider's registry.
variable "git_token" {
  type      = string
  sensitive = true
}

resource "kiln_build" "backend" {
  project    = kiln_project.shop.name
  service    = "backend"
  go_version = "1.24"

  source {
    git {
      url         = "https://git.example.com/shop/backend.git"
      ref         = "main"
      username    = "kiln"
      password_wo = var.git_token
    }
  }

  go {
    package = "./cmd/backend"
    ldflags = "-s -w -X main.version=1.4.0"
  }

  depends_on = [kiln_build_pool.linux]
}

# The image by digest, as a release's services take it:
# services = { backend = kiln_build.backend.image_ref }
output "backend_image" {
  value = kiln_build.backend.image_ref
}

# A script build whose files are pushed as an OCI artifact.
resource "kiln_build" "docs" {
  name        = "shop-docs"
  go_version  = "1.24"
  pool_labels = { os = "linux" }

  source {
    path = "${path.module}/docs-site"
  }

  script    = "go run ./cmd/render -out dist"
  artifacts = ["dist/index.html", "dist/site.tar"]
}
