# Import by project name.
terraform import kiln_project.shop shop
