package hostprep

import (
	"bufio"
	"context"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/kilnhq/terraform-provider-kiln/internal/remote"
)

// Files Kiln owns on a host.
const (
	limitsPath        = "/etc/security/limits.d/90-kiln.conf"
	systemdLimitsPath = "/etc/systemd/system.conf.d/90-kiln.conf"
	sysctlPath        = "/etc/sysctl.d/90-kiln.conf"
	markerName        = ".kiln" // in each toolchain Kiln installed
	// buildStampName, beside the marker, holds the SHA-256 of the archive
	// whose toolchain built and ran the verification program.
	buildStampName = markerName + "-build"
)

// Toolchain is a Go version Kiln installed, as found on the host.
type Toolchain struct {
	Version       string
	ArchiveSHA256 string // of the verified archive it was installed from
	// InstalledGoSHA256 is bin/go's hash at install; GoSHA256 is its hash now.
	InstalledGoSHA256, GoSHA256 string
	Env                         map[string]string // its go.env
	// BuiltArchiveSHA256 is the archive whose toolchain passed the
	// verification build here, empty when none did.
	BuiltArchiveSHA256 string
}

// Intact reports whether bin/go is still the binary Kiln installed.
func (t Toolchain) Intact() bool { return t.GoSHA256 != "" && t.GoSHA256 == t.InstalledGoSHA256 }

// BuildVerified reports whether this very toolchain, installed from this
// archive and intact, already passed the verification build.
func (t Toolchain) BuildVerified() bool {
	return t.Intact() && t.ArchiveSHA256 != "" && t.BuiltArchiveSHA256 == t.ArchiveSHA256
}

// Facts is what a host looks like, as far as Kiln manages it.
type Facts struct {
	OS, Kernel   string
	GOOS         string // e.g. "linux"
	Arch         string // GOARCH of the host, e.g. "amd64"
	CgroupFS     string // "cgroup2fs" under cgroup v2
	Cmdline      string
	SwapTotalKiB int64
	ActiveSwaps  int // entries in /proc/swaps
	FstabSwaps   int // uncommented swap lines in /etc/fstab
	Toolchains   map[string]Toolchain
	Default      string // version Root/current points at
	GoLink       string // target of /usr/local/bin/go
	// NoFile and NProc are the limits Kiln's files set, 0 when a file is
	// missing and -1 when the files disagree with each other.
	NoFile, NProc int
	// LoginLimits are what the PAM limits file sets, ServiceLimits what the
	// systemd one sets: each file is rewritten only when it differs.
	LoginLimits, ServiceLimits Limits
	Sysctls                    map[string]string
	// Claims lists, by owner, the versions each resource on the host holds.
	Claims map[string][]string
	// GoCacheTmpfsMiB is the size of the tmpfs on the build user's GOCACHE,
	// 0 unless one is mounted there and listed in /etc/fstab.
	GoCacheTmpfsMiB int
	// Tools are the Go tool binaries Kiln installed, whoever's they are.
	Tools []InstalledTool
}

// Limits are the limits one of Kiln's files sets, 0 where it sets none and -1
// where its soft and hard values differ.
type Limits struct{ NoFile, NProc int }

// SwapOff reports whether no swap is active or configured in fstab.
func (f Facts) SwapOff() bool { return f.ActiveSwaps == 0 && f.FstabSwaps == 0 }

// CgroupV2 reports whether the unified hierarchy is mounted.
func (f Facts) CgroupV2() bool { return f.CgroupFS == "cgroup2fs" }

// readFacts reads the host's facts in a single SSH round trip
// (scripts/facts.sh), as the login user, or through sudo when something it
// reads is not readable otherwise.
func readFacts(ctx context.Context, c *remote.Client, spec Spec) (Facts, error) {
	cacheUser := ""
	if spec.GoCacheTmpfsMiB > 0 {
		cacheUser = spec.GoCacheUser
	}
	args := []string{rootOf(spec), markerName, limitsPath, systemdLimitsPath, cacheUser}
	args = append(args, slices.Sorted(maps.Keys(spec.Sysctls))...)
	// Everything read is world-readable unless the host says otherwise, and
	// sudo costs a noticeable part of a refresh on a slow host.
	cmd := remote.BashCommand(factsScript, args...)
	out, err := c.RunAsUser(ctx, "read facts", cmd)
	if err == nil && (strings.HasPrefix(out, "denied=") || strings.Contains(out, "\ndenied=")) {
		out, err = c.Run(ctx, "read facts", cmd)
	}
	if err != nil {
		return Facts{}, err
	}
	return parseFacts(out), nil
}

func rootOf(spec Spec) string {
	if spec.Root == "" {
		return DefaultRoot
	}
	return spec.Root
}

func parseFacts(out string) Facts {
	f := Facts{Toolchains: map[string]Toolchain{}, Sysctls: map[string]string{}, Claims: map[string][]string{}}
	limits := map[string]int{}
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		key, value, ok := strings.Cut(sc.Text(), "=")
		if !ok {
			continue
		}
		switch key {
		case "os":
			f.OS = value
		case "kernel":
			f.Kernel = value
		case "ostype":
			f.GOOS = goOS(value)
		case "arch":
			f.Arch = goArch(value)
		case "cgroupfs":
			f.CgroupFS = value
		case "cmdline":
			f.Cmdline = value
		case "swaptotal":
			f.SwapTotalKiB, _ = strconv.ParseInt(strings.TrimSpace(value), 10, 64)
		case "swapactive":
			f.ActiveSwaps, _ = strconv.Atoi(strings.TrimSpace(value))
		case "fstabswap":
			f.FstabSwaps, _ = strconv.Atoi(strings.TrimSpace(value))
		case "default":
			f.Default = value
		case "golink":
			f.GoLink = value
		case "toolchain":
			fields := strings.Fields(value)
			if len(fields) < 2 {
				continue
			}
			t := f.Toolchains[fields[0]]
			t.Version = fields[0]
			if fields[1] != "-" {
				t.GoSHA256 = fields[1]
			}
			for _, kv := range fields[2:] {
				k, v, _ := strings.Cut(kv, "=")
				switch k {
				case "archive":
					t.ArchiveSHA256 = v
				case "go":
					t.InstalledGoSHA256 = v
				case "built":
					t.BuiltArchiveSHA256 = v
				}
			}
			if t.Env == nil {
				t.Env = map[string]string{}
			}
			f.Toolchains[t.Version] = t
		case "goenv":
			version, kv, _ := strings.Cut(value, " ")
			k, v, _ := strings.Cut(kv, "=")
			t := f.Toolchains[version]
			if t.Env == nil {
				t.Env = map[string]string{}
			}
			t.Env[k] = v
			f.Toolchains[version] = t
		case "limits":
			fields := strings.Fields(value)
			if len(fields) == 4 && fields[0] == "*" {
				if n, err := strconv.Atoi(fields[3]); err == nil {
					limits[fields[1]+" "+fields[2]] = n
				}
			}
		case "sdlimits":
			k, v, _ := strings.Cut(value, "=")
			if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
				limits[k] = n
			}
		case "sysctl":
			k, v, _ := strings.Cut(value, " ")
			f.Sysctls[k] = v
		case "claim":
			owner, versions, _ := strings.Cut(value, " ")
			f.Claims[owner] = strings.Fields(versions)
		case "tool":
			// owner path sha256-now sha256-installed package@version
			if fields := strings.Fields(value); len(fields) == 5 {
				t := InstalledTool{Owner: fields[0], Path: fields[1], InstalledSHA256: fields[3], Ref: fields[4]}
				if fields[2] != "-" {
					t.SHA256 = fields[2]
				}
				f.Tools = append(f.Tools, t)
			}
		case "gocache":
			f.GoCacheTmpfsMiB = tmpfsMiB(value)
		}
	}
	f.LoginLimits = Limits{agreed(limits["soft nofile"], limits["hard nofile"]), agreed(limits["soft nproc"], limits["hard nproc"])}
	f.ServiceLimits = Limits{limits["DefaultLimitNOFILE"], limits["DefaultLimitNPROC"]}
	f.NoFile = agreed(f.LoginLimits.NoFile, f.ServiceLimits.NoFile)
	f.NProc = agreed(f.LoginLimits.NProc, f.ServiceLimits.NProc)
	return f
}

// tmpfsMiB reads the size from a tmpfs's mount options ("rw,size=262144k,..."),
// in MiB.
func tmpfsMiB(options string) int {
	for _, o := range strings.Split(options, ",") {
		if size, ok := strings.CutPrefix(o, "size="); ok {
			if kib, err := strconv.Atoi(strings.TrimSuffix(size, "k")); err == nil {
				return kib / 1024
			}
		}
	}
	return 0
}

// agreed is the common value of two settings of a limit, 0 when neither is
// set and -1 when they differ.
func agreed(a, b int) int {
	if a == b {
		return a
	}
	return -1
}

// goOS maps bash's OSTYPE ("linux-gnu") to GOOS.
func goOS(ostype string) string {
	if strings.HasPrefix(ostype, "linux") {
		return "linux"
	}
	return ostype
}

// goArch maps `uname -m` to GOARCH.
func goArch(machine string) string {
	switch machine {
	case "x86_64":
		return "amd64"
	case "aarch64", "arm64":
		return "arm64"
	case "i386", "i686":
		return "386"
	case "armv6l", "armv7l":
		return "armv6l"
	}
	return machine
}
