# Import by storage pool and image volume.
terraform import kiln_image.go default/go-builder-3f2a9c81d04e.qcow2

# Import a vSphere image by the template's inventory path.
terraform import kiln_image.go_vsphere /DC1/vm/templates/go/go-builder-3f2a9c81d04e
# Import adopts no content library item: with vsphere.content_library set, the
# next apply publishes the template to the library.
