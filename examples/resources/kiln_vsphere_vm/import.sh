# Import by inventory path (absolute, or relative to the datacenter's VM folder) or by BIOS UUID.
terraform import kiln_vsphere_vm.builder /DC1/vm/builds/go/go-builder-1
terraform import kiln_vsphere_vm.builder 4203c9a1-7c1e-5b2f-9d8e-3a6b1f0c2d4e
