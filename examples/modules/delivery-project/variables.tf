variable "name" {
  type        = string
  description = "The project's name, a DNS label; its environments' namespaces are `<name>-env-dev` and `<name>-env-qa`."

  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9]{0,38}[a-z0-9])?$", var.name))
    error_message = "name must be a DNS label of at most 40 characters (lower-case letters, digits and '-'), so that its namespaces stay under 63."
  }
}

variable "description" {
  type        = string
  default     = null
  description = "Free text describing the project."
}

variable "services_dir" {
  type        = string
  description = "Folder of the services' Kubernetes YAML, one file per service named `<service>.yaml` (or `.yml`), with `$${image}` where the service's image goes and `$${var}` for the project's and environments' variables."

  validation {
    condition     = length(fileset(var.services_dir, "*.{yaml,yml}")) > 0
    error_message = "services_dir holds no *.yaml or *.yml file: each service is one such file."
  }
}

variable "startup_order" {
  type        = list(list(string))
  default     = null
  description = "Ordered groups of service names, released group by group, for example `[[\"backend\"], [\"frontend\"]]`. Defaults to every service in one group."
}

variable "variables" {
  type        = map(string)
  default     = {}
  description = "The project's variables, the services' `$${var}` placeholders; each environment may override them."
}

variable "image_rule" {
  type        = string
  default     = null
  description = "Image naming rule for the builds, a Go template over `.Project`, `.Service`, `.Branch`, `.Version` and `.Timestamp`. Defaults to the provider's (`kiln_project`'s `image_rule`)."
}

variable "pool_labels" {
  type        = map(string)
  description = "Labels choosing the `kiln_build_pool` the builds and tests run on, for example `{ pool = \"go\" }`."

  validation {
    condition     = length(var.pool_labels) > 0
    error_message = "pool_labels needs at least one label: it chooses the build pool."
  }
}

variable "go_version" {
  type        = string
  description = "Go version of the builds and tests: `1.24` (the newest patch a pool host has) or exact (`1.24.4`)."

  validation {
    condition     = can(regex("^1\\.[0-9]+(\\.[0-9]+)?$", var.go_version))
    error_message = "go_version must be a Go version such as 1.24 or 1.24.4."
  }
}

variable "builds" {
  type = map(object({
    git_url        = string
    git_ref        = optional(string, "main")
    package        = optional(string, ".")
    ldflags        = optional(string)
    test_script    = optional(string)
    test_reports   = optional(list(string))
    test_pass_rate = optional(number, 100)
  }))
  description = <<-EOT
    How each service is built and tested, by service name: one entry for every YAML file in `services_dir`.
    - `git_url`, `git_ref` (default `main`): the source; the ref is resolved to a commit at plan time, so a new commit shows as a rebuild.
    - `package` (default `.`), `ldflags`: the Go package built into the image and its linker flags (`{{.Git.CommitDate}}` and the like are expanded).
    - `test_script`, `test_reports`: the test suite run at the commit built; defaults to `go test -json ./...` converted to JUnit, or a script writing the JUnit files `test_reports` match.
    - `test_pass_rate` (default 100): the percentage of tests that must pass for the release to dev to happen.
  EOT

  validation {
    condition     = length(var.builds) > 0
    error_message = "builds needs an entry for every service."
  }

  validation {
    condition     = alltrue([for b in var.builds : b.test_pass_rate >= 0 && b.test_pass_rate <= 100])
    error_message = "builds[*].test_pass_rate is a percentage, between 0 and 100."
  }

  validation {
    condition     = alltrue([for b in var.builds : (b.test_script == null) == (b.test_reports == null)])
    error_message = "builds[*].test_reports names the JUnit files test_script writes: give both or neither (the default script's output is converted)."
  }
}

variable "git_username" {
  type        = string
  default     = null
  description = "User name for the builds' git repositories, if they need one."
}

variable "git_password" {
  type        = string
  default     = null
  sensitive   = true
  description = "Password or token for the builds' git repositories, if they need one."
}

variable "dev_variables" {
  type        = map(string)
  default     = {}
  description = "Variables of the dev environment, over the project's."
}

variable "qa_variables" {
  type        = map(string)
  default     = {}
  description = "Variables of the qa environment, over the project's."
}

variable "dev_version" {
  type        = string
  default     = null
  description = "Version label of the release to dev. Defaults to `dev-` and the first 12 hex digits of the SHA-256 of the images released, so it changes with them."

  validation {
    condition     = var.dev_version == null || can(regex("^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$", var.dev_version))
    error_message = "dev_version must be a label value: letters, digits, '-', '_' and '.', at most 63 characters, starting and ending with a letter or digit."
  }
}

variable "qa_version" {
  type = object({
    name        = string
    description = optional(string)
    labels      = optional(map(string))
  })
  default     = null
  description = "A version to make of the tested builds' images and release to qa (the course's ops workflow): its `name` (unique in the project), `description` and `labels`. The version keeps the images it pinned when later builds change them; a new `name` makes a new version of the current images and releases it to qa. Unset, nothing is released to qa; unsetting it destroys the version and the release to qa, whose objects leave the qa namespace."

  validation {
    condition     = var.qa_version == null || can(regex("^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$", var.qa_version.name))
    error_message = "qa_version.name must be a label value: letters, digits, '-', '_' and '.', at most 63 characters, starting and ending with a letter or digit."
  }
}
