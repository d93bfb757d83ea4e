output "project" {
  description = "The project's name."
  value       = kiln_project.this.name
}

output "dev_namespace" {
  description = "Namespace of the dev environment."
  value       = kiln_environment.dev.namespace
}

output "qa_namespace" {
  description = "Namespace of the qa environment."
  value       = kiln_environment.qa.namespace
}

output "images" {
  description = "The built images by service, by digest (`<registry>/<repository>@sha256:…`)."
  value       = local.images
}

output "commits" {
  description = "The commit each service was built and tested at."
  value       = { for service, build in kiln_build.this : service => build.commit }
}

output "tests" {
  description = "Each service's test run: `status`, `total`, `passed`, `failed`, `pass_rate` (measured, percent) and `report_ref` (the JUnit report in the registry)."
  value = {
    for service, suite in kiln_test.this : service => {
      status     = suite.status
      total      = suite.total
      passed     = suite.passed
      failed     = suite.failed
      pass_rate  = suite.measured_pass_rate
      report_ref = suite.report_ref
    }
  }
}

output "dev_version" {
  description = "Version label of the release to dev."
  value       = kiln_release.dev.version
}

output "dev_revision" {
  description = "The revision deployed to dev."
  value       = kiln_release.dev.revision
}

output "dev_images" {
  description = "The images dev runs, by service."
  value       = kiln_release.dev.deployed_images
}

output "version" {
  description = "The version released to qa, or null without `qa_version`."
  value       = one(kiln_version.this[*].name)
}

output "version_images" {
  description = "The version's images by service (after `distribute_to`, if any), or null without `qa_version`."
  value       = one(kiln_version.this[*].images)
}

output "qa_revision" {
  description = "The revision deployed to qa, or null without `qa_version`."
  value       = one(kiln_release.qa[*].revision)
}

output "qa_images" {
  description = "The images qa runs, or null without `qa_version`."
  value       = one(kiln_release.qa[*].deployed_images)
}
