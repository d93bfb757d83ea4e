resource "kiln_environment" "dev" {
  project = kiln_project.shop.name
  name    = "dev"
  # namespace defaults to "shop-env-dev"

  labels      = { team = "shop" }
  annotations = { "kiln.dev/owner" = "platform" }
  variables   = { api_port = "9090" }

  ingress_domain = "dev.shop.example.com"

  image_pull_secret = {
    registry = "registry.example.com"
    username = "ci"
    password = var.registry_password
  }

  quota = {
    pods           = "50"
    "requests.cpu" = "8"
  }

  limit_range = {
    default         = { cpu = "500m", memory = "256Mi" }
    default_request = { cpu = "100m", memory = "64Mi" }
  }
}

resource "kiln_environment" "prod" {
  project    = kiln_project.shop.name
  name       = "prod"
  production = true # destroy is refused unless force_destroy = true
}

variable "registry_password" {
  type      = string
  sensitive = true
}
