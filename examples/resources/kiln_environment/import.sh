# Import as <project>/<environment>.
terraform import kiln_environment.dev shop/dev
