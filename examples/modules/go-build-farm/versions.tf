terraform {
  required_version = ">= 1.8"

  required_providers {
    kiln = {
      source = "kilnhq/kiln"
    }
  }
}
