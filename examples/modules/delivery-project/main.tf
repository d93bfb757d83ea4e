locals {
  # One service per YAML file, named by the file without its extension.
  service_files = fileset(var.services_dir, "*.{yaml,yml}")
  services = {
    for f in local.service_files : trimsuffix(trimsuffix(f, ".yaml"), ".yml") => file("${var.services_dir}/${f}")
  }

  # The builds' images, by digest: what dev runs and what a version pins.
  images      = { for service, build in kiln_build.this : service => build.image_ref }
  dev_version = coalesce(var.dev_version, "dev-${substr(sha256(jsonencode(local.images)), 0, 12)}")
}

# The project, from the folder of YAML files (the course's "K8s YAML project"
# wizard): a service per file.
resource "kiln_project" "this" {
  name              = var.name
  description       = var.description
  services          = local.services
  startup_order     = var.startup_order
  image_rule        = var.image_rule
  build_pool_labels = var.pool_labels

  # The provider takes no empty maps: an empty input is left unset.
  variables = length(var.variables) > 0 ? var.variables : null

  lifecycle {
    precondition {
      condition     = length(local.services) == length(local.service_files)
      error_message = "services_dir has two files for one service (<service>.yaml and <service>.yml): ${join(", ", sort(local.service_files))}."
    }
    precondition {
      condition     = toset(keys(local.services)) == toset(keys(var.builds))
      error_message = "builds must have one entry per service of services_dir: the services are [${join(", ", sort(keys(local.services)))}], builds has [${join(", ", sort(keys(var.builds)))}]."
    }
  }
}

resource "kiln_environment" "dev" {
  project   = kiln_project.this.name
  name      = "dev"
  variables = length(var.dev_variables) > 0 ? var.dev_variables : null
}

resource "kiln_environment" "qa" {
  project   = kiln_project.this.name
  name      = "qa"
  variables = length(var.qa_variables) > 0 ? var.qa_variables : null
}

# The dev workflow: each service built on a pool host chosen by the project's
# build_pool_labels, tested at the commit built, and released to dev once
# every suite passed.
resource "kiln_build" "this" {
  for_each = var.builds

  project    = kiln_project.this.name
  service    = each.key
  go_version = var.go_version

  source {
    git {
      url      = each.value.git_url
      ref      = each.value.git_ref
      username = var.git_username
      password = var.git_password
    }
  }

  go {
    package = each.value.package
    ldflags = each.value.ldflags
  }
}

resource "kiln_test" "this" {
  for_each = var.builds

  project    = kiln_project.this.name
  name       = "${each.key}-tests"
  service    = each.key
  go_version = var.go_version
  build      = kiln_build.this[each.key].id

  source {
    git {
      url      = each.value.git_url
      username = var.git_username
      password = var.git_password
    }
  }

  script    = each.value.test_script
  reports   = each.value.test_reports
  pass_rate = each.value.test_pass_rate
}

resource "kiln_release" "dev" {
  project     = kiln_project.this.name
  environment = kiln_environment.dev.name
  version     = local.dev_version
  services    = local.images

  # The gate: a suite below its pass rate fails the apply, and dev keeps
  # what it runs.
  depends_on = [kiln_test.this]
}

# The ops and qa workflows: the tested images pinned as a version, released
# to qa in the version's startup order.
resource "kiln_version" "this" {
  count = var.qa_version == null ? 0 : 1

  project     = kiln_project.this.name
  name        = var.qa_version.name
  description = var.qa_version.description
  labels      = try(length(var.qa_version.labels), 0) > 0 ? var.qa_version.labels : null
  services    = local.images

  depends_on = [kiln_test.this]

  lifecycle {
    # A version is what it pinned when it was made: later builds go to dev,
    # and qa moves when qa_version names a new version (made of the images of
    # that time).
    ignore_changes = [services]
  }
}

resource "kiln_release" "qa" {
  count = var.qa_version == null ? 0 : 1

  project     = kiln_project.this.name
  environment = kiln_environment.qa.name
  version     = kiln_version.this[0].name
}
