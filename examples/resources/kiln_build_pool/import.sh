# A pool is imported by name (its record in the control namespace, kiln-system),
# or as <control_namespace>/<name>.
terraform import kiln_build_pool.linux linux-amd64
