package buildfarm

import _ "embed" // the host scripts

// The scripts the build farm runs on hosts, one file each under scripts/,
// their values as positional arguments (remote.BashCommand).
var (
	//go:embed scripts/build.sh
	buildScript string
	//go:embed scripts/pool-host.sh
	poolHostScript string
)
