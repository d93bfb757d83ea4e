# Import by storage pool and image volume.
terraform import kiln_image.go default/go-builder-3f2a9c81d04e.qcow2
