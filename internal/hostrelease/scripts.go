package hostrelease

import _ "embed" // the host scripts

// The scripts a release runs on hosts, one file each under scripts/, their
// values as positional arguments (remote.BashCommand) and file contents on
// standard input.
var (
	//go:embed scripts/activate.sh
	activateScript string
	//go:embed scripts/health.sh
	healthScript string
	//go:embed scripts/journal.sh
	journalScript string
	//go:embed scripts/prune.sh
	pruneScript string
	//go:embed scripts/read.sh
	readScript string
	//go:embed scripts/remove.sh
	removeScript string
	//go:embed scripts/stage.sh
	stageScript string
)
