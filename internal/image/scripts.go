package image

import _ "embed" // the host script

// generalizeScript runs on the source host before its disk becomes an image;
// it takes its options as positional arguments (remote.BashCommand).
//
//go:embed scripts/generalize.sh
var generalizeScript string
