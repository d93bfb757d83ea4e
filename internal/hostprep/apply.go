package hostprep

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kilnhq/terraform-provider-kiln/internal/gotoolchain"
	"github.com/kilnhq/terraform-provider-kiln/internal/remote"
	"github.com/kilnhq/terraform-provider-kiln/internal/wait"
)

// Host is a host being prepared, reached over SSH.
type Host struct {
	// Target is where the host is reached: Connect dials it, and Apply dials
	// it again after a reboot.
	Target remote.Target
	// Source gives verified toolchain archives for the host's platform.
	Source gotoolchain.Source
	// Log receives progress messages; nil discards them.
	Log *slog.Logger

	client *remote.Client
}

// Connect dials the host; the other methods use that connection until Close.
func (h *Host) Connect(ctx context.Context) error {
	c, err := remote.Dial(ctx, h.Target)
	if err != nil {
		return err
	}
	h.client = c
	return nil
}

// Close ends the connection.
func (h *Host) Close() {
	if h.client != nil {
		h.client.Close()
	}
}

// ReadFacts reads the host's facts, as far as spec manages them, in one round
// trip.
func (h *Host) ReadFacts(ctx context.Context, spec Spec) (Facts, error) {
	f, err := readFacts(ctx, h.client, spec)
	return f, h.Target.Secrets.Error(err)
}

// ReadFactsOn reads the facts of the host at the other end of c, as far as
// spec manages them, for engines that hold their own connection (a build
// pool's probe, logged in as its build user).
func ReadFactsOn(ctx context.Context, c *remote.Client, spec Spec) (Facts, error) {
	return readFacts(ctx, c, spec)
}

// Verification is what the default toolchain reported after the run.
type Verification struct {
	GoVersion   string // `go version`
	GOROOT      string
	GOPATH      string
	BuildOutput string // what the small program printed
	TestOutput  string // `go test -short` output, when packages were given
}

func (h *Host) log(ctx context.Context, msg string, args ...any) {
	if h.Log != nil {
		h.Log.InfoContext(ctx, msg, h.Target.Secrets.Args(append(args, "host", h.Target.Addr))...)
	}
}

// Apply brings the host to spec, touching only what differs from what it
// finds, then verifies the default toolchain. Each step is safe to interrupt:
// toolchains are unpacked beside the root and renamed into place only when
// complete and checked, so a half-installed toolchain is never selected.
// Errors hide the target's secrets and URL credentials.
func (h *Host) Apply(ctx context.Context, spec Spec) (Facts, Verification, error) {
	facts, verification, err := h.apply(ctx, spec)
	return facts, verification, h.Target.Secrets.Error(err)
}

func (h *Host) apply(ctx context.Context, spec Spec) (Facts, Verification, error) {
	spec.Root = rootOf(spec)
	if err := spec.Validate(); err != nil {
		return Facts{}, Verification{}, err
	}
	facts, err := readFacts(ctx, h.client, spec)
	if err != nil {
		return Facts{}, Verification{}, err
	}

	if err := h.claim(ctx, spec, facts); err != nil {
		return facts, Verification{}, err
	}
	envFile := goEnvFile(spec.Env)
	observed := facts.Observed(spec)
	installed := map[string]bool{}
	for _, v := range spec.Versions {
		if slices.Contains(observed.Versions, v) {
			continue
		}
		if err := h.install(ctx, spec.Root, v, envFile, facts); err != nil {
			return facts, Verification{}, err
		}
		installed[v] = true
	}
	if err := h.configure(ctx, spec, facts, envFile, installed); err != nil {
		return facts, Verification{}, err
	}
	switch {
	case spec.CgroupV2 == "enable" && !facts.CgroupV2():
		if err := h.enableCgroupV2(ctx); err != nil {
			return facts, Verification{}, err
		}
	case spec.CgroupV2 == "verify" && !facts.CgroupV2():
		return facts, Verification{}, fmt.Errorf("%s: cgroup v2 is not active (/sys/fs/cgroup is %q); set cgroup_v2 = \"enable\" to switch with a reboot",
			h.client.Host(), facts.CgroupFS)
	}

	if facts, err = readFacts(ctx, h.client, spec); err != nil {
		return facts, Verification{}, err
	}
	verification, err := h.verify(ctx, spec)
	return facts, verification, err
}

// configure makes every change besides toolchain installs that the facts
// call for, in one batch; envFile is the rendered go.env.
func (h *Host) configure(ctx context.Context, spec Spec, facts Facts, envFile string, installed map[string]bool) error {
	observed := facts.Observed(spec)
	var b batch
	for _, v := range spec.Versions {
		if !installed[v] && !sameEnv(facts.Toolchains[v].Env, spec.Env) {
			b.add("write go.env of go"+v, writeFileScript, spec.Root+"/"+v+"/go.env", envFile)
		}
	}
	if spec.Default != "" && (facts.Default != spec.Default || facts.GoLink != spec.Root+"/current/bin/go") {
		b.add("select go"+spec.Default+" as the default", selectDefaultScript, spec.Root, spec.Default)
	}
	if spec.RemoveUndeclared && spec.Owner != "" &&
		slices.ContainsFunc(facts.Claims[spec.Owner], func(v string) bool { return !slices.Contains(spec.Versions, v) }) {
		b.add("remove undeclared toolchains", claimsScript, append([]string{spec.Root, markerName, spec.Owner, "settle"}, spec.Versions...)...)
	}
	if spec.SwapOff && !observed.SwapOff {
		b.add("swap off", swapOffScript)
	}
	// Both limits are compared, declared or not: the files also drop a limit
	// that is no longer declared.
	if (spec.NoFile > 0 || spec.NProc > 0) && (facts.NoFile != spec.NoFile || facts.NProc != spec.NProc) {
		b.add("write limits", writeFileScript, limitsPath, limitsFile(spec.NoFile, spec.NProc))
		b.add("write service limits", writeFileScript, systemdLimitsPath, systemdLimitsFile(spec.NoFile, spec.NProc))
		b.add("reload systemd", reexecSystemdScript)
	}
	if len(spec.Sysctls) > 0 && !maps.Equal(observed.Sysctls, spec.Sysctls) {
		b.add("write sysctls", writeFileScript, sysctlPath, sysctlFile(spec.Sysctls))
		b.add("apply sysctls", applySysctlsScript, sysctlPath)
	}
	if spec.GoCacheTmpfsMiB > 0 && observed.GoCacheTmpfsMiB != spec.GoCacheTmpfsMiB {
		b.add("mount tmpfs GOCACHE", goCacheTmpfsScript, spec.GoCacheUser, strconv.Itoa(spec.GoCacheTmpfsMiB))
	}
	if len(b.steps) == 0 {
		return nil
	}
	h.log(ctx, "configuring the host", "steps", b.names())
	return b.run(ctx, h.client)
}

// claim records on the host that spec's owner holds its versions, before any
// is installed: from then on another resource sharing the host leaves them.
func (h *Host) claim(ctx context.Context, spec Spec, facts Facts) error {
	held := facts.Claims[spec.Owner]
	if spec.Owner == "" || !slices.ContainsFunc(spec.Versions, func(v string) bool { return !slices.Contains(held, v) }) {
		return nil
	}
	_, err := h.client.Run(ctx, "claim toolchains", remote.BashCommand(claimsScript,
		append([]string{spec.Root, markerName, spec.Owner, "claim"}, spec.Versions...)...))
	return err
}

// install puts a verified toolchain for the host's platform in place
// (scripts/install.sh): unpacked beside the root, given its go.env and Kiln's
// marker, and renamed into place only once complete.
//
// A streamed archive is hashed and inspected on this side as it goes out (the
// SSH channel delivers it intact), and the host commits what it unpacked only
// on the verdict line that follows the archive. An archive the host fetches
// itself is hashed, and its go command run, on the host.
func (h *Host) install(ctx context.Context, root, version, goEnv string, facts Facts) error {
	archive, err := h.fetch(ctx, version, facts)
	if err != nil {
		return err
	}
	step := "install go" + version
	fields := map[string]any{"version": version, "archive_sha256": archive.SHA256}
	args := []string{root, version, archive.SHA256, goEnv, markerName}
	var (
		stdin  io.Reader
		sealed *sealedArchive
	)
	if archive.URL != "" {
		fields["fetched_by_host_from"] = archive.URL
		args = append(args, "fetch", archive.URL)
	} else {
		rc, err := archive.Open()
		if err != nil {
			return err
		}
		defer rc.Close()
		sealed = sealArchive(rc, version)
		defer sealed.stop()
		stdin = sealed
		args = append(args, "stream", strconv.FormatInt(archive.Size, 10))
	}
	h.log(ctx, "installing toolchain", fields)
	start := time.Now()
	if _, err := h.client.RunInput(ctx, step, remote.BashCommand(installScript, args...), stdin); err != nil {
		if sealed != nil {
			if refused := sealed.refusal(); refused != nil {
				return fmt.Errorf("%s: step %q: %w; nothing was installed", h.client.Host(), step, refused)
			}
		}
		return err
	}
	h.log(ctx, "installed toolchain", "version", version, "seconds", time.Since(start).Seconds())
	return nil
}

// fetch gets the verified archive of version for the platform facts report.
func (h *Host) fetch(ctx context.Context, version string, facts Facts) (gotoolchain.Archive, error) {
	platform, err := facts.Platform()
	if err != nil {
		return gotoolchain.Archive{}, fmt.Errorf("%s: %w", h.Target.Addr, err)
	}
	return h.Source.Fetch(ctx, version, platform)
}

// enableCgroupV2 puts the unified hierarchy on the kernel command line, reboots
// and waits for the host to come back on cgroup v2.
func (h *Host) enableCgroupV2(ctx context.Context) error {
	h.log(ctx, "enabling cgroup v2 (kernel command line and reboot)")
	if _, err := h.client.Run(ctx, "enable cgroup v2", remote.BashCommand(enableCgroupV2Script)); err != nil {
		return err
	}
	if err := h.reboot(ctx); err != nil {
		return err
	}
	out, err := h.client.Run(ctx, "check cgroup v2", remote.BashCommand(cgroupFSScript))
	if err != nil {
		return err
	}
	if strings.TrimSpace(out) != "cgroup2fs" {
		return fmt.Errorf("%s: still not on cgroup v2 after the reboot (/sys/fs/cgroup is %q)", h.client.Host(), strings.TrimSpace(out))
	}
	return nil
}

// reboot restarts the host and reconnects once it has booted again.
func (h *Host) reboot(ctx context.Context) error {
	bootID, err := h.client.Run(ctx, "read boot id", remote.BashCommand(bootIDScript))
	if err != nil {
		return err
	}
	h.log(ctx, "rebooting")
	// The connection drops as the host goes down: that error is expected.
	_, _ = h.client.Run(ctx, "reboot", remote.BashCommand(rebootScript))
	h.client.Close()
	err = wait.Until(ctx, h.Target.Addr+" to come back from a reboot", wait.Default, func(ctx context.Context) (bool, error) {
		c, err := remote.Dial(ctx, h.Target)
		if err != nil {
			return false, wait.Transient(err)
		}
		id, err := c.Run(ctx, "read boot id", remote.BashCommand(bootIDScript))
		if err == nil && id != bootID {
			h.client = c
			return true, nil
		}
		c.Close()
		return false, wait.Transient(err)
	})
	if err != nil {
		return err
	}
	h.log(ctx, "back after reboot")
	return nil
}

// verify runs the default toolchain as the login user, as a build there would.
func (h *Host) verify(ctx context.Context, spec Spec) (Verification, error) {
	if spec.Default == "" {
		return Verification{}, nil
	}
	goBin := spec.Root + "/" + spec.Default + "/bin/go"
	out, err := h.client.RunAsUser(ctx, "verify go version", remote.BashCommand(goVersionScript, goBin))
	if err != nil {
		return Verification{}, err
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var v Verification
	if len(lines) == 3 {
		v.GoVersion, v.GOROOT, v.GOPATH = lines[0], lines[1], lines[2]
	}
	if spec.VerifyBuild {
		h.log(ctx, "building and running a test program")
		out, err := h.client.RunAsUser(ctx, "verify build", remote.BashCommand(verifyBuildScript, goBin))
		if err != nil {
			return v, err
		}
		v.BuildOutput = strings.TrimSpace(out)
	}
	if len(spec.TestPackages) > 0 {
		h.log(ctx, "testing std packages", "packages", spec.TestPackages)
		out, err := h.client.RunAsUser(ctx, "verify go test", remote.BashCommand(goTestScript, append([]string{goBin}, spec.TestPackages...)...))
		if err != nil {
			return v, err
		}
		v.TestOutput = strings.TrimSpace(out)
	}
	return v, nil
}
