# The backend's unit tests at exactly the commit kiln_build.backend built,
# as a gate: below 100% the apply fails naming the failed tests, and whatever
# depends on the suite does not happen. A release to dev gated by it:
#   depends_on = [kiln_test.backend_unit]
resource "kiln_test" "backend_unit" {
  project    = kiln_project.shop.name
  name       = "backend-unit"
  service    = "backend"
  go_version = "1.24"
  build      = kiln_build.backend.id

  source {
    git {
      url         = "https://git.example.com/shop/backend.git"
      username    = "kiln"
      password_wo = var.git_token
    }
  }

  # The default script, go test -json ./..., converted to JUnit.
  env = { GOFLAGS = "-count=1" }
}

# A custom script that writes JUnit reports, as the course's init.sh does;
# at least 90% of its tests must pass, and a run below that is recorded and
# passed on rather than failing the apply.
resource "kiln_test" "backend_api" {
  project    = kiln_project.shop.name
  name       = "backend-api"
  go_version = "1.24"

  source {
    git {
      url         = "https://git.example.com/shop/backend.git"
      ref         = "main"
      username    = "kiln"
      password_wo = var.git_token
    }
  }

  script     = "./test/init.sh"
  reports    = ["test-report/*.xml"]
  pass_rate  = 90
  on_failure = "record"
  timeout    = "20m"
}

output "api_tests" {
  value = "${kiln_test.backend_api.passed}/${kiln_test.backend_api.total - kiln_test.backend_api.skipped} passed (${kiln_test.backend_api.status}); report ${kiln_test.backend_api.report_ref}"
}
