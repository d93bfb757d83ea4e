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

	"github.com/kilnhq/terraform-provider-kiln/internal/gotool"
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
	// Tools builds the spec's Go tools for the host on this machine.
	Tools *gotool.Builder
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

func (h *Host) log(ctx context.Context, msg string, args ...any) {
	if h.Log != nil {
		h.Log.InfoContext(ctx, msg, h.Target.Secrets.Args(append(args, "host", h.Target.Addr))...)
	}
}

// took logs that step ended on this host and how long it took since start:
// a fleet's logs show, host by host, where the time went.
func (h *Host) took(ctx context.Context, step string, start time.Time, args ...any) {
	seconds := float64(time.Since(start).Milliseconds()) / 1000
	h.log(ctx, "step done", append([]any{"step", step, "seconds", seconds}, args...)...)
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
	begin := time.Now()
	facts, err := h.readFacts(ctx, spec)
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
	for _, t := range spec.Tools {
		if facts.toolIntact(spec, t) {
			continue
		}
		if err := h.installTool(ctx, spec, t, facts); err != nil {
			return facts, Verification{}, err
		}
	}
	if b := configureSteps(spec, facts, envFile, installed); len(b.steps) > 0 {
		start := time.Now()
		h.log(ctx, "configuring the host", "steps", b.names())
		if err := b.run(ctx, h.client); err != nil {
			return facts, Verification{}, err
		}
		h.took(ctx, "configure", start, "steps", b.names())
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

	if facts, err = h.readFacts(ctx, spec); err != nil {
		return facts, Verification{}, err
	}
	verification, err := h.verify(ctx, spec, facts)
	if err == nil {
		h.took(ctx, "apply", begin, "installed", len(installed))
	}
	return facts, verification, err
}

// readFacts reads the host's facts and logs how long it took.
func (h *Host) readFacts(ctx context.Context, spec Spec) (Facts, error) {
	start := time.Now()
	f, err := readFacts(ctx, h.client, spec)
	if err == nil {
		h.took(ctx, "read facts", start)
	}
	return f, err
}

// configureSteps are the changes besides toolchain installs that the facts
// call for, to run in one batch; envFile is the rendered go.env.
func configureSteps(spec Spec, facts Facts, envFile string, installed map[string]bool) batch {
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
	if step, stale := settleTools(spec, facts); stale {
		b.steps = append(b.steps, step)
	}
	if spec.SwapOff && !observed.SwapOff {
		b.add("swap off", swapOffScript)
	}
	// Both limits are compared, declared or not: the files also drop a limit
	// that is no longer declared. Each file is rewritten only when it differs,
	// and systemd, whose re-exec takes seconds on a slow host, re-executes
	// only for its own.
	if limits := (Limits{spec.NoFile, spec.NProc}); spec.NoFile > 0 || spec.NProc > 0 {
		if facts.LoginLimits != limits {
			b.add("write limits", writeFileScript, limitsPath, limitsFile(spec.NoFile, spec.NProc))
		}
		if facts.ServiceLimits != limits {
			b.add("write service limits", writeFileScript, systemdLimitsPath, systemdLimitsFile(spec.NoFile, spec.NProc))
			b.add("reload systemd", reexecSystemdScript)
		}
	}
	if len(spec.Sysctls) > 0 && !maps.Equal(observed.Sysctls, spec.Sysctls) {
		b.add("write sysctls", writeFileScript, sysctlPath, sysctlFile(spec.Sysctls))
		b.add("apply sysctls", applySysctlsScript, sysctlPath)
	}
	if spec.GoCacheTmpfsMiB > 0 && observed.GoCacheTmpfsMiB != spec.GoCacheTmpfsMiB {
		b.add("mount tmpfs GOCACHE", goCacheTmpfsScript, spec.GoCacheUser, strconv.Itoa(spec.GoCacheTmpfsMiB))
	}
	return b
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
	start := time.Now()
	archive, err := h.fetch(ctx, version, facts)
	if err != nil {
		return err
	}
	h.took(ctx, "fetch go"+version, start)
	step := "install go" + version
	fields := []any{"version", version, "archive_sha256", archive.SHA256}
	args := []string{root, version, archive.SHA256, goEnv, markerName}
	var (
		stdin  io.Reader
		sealed *sealedArchive
	)
	if archive.URL != "" {
		fields = append(fields, "fetched_by_host_from", archive.URL)
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
	h.log(ctx, "installing toolchain", fields...)
	start = time.Now()
	if _, err := h.client.RunInput(ctx, step, remote.BashCommand(installScript, args...), stdin); err != nil {
		if sealed != nil {
			if refused := sealed.refusal(); refused != nil {
				return fmt.Errorf("%s: step %q: %w; nothing was installed", h.client.Host(), step, refused)
			}
		}
		return err
	}
	h.log(ctx, "installed toolchain", "version", version, "seconds", time.Since(start).Seconds())
	h.took(ctx, step, start)
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
