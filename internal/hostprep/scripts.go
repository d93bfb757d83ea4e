package hostprep

import _ "embed" // the host scripts

// The scripts Kiln runs on hosts, one file each under scripts/. Each takes its
// values as positional arguments (remote.BashCommand), so nothing is spliced
// into its text or escaped for it.
var (
	//go:embed scripts/apply-sysctls.sh
	applySysctlsScript string
	//go:embed scripts/batch.sh
	batchScript string
	//go:embed scripts/boot-id.sh
	bootIDScript string
	//go:embed scripts/claims.sh
	claimsScript string
	//go:embed scripts/cgroup-fs.sh
	cgroupFSScript string
	//go:embed scripts/enable-cgroup-v2.sh
	enableCgroupV2Script string
	//go:embed scripts/facts.sh
	factsScript string
	//go:embed scripts/go-test.sh
	goTestScript string
	//go:embed scripts/gocache-tmpfs.sh
	goCacheTmpfsScript string
	//go:embed scripts/install.sh
	installScript string
	//go:embed scripts/reboot.sh
	rebootScript string
	//go:embed scripts/reexec-systemd.sh
	reexecSystemdScript string
	//go:embed scripts/remove-gocache-tmpfs.sh
	removeGoCacheTmpfsScript string
	//go:embed scripts/select-default.sh
	selectDefaultScript string
	//go:embed scripts/swap-off.sh
	swapOffScript string
	//go:embed scripts/tools.sh
	toolsScript string
	//go:embed scripts/uninstall.sh
	uninstallScript string
	//go:embed scripts/verify-build.sh
	verifyBuildScript string
	//go:embed scripts/verify-go.sh
	verifyGoScript string
	//go:embed scripts/write-file.sh
	writeFileScript string
)
