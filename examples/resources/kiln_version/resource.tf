# A version: the images qa and prod get, pinned by digest (from kiln_build
# outputs, kiln_build.api.image_ref and the like, or tags resolved at plan),
# with the project's startup order as it is now.
resource "kiln_version" "v1_4_0" {
  project     = kiln_project.shop.name
  name        = "v1.4.0"
  description = "Checkout with saved carts."
  labels      = { channel = "stable" }

  services = {
    db  = "registry.example.com/shop/db@sha256:4c1a6bd0e5f7b0e4b8a4bb2c3f0e6c1d2a9e8f7b6c5d4e3f2a1b0c9d8e7f6a5b"
    api = "registry.example.com/shop/api@sha256:9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f"
    web = "registry.example.com/shop/web@sha256:1f2e3d4c5b6a79880716253445362718a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4"
  }

  # Copy the images to another registry or repository as well (by digest,
  # tagged v1.4.0) and release those copies:
  # distribute_to = "registry.example.com/releases"
}

# Released without services: the version's images, in its startup order.
resource "kiln_release" "prod" {
  project     = kiln_project.shop.name
  environment = kiln_environment.prod.name
  version     = kiln_version.v1_4_0.name
}
