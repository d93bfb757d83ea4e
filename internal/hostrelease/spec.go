// Package hostrelease releases a service to hosts as a systemd unit: each
// release staged under <install dir>/releases/<version>-<digest12>/, put in
// place by an atomic switch of the `current` symlink, restarted, health
// checked on the host, and rolled back to the previous release when it fails;
// hosts go in batches, and a failed batch stops the rollout.
package hostrelease

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kilnhq/terraform-provider-kiln/internal/oci"
)

// Spec is a service as released to every host.
type Spec struct {
	Name string
	// InstallDir holds the releases, the current and previous symlinks, the
	// environment file and Kiln's records; DefaultInstallDir when empty.
	InstallDir   string
	KeepReleases int
	Artifact     Artifact
	Unit         Unit
	// ConfigFiles maps absolute paths to contents, installed with each
	// release (mode 0640, group the service user); SensitiveConfigFiles too,
	// but never shown in logs or errors.
	ConfigFiles          map[string]string
	SensitiveConfigFiles map[string]string
	Health               HealthCheck
	Rollout              Rollout
	// RollbackOnFailure switches a host whose release fails its health check
	// back to the previous release.
	RollbackOnFailure bool
	// DataDirs are directories the service keeps its data in, outside the
	// install dir: created where missing (owned by the service user) before
	// the service starts. RemoveData removes those Kiln created when the
	// service is removed; they are kept otherwise.
	DataDirs   []string
	RemoveData bool
}

// Artifact is the service's executable, fetched by the machine running Kiln
// from exactly one source, URL or OCIRef, and verified against SHA256 (and,
// when PublicKey is set, against its detached OpenPGP signature) before any
// host receives it.
type Artifact struct {
	Version string
	URL     string // http or https
	// OCIRef is in a registry, pinned by digest: the executable's blob
	// (<repository>@sha256:<SHA256>, as kiln_build records an artifact's
	// file), or an artifact's manifest, whose file with digest SHA256 is the
	// executable.
	OCIRef string
	SHA256 string
	// Signature is an armored detached signature of the executable, or
	// SignatureURL where to download one; PublicKey is the signer's armored
	// public key. All empty for an unsigned artifact.
	Signature    string
	SignatureURL string
	PublicKey    string
}

// Unit is the systemd unit the service runs as.
type Unit struct {
	// ExecStart is the command line; DefaultExecStart when empty.
	ExecStart string
	// User runs the service, a system user created where missing; root when
	// empty.
	User             string
	Environment      map[string]string
	SecretEnv        map[string]string // written to a root-only environment file
	WorkingDirectory string
	Limits           Limits
}

// Limits are the unit's resource controls; zero values are unset.
type Limits struct {
	NOFILE    int64
	MemoryMax string // systemd's MemoryMax=, e.g. 512M
	CPUQuota  string // systemd's CPUQuota=, e.g. 150%
}

// HealthCheck is how a host's release proves it works: an HTTP GET or a TCP
// connection to 127.0.0.1:Port on the host.
type HealthCheck struct {
	HTTP               bool
	Port               int64
	Path               string
	ExpectStatus       int64
	ExpectBody         string
	Interval           time.Duration
	Timeout            time.Duration
	StartPeriod        time.Duration
	HealthyThreshold   int64
	UnhealthyThreshold int64
}

// Rollout paces the hosts: BatchSize at a time (all when zero), Pause between
// batches.
type Rollout struct {
	BatchSize int
	Pause     time.Duration
}

const (
	// DefaultKeepReleases is how many releases a host keeps.
	DefaultKeepReleases = 5
	// JournalLines is how much of a failed unit's journal, since its last
	// activation, an error quotes.
	JournalLines = 200
)

// DefaultInstallDir is where a service is installed unless told otherwise.
func DefaultInstallDir(name string) string { return "/opt/kiln/" + name }

var (
	serviceName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)
	versionText = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$`)
	sha256Hex   = regexp.MustCompile(`^[0-9a-f]{64}$`)
	envName     = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	userName    = regexp.MustCompile(`^[a-z_][a-z0-9_-]{0,31}$`)
)

// CheckName checks a service name: a systemd unit and directory name.
func CheckName(s string) error {
	if !serviceName.MatchString(s) {
		return fmt.Errorf("%q is not a service name: lower-case letters, digits, '-' and '_', starting with a letter or digit", s)
	}
	return nil
}

// CheckVersion checks an artifact version, part of the release's directory name.
func CheckVersion(s string) error {
	if !versionText.MatchString(s) {
		return fmt.Errorf("%q is not a version: letters, digits, '.', '_', '+' and '-', at most 64", s)
	}
	return nil
}

// CheckSHA256 checks a SHA-256 digest in hex, with or without "sha256:".
func CheckSHA256(s string) error {
	if !sha256Hex.MatchString(strings.TrimPrefix(s, "sha256:")) {
		return fmt.Errorf("%q is not a SHA-256 digest (64 lower-case hex digits, optionally after \"sha256:\")", s)
	}
	return nil
}

// CheckOCIRef checks a registry reference pinned by digest:
// <repository>@sha256:….
func CheckOCIRef(ref string) error {
	_, err := oci.DigestOf(ref)
	return err
}

// CheckEnvName checks an environment variable name.
func CheckEnvName(s string) error {
	if !envName.MatchString(s) {
		return fmt.Errorf("%q is not an environment variable name", s)
	}
	return nil
}

// CheckUser checks a system user name.
func CheckUser(s string) error {
	if !userName.MatchString(s) {
		return fmt.Errorf("%q is not a system user name", s)
	}
	return nil
}

// CheckFilePath checks where a config file goes: absolute and clean.
func CheckFilePath(p string) error {
	if !path.IsAbs(p) || path.Clean(p) != p || strings.ContainsAny(p, "\n\r") {
		return fmt.Errorf("%q is not a clean absolute path", p)
	}
	return nil
}

// CheckDataDir checks a data directory of a service installed in
// installDir: a clean absolute path, neither the root nor inside the install
// dir (removed with it) nor holding it.
func CheckDataDir(installDir, dir string) error {
	switch {
	case CheckFilePath(dir) != nil || dir == "/":
		return fmt.Errorf("%q is not a clean absolute path below /", dir)
	case within(dir, installDir) || within(installDir, dir):
		return fmt.Errorf("%q overlaps the install dir %s, which a release's removal deletes", dir, installDir)
	}
	return nil
}

// within is whether p is dir or inside it.
func within(p, dir string) bool {
	return p == dir || strings.HasPrefix(p, strings.TrimSuffix(dir, "/")+"/")
}

// Digest is the artifact's SHA-256 without its "sha256:" prefix.
func (a Artifact) Digest() string { return strings.TrimPrefix(a.SHA256, "sha256:") }

// Release names the artifact's release directory: <version>-<digest12>;
// empty for an artifact not yet known (an imported service).
func (a Artifact) Release() string {
	d := a.Digest()
	if len(d) < 12 {
		return ""
	}
	return a.Version + "-" + d[:12]
}

func (s Spec) installDir() string {
	if s.InstallDir != "" {
		return s.InstallDir
	}
	return DefaultInstallDir(s.Name)
}

// DefaultExecStart is the command line that starts the current release's
// binary.
func DefaultExecStart(installDir, name string) string {
	return path.Join(installDir, "current", name)
}

func (s Spec) unitPath() string { return "/etc/systemd/system/" + s.Name + ".service" }
func (s Spec) envPath() string  { return path.Join(s.installDir(), s.Name+".env") }

// file is a file a release installs.
type file struct {
	path    string
	mode    string
	content string
}

// files are what a release installs besides its binary, sorted by path.
func (s Spec) files() []file {
	out := []file{{path: s.unitPath(), mode: "0644", content: s.unitText()}}
	if len(s.Unit.SecretEnv) > 0 {
		out = append(out, file{path: s.envPath(), mode: "0600", content: envFileText(s.Unit.SecretEnv)})
	}
	for _, m := range []map[string]string{s.ConfigFiles, s.SensitiveConfigFiles} {
		for p, c := range m {
			out = append(out, file{path: p, mode: "0640", content: c})
		}
	}
	slices.SortFunc(out, func(a, b file) int { return strings.Compare(a.path, b.path) })
	return out
}

// installed is what the host's manifest should record once the release is
// active: path -> SHA-256 of every file the release installs, its binary
// included.
func (s Spec) installed() map[string]string {
	out := map[string]string{path.Join(s.installDir(), "releases", s.Artifact.Release(), s.Name): s.Artifact.Digest()}
	for _, f := range s.files() {
		sum := sha256.Sum256([]byte(f.content))
		out[f.path] = hex.EncodeToString(sum[:])
	}
	return out
}

// unitText renders the systemd unit.
func (s Spec) unitText() string {
	u := s.Unit
	var b strings.Builder
	line := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	line("[Unit]")
	line("Description=%s (released by Kiln)", s.Name)
	line("Wants=network-online.target")
	line("After=network-online.target")
	line("")
	line("[Service]")
	line("Type=simple")
	execStart := u.ExecStart
	if execStart == "" {
		execStart = DefaultExecStart(s.installDir(), s.Name)
	}
	line("ExecStart=%s", execStart)
	if u.User != "" {
		line("User=%s", u.User)
		line("Group=%s", u.User)
	}
	workDir := u.WorkingDirectory
	if workDir == "" {
		workDir = path.Join(s.installDir(), "current")
	}
	line("WorkingDirectory=%s", workDir)
	for _, k := range slices.Sorted(maps.Keys(u.Environment)) {
		line("Environment=%s", unitQuote(k+"="+u.Environment[k]))
	}
	if len(u.SecretEnv) > 0 {
		line("EnvironmentFile=%s", s.envPath())
	}
	line("Restart=on-failure")
	line("RestartSec=1")
	if u.Limits.NOFILE > 0 {
		line("LimitNOFILE=%d", u.Limits.NOFILE)
	}
	if u.Limits.MemoryMax != "" {
		line("MemoryMax=%s", u.Limits.MemoryMax)
	}
	if u.Limits.CPUQuota != "" {
		line("CPUQuota=%s", u.Limits.CPUQuota)
	}
	line("")
	line("[Install]")
	line("WantedBy=multi-user.target")
	return b.String()
}

// unitQuote quotes an Environment= assignment for systemd: in double quotes,
// with backslashes, quotes and specifiers escaped and newlines as \n.
func unitQuote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "%", "%%")
	return `"` + r.Replace(s) + `"`
}

// envFileText renders an EnvironmentFile=: one KEY="value" a line, escaped
// as systemd reads double-quoted values (which may span lines).
func envFileText(env map[string]string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "$", `\$`, "`", "\\`")
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(env)) {
		b.WriteString(k + `="` + r.Replace(env[k]) + "\"\n")
	}
	return b.String()
}

// seconds renders d for the host scripts' sleep and timeout.
func seconds(d time.Duration) string { return strconv.FormatFloat(d.Seconds(), 'f', -1, 64) }
