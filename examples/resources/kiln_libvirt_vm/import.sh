# Import by domain name or by UUID.
terraform import kiln_libvirt_vm.builder go-builder-1
terraform import kiln_libvirt_vm.builder 0b7c5f0e-3d1b-4a5e-9b1e-2f8c6a4d9e10
