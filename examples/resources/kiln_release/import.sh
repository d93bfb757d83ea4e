# Import as <project>/<environment>.
terraform import kiln_release.dev shop/dev
