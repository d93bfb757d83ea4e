package image

import _ "embed" // the host scripts

// generalizeScript runs on the source host before its disk becomes an image;
// it takes its options as positional arguments (remote.BashCommand).
//
//go:embed scripts/generalize.sh
var generalizeScript string

// compressScript recompresses an image file in place on the libvirt host; it
// takes the file's path.
//
//go:embed scripts/compress.sh
var compressScript string

// retireLoginScript removes the transient bake VM's login once the host is
// generalized; it takes the user's name.
//
//go:embed scripts/retire-login.sh
var retireLoginScript string
