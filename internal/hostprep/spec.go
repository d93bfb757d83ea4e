// Package hostprep turns a host reached over SSH into a hardened Go build
// machine and reads back, in one round trip, every fact it manages. Each step
// checks the host first, changes only what differs, and leaves the host in a
// state the next run repairs when it is interrupted.
package hostprep

import (
	"fmt"
	"path"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/kilnhq/terraform-provider-kiln/internal/gotool"
)

// Spec is the desired state of a Go build host.
type Spec struct {
	// Root holds one directory per Go version (Root/1.24.4); Root/current links
	// the default one and /usr/local/bin/go and gofmt point into it.
	Root     string
	Versions []string // resolved versions, e.g. "1.24.4"
	Default  string
	// Env is written to each toolchain's $GOROOT/go.env; keys not set keep Go's defaults.
	Env map[string]string
	// Owner names the resource the spec is for: the host keeps, per owner,
	// the versions it declared (scripts/claims.sh), so resources sharing a
	// host remove only what they hold. Empty claims nothing.
	Owner string
	// RemoveUndeclared deletes toolchains the owner held that it no longer
	// declares, unless another owner holds them.
	RemoveUndeclared bool

	// Tools are Go programs to build on this machine for the host and install
	// into ToolsDir (DefaultToolsDir when empty); the owner's tools it no
	// longer declares are removed.
	Tools    []gotool.Tool
	ToolsDir string

	SwapOff bool
	NoFile  int // soft and hard open-file limit; 0 leaves limits alone
	NProc   int // process limit; 0 leaves it alone
	Sysctls map[string]string
	// GoCacheTmpfsMiB mounts a tmpfs of this size on GoCacheUser's default
	// GOCACHE (~/.cache/go-build); 0 leaves it alone.
	GoCacheTmpfsMiB int
	GoCacheUser     string
	// CgroupV2 is "verify" (fail unless active), "enable" (kernel command line
	// and a reboot when needed) or "ignore".
	CgroupV2 string

	// VerifyBuild builds and runs a small program with the default toolchain,
	// once per toolchain (a stamp records the archive it passed with), besides
	// the cheap checks every apply runs; TestPackages get `go test -short`.
	VerifyBuild  bool
	TestPackages []string
}

// DefaultRoot is where toolchains go unless the spec says otherwise.
const DefaultRoot = "/usr/local/go"

// EnvKeys are the go.env settings Kiln manages.
var EnvKeys = []string{"GOPROXY", "GOPRIVATE", "GONOSUMDB", "GOSUMDB", "GOFLAGS", "GOTOOLCHAIN"}

// goEnvDefaults is what Go's own $GOROOT/go.env sets.
var goEnvDefaults = map[string]string{
	"GOPROXY":     "https://proxy.golang.org,direct",
	"GOSUMDB":     "sum.golang.org",
	"GOTOOLCHAIN": "auto",
}

var (
	versionPattern = regexp.MustCompile(`^[0-9]+\.[0-9]+(\.[0-9]+)?$`)
	sysctlKey      = regexp.MustCompile(`^[a-z0-9_.]+$`)
	rootPattern    = regexp.MustCompile(`^/[A-Za-z0-9_./-]+$`)
	userPattern    = regexp.MustCompile(`^[a-z_][a-z0-9_-]*[$]?$`)
	ownerPattern   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9-]{0,63}$`)
	// toolNamePattern is a binary name tools.sh and facts.sh take as a word.
	toolNamePattern = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]*$`)
)

// CheckRoot reports a toolchain root that is not an absolute, clean path
// below / made of letters, digits, "_", ".", "-" and "/": scripts take it as
// it is, and "/." or "//" would name / itself.
func CheckRoot(root string) error {
	if !rootPattern.MatchString(root) || path.Clean(root) != root || root == "/" {
		return fmt.Errorf("%q must be an absolute, clean path below / (no \"//\", \".\" or \"..\" parts, no trailing /) "+
			"of letters, digits, _ . - and /", root)
	}
	return nil
}

// Validate reports specs that must not reach a host.
func (s Spec) Validate() error {
	if err := CheckRoot(s.Root); err != nil {
		return fmt.Errorf("toolchain root: %w", err)
	}
	for _, v := range s.Versions {
		if !versionPattern.MatchString(v) {
			return fmt.Errorf("go version %q is not a release version", v)
		}
	}
	if s.ToolsDir != "" {
		if err := CheckRoot(s.ToolsDir); err != nil {
			return fmt.Errorf("tools directory: %w", err)
		}
	}
	for _, t := range s.Tools {
		if !toolNamePattern.MatchString(t.Name()) {
			return fmt.Errorf("go tool %s: binary name %q must be letters, digits, _ . and -", t, t.Name())
		}
		if s.Owner == "" {
			return fmt.Errorf("go tool %s: tools need an owner to record them", t)
		}
	}
	if s.Owner != "" && !ownerPattern.MatchString(s.Owner) {
		return fmt.Errorf("owner %q must be letters, digits and dashes", s.Owner)
	}
	if s.Default != "" && !slices.Contains(s.Versions, s.Default) {
		return fmt.Errorf("default go version %q is not among the declared versions %v", s.Default, s.Versions)
	}
	for k, v := range s.Env {
		if !slices.Contains(EnvKeys, k) {
			return fmt.Errorf("go env %s is not one Kiln manages (%v)", k, EnvKeys)
		}
		if strings.ContainsAny(v, "\n\r") {
			return fmt.Errorf("go env %s must be one line", k)
		}
	}
	for k, v := range s.Sysctls {
		if !sysctlKey.MatchString(k) || strings.ContainsAny(v, "\n\r") {
			return fmt.Errorf("sysctl %q = %q is not valid", k, v)
		}
	}
	if s.GoCacheTmpfsMiB > 0 && !userPattern.MatchString(s.GoCacheUser) {
		return fmt.Errorf("GOCACHE tmpfs user %q is not a valid user name", s.GoCacheUser)
	}
	switch s.CgroupV2 {
	case "", "verify", "enable", "ignore":
	default:
		return fmt.Errorf("cgroup_v2 %q: want verify, enable or ignore", s.CgroupV2)
	}
	return nil
}

// goEnvFile renders a toolchain's go.env.
func goEnvFile(env map[string]string) string {
	merged := map[string]string{}
	for k, v := range goEnvDefaults {
		merged[k] = v
	}
	for k, v := range env {
		merged[k] = v
	}
	keys := make([]string, 0, len(merged))
	for k := range merged {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString("# Managed by Kiln.\n")
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%s\n", k, merged[k])
	}
	return b.String()
}

func limitsFile(nofile, nproc int) string {
	var b strings.Builder
	b.WriteString("# Managed by Kiln: limits for PAM logins.\n")
	if nofile > 0 {
		fmt.Fprintf(&b, "* soft nofile %d\n* hard nofile %d\nroot soft nofile %d\nroot hard nofile %d\n", nofile, nofile, nofile, nofile)
	}
	if nproc > 0 {
		fmt.Fprintf(&b, "* soft nproc %d\n* hard nproc %d\n", nproc, nproc)
	}
	return b.String()
}

func systemdLimitsFile(nofile, nproc int) string {
	var b strings.Builder
	b.WriteString("# Managed by Kiln: limits for services.\n[Manager]\n")
	if nofile > 0 {
		fmt.Fprintf(&b, "DefaultLimitNOFILE=%d\n", nofile)
	}
	if nproc > 0 {
		fmt.Fprintf(&b, "DefaultLimitNPROC=%d\n", nproc)
	}
	return b.String()
}

func sysctlFile(sysctls map[string]string) string {
	keys := make([]string, 0, len(sysctls))
	for k := range sysctls {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString("# Managed by Kiln.\n")
	for _, k := range keys {
		fmt.Fprintf(&b, "%s = %s\n", k, sysctls[k])
	}
	return b.String()
}
