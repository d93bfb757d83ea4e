# Import as <project>/<name>.
terraform import kiln_version.v1_4_0 shop/v1.4.0
