package hostrelease

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kilnhq/terraform-provider-kiln/internal/oci"
	"github.com/kilnhq/terraform-provider-kiln/internal/remote"
)

// Host is one host a service is released to.
type Host struct {
	Target remote.Target
	client *remote.Client
}

// Addr names the host in results and errors.
func (h *Host) Addr() string { return h.Target.Addr }

func (h *Host) connect(ctx context.Context) error {
	if h.client != nil {
		return nil
	}
	c, err := remote.Dial(ctx, h.Target)
	if err != nil {
		return err
	}
	h.client = c
	return nil
}

func (h *Host) close() {
	if h.client != nil {
		h.client.Close()
		h.client = nil
	}
}

// Outcome is what a release did to one host.
type Outcome string

const (
	Unchanged  Outcome = "unchanged"   // it already ran the release as specified
	Released   Outcome = "released"    // it runs the new release, healthy
	RolledBack Outcome = "rolled back" // the release failed; the previous one runs again
	Failed     Outcome = "failed"      // the release failed and was not rolled back
	NotStarted Outcome = "not started" // an earlier batch failed
)

// HostResult is one host after a release.
type HostResult struct {
	Addr    string
	Outcome Outcome
	// State is the host as read after the release; ReadErr is why it could
	// not be read.
	State   HostState
	ReadErr error
}

// HealthError is a release that failed its health check on a host.
type HealthError struct {
	Host, Release string
	// Check is the check's last failure.
	Check string
	// Journal is the tail of the unit's journal when the check failed.
	Journal string
	// RolledBackTo is the release the host runs again, healthy; empty when
	// none was rolled back to. RollbackErr is why the rollback failed.
	RolledBackTo string
	RollbackErr  error
}

func (e *HealthError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: release %s failed its health check: %s.", e.Host, e.Release, e.Check)
	switch {
	case e.RolledBackTo == e.Release:
		b.WriteString(" Rolled back to the unit and files it ran with before, and healthy again.")
	case e.RolledBackTo != "":
		fmt.Fprintf(&b, " Rolled back to %s, which is healthy again.", e.RolledBackTo)
	case e.RollbackErr != nil:
		fmt.Fprintf(&b, " The rollback failed: %v.", e.RollbackErr)
	default:
		b.WriteString(" Not rolled back (no previous release, or rollback_on_failure is off).")
	}
	fmt.Fprintf(&b, "\nLast %d lines of the unit's journal:\n%s", JournalLines, strings.TrimRight(e.Journal, "\n"))
	return b.String()
}

// Engine releases services to hosts.
type Engine struct {
	// Log receives progress messages; nil discards them.
	Log *slog.Logger
	// TempDir holds the downloaded artifact during a release; the system's
	// when empty.
	TempDir string
	// Registry is where artifacts given by OCIRef are fetched from: its
	// credentials go to its own host only.
	Registry oci.Registry
}

func (e *Engine) log(ctx context.Context, h *Host, msg string, args ...any) {
	if e.Log != nil {
		e.Log.InfoContext(ctx, msg, h.Target.Secrets.Args(append(args, "host", h.Addr()))...)
	}
}

// Read reads the service's state on each host, one round trip per host, all
// hosts at once.
func (e *Engine) Read(ctx context.Context, hosts []*Host, spec Spec) []HostResult {
	out := make([]HostResult, len(hosts))
	each(hosts, func(i int, h *Host) {
		out[i] = HostResult{Addr: h.Addr(), Outcome: Unchanged}
		out[i].State, out[i].ReadErr = e.read(ctx, h, spec)
	})
	return out
}

func (e *Engine) read(ctx context.Context, h *Host, spec Spec) (HostState, error) {
	if err := h.connect(ctx); err != nil {
		return HostState{}, err
	}
	args := []string{spec.installDir(), spec.Name, spec.Artifact.Release(), strings.Join(spec.DataDirs, "\n")}
	if spec.Health.Port > 0 {
		once := spec.Health
		once.StartPeriod, once.HealthyThreshold, once.UnhealthyThreshold = 0, 1, 1
		args = append(append(args, healthScript), healthArgs(once)...)
	}
	out, err := h.client.Run(ctx, "read the service", remote.BashCommand(readScript, args...))
	if err != nil {
		return HostState{}, h.Target.Secrets.Error(err)
	}
	s, err := parseState(out)
	if err != nil {
		return HostState{}, fmt.Errorf("%s: %w", h.Addr(), err)
	}
	return s, nil
}

// each runs f for every host at once and closes no connection.
func each(hosts []*Host, f func(int, *Host)) {
	var wg sync.WaitGroup
	for i, h := range hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f(i, h)
		}()
	}
	wg.Wait()
}

// Release brings every host to spec's release, batch by batch. Hosts that
// already run it as specified are left alone. Before any host changes, every
// host is read and, when one needs the binary or the artifact is signed, the
// artifact is fetched and its digest and signature checked. A batch that
// fails stops the rollout: later batches are not started. The results hold
// every host as read afterwards.
func (e *Engine) Release(ctx context.Context, hosts []*Host, spec Spec) ([]HostResult, error) {
	defer func() {
		for _, h := range hosts {
			h.close()
		}
	}()
	results := e.Read(ctx, hosts, spec)
	var errs []error
	needBinary := false
	for _, r := range results {
		switch {
		case r.ReadErr != nil:
			errs = append(errs, r.ReadErr)
		case r.State.Foreign:
			errs = append(errs, fmt.Errorf("%s: %s exists and was not installed by Kiln for %s: refusing to release into it", r.Addr, spec.installDir(), spec.Name))
		case !r.State.inSync(spec) && r.State.WantedSHA256 != spec.Artifact.Digest():
			needBinary = true
		}
	}
	if len(errs) > 0 {
		return results, errors.Join(errs...)
	}
	var artifact fetched
	// A signed artifact is checked on every release, also when the hosts hold
	// it already: its signature may be new.
	if needBinary || spec.Artifact.Signed() {
		dir, err := os.MkdirTemp(e.TempDir, "kiln-host-release-")
		if err != nil {
			return results, err
		}
		defer os.RemoveAll(dir)
		if artifact, err = e.fetchArtifact(ctx, spec.Artifact, dir); err != nil {
			return results, err
		}
	}
	size := max(spec.Rollout.BatchSize, 1)
	if spec.Rollout.BatchSize <= 0 {
		size = len(hosts)
	}
	for start := 0; start < len(hosts); start += size {
		batch := hosts[start:min(start+size, len(hosts))]
		if start > 0 && spec.Rollout.Pause > 0 {
			select {
			case <-ctx.Done():
				return e.finish(ctx, hosts, spec, results, start, ctx.Err())
			case <-time.After(spec.Rollout.Pause):
			}
		}
		batchErrs := make([]error, len(batch))
		each(batch, func(i int, h *Host) {
			r := &results[start+i]
			r.Outcome, batchErrs[i] = e.releaseHost(ctx, h, spec, r.State, artifact)
		})
		if err := errors.Join(batchErrs...); err != nil {
			return e.finish(ctx, hosts, spec, results, start+len(batch), err)
		}
	}
	return e.finish(ctx, hosts, spec, results, len(hosts), nil)
}

// finish reads back the hosts a rollout reached and marks those it did not
// reach; err is the rollout's error.
func (e *Engine) finish(ctx context.Context, hosts []*Host, spec Spec, results []HostResult, reached int, err error) ([]HostResult, error) {
	for i := reached; i < len(results); i++ {
		results[i].Outcome = NotStarted
	}
	each(hosts[:reached], func(i int, h *Host) {
		if results[i].Outcome != Unchanged {
			results[i].State, results[i].ReadErr = e.read(ctx, h, spec)
		}
	})
	return results, err
}

// releaseHost releases spec to one host found in state before.
func (e *Engine) releaseHost(ctx context.Context, h *Host, spec Spec, before HostState, artifact fetched) (Outcome, error) {
	if before.inSync(spec) {
		e.log(ctx, h, "host already runs the release", "release", spec.Artifact.Release())
		return Unchanged, nil
	}
	release := spec.Artifact.Release()
	e.log(ctx, h, "release", "release", release, "from", before.Current)
	if err := e.stage(ctx, h, spec, before, artifact); err != nil {
		return Failed, err
	}
	if err := e.activate(ctx, h, spec, release, "release"); err != nil {
		return Failed, err
	}
	check, err := e.healthy(ctx, h, spec)
	if err == nil && check == "" {
		e.log(ctx, h, "release healthy", "release", release)
		_, err := h.client.Run(ctx, "prune releases", remote.BashCommand(pruneScript, spec.installDir(), strconv.Itoa(max(spec.KeepReleases, 1))))
		return Released, h.Target.Secrets.Error(err)
	}
	if err != nil {
		return Failed, err
	}
	journal, jerr := h.client.Run(ctx, "read the journal", remote.BashCommand(journalScript, spec.Name, strconv.Itoa(JournalLines), spec.installDir()))
	if jerr != nil {
		journal = "(could not read the journal: " + jerr.Error() + ")"
	}
	fail := &HealthError{Host: h.Addr(), Release: release, Check: check, Journal: journal}
	// Back to what the host ran: another release, or this one with the unit
	// and files it had before (only those changed).
	previous, mode := before.Current, "rollback"
	if previous == release {
		mode = "restore"
	}
	if !spec.RollbackOnFailure || previous == "" || !before.hasRelease(previous) {
		return Failed, h.Target.Secrets.Error(fail)
	}
	e.log(ctx, h, "release unhealthy: rolling back", "release", release, "to", previous, "mode", mode, "check", check)
	if err := e.activate(ctx, h, spec, previous, mode); err != nil {
		fail.RollbackErr = err
		return Failed, h.Target.Secrets.Error(fail)
	}
	switch check, err := e.healthy(ctx, h, spec); {
	case err != nil:
		fail.RollbackErr = err
	case check != "":
		fail.RollbackErr = fmt.Errorf("%s is not healthy either: %s", previous, check)
	default:
		fail.RolledBackTo = previous
		return RolledBack, h.Target.Secrets.Error(fail)
	}
	return Failed, h.Target.Secrets.Error(fail)
}

// stage sends the release's binary (unless the host holds it already) and
// files to the host, which verifies the binary's digest.
func (e *Engine) stage(ctx context.Context, h *Host, spec Spec, before HostState, artifact fetched) error {
	binary := "reuse"
	var in []io.Reader
	if before.WantedSHA256 != spec.Artifact.Digest() {
		f, err := os.Open(artifact.path)
		if err != nil {
			return err
		}
		defer f.Close()
		binary = strconv.FormatInt(artifact.size, 10)
		in = append(in, f)
	}
	for _, f := range spec.files() {
		in = append(in, strings.NewReader(fmt.Sprintf("%s %d %s\n", f.mode, len(f.content), f.path)), strings.NewReader(f.content))
	}
	start := time.Now()
	_, err := h.client.RunInput(ctx, "stage the release", remote.BashCommand(stageScript, spec.installDir(), spec.Name,
		spec.Artifact.Release(), spec.Artifact.Digest(), binary), io.MultiReader(in...))
	e.log(ctx, h, "staged", "release", spec.Artifact.Release(), "binary", binary, "seconds", time.Since(start).Seconds())
	return h.Target.Secrets.Error(err)
}

func (e *Engine) activate(ctx context.Context, h *Host, spec Spec, release, mode string) error {
	args := append([]string{spec.installDir(), spec.Name, release, spec.Unit.User, mode}, spec.DataDirs...)
	_, err := h.client.Run(ctx, "activate "+release, remote.BashCommand(activateScript, args...))
	return h.Target.Secrets.Error(err)
}

// healthy waits for the health check's verdict on the host: "" when it
// passed, else the check's last failure. err is a failure to run the check.
// The wait is bounded by the check's own worst case (every probe taking its
// timeout, thresholds reached after flapping) so a host never hangs a release.
func (e *Engine) healthy(ctx context.Context, h *Host, spec Spec) (string, error) {
	c := spec.Health
	bound := c.StartPeriod + time.Duration(4*(c.HealthyThreshold+c.UnhealthyThreshold))*(c.Interval+c.Timeout) + time.Minute
	ctx, cancel := context.WithTimeout(ctx, bound)
	defer cancel()
	_, err := h.client.Run(ctx, "health check", remote.BashCommand(healthScript, healthArgs(c)...))
	var se *remote.StepError
	if errors.As(err, &se) && se.ExitCode == 1 {
		return strings.TrimSpace(se.Stderr), nil
	}
	if ctx.Err() != nil && err != nil {
		return fmt.Sprintf("no verdict within %s", bound), nil
	}
	return "", h.Target.Secrets.Error(err)
}

// healthArgs are health.sh's arguments for c.
func healthArgs(c HealthCheck) []string {
	kind := "tcp"
	if c.HTTP {
		kind = "http"
	}
	return []string{kind, strconv.FormatInt(c.Port, 10), c.Path, strconv.FormatInt(c.ExpectStatus, 10), c.ExpectBody,
		seconds(c.Interval), seconds(c.Timeout), seconds(c.StartPeriod),
		strconv.FormatInt(c.HealthyThreshold, 10), strconv.FormatInt(c.UnhealthyThreshold, 10)}
}

// Remove stops and disables the service's unit on each host and deletes what
// Kiln installed: the unit, the config files of spec (only those the host's
// manifest records as installed by Kiln) and the install dir, and, when
// spec.RemoveData, the data directories Kiln created. A host whose install
// dir Kiln's marker does not name as this service's is left alone.
func (e *Engine) Remove(ctx context.Context, hosts []*Host, spec Spec) error {
	paths := make([]string, 0, len(spec.ConfigFiles)+len(spec.SensitiveConfigFiles))
	for _, m := range []map[string]string{spec.ConfigFiles, spec.SensitiveConfigFiles} {
		for p := range m {
			paths = append(paths, p)
		}
	}
	errs := make([]error, len(hosts))
	each(hosts, func(i int, h *Host) {
		defer h.close()
		if errs[i] = h.connect(ctx); errs[i] != nil {
			return
		}
		e.log(ctx, h, "remove the service", "service", spec.Name)
		data := "keep-data"
		if spec.RemoveData {
			data = "remove-data"
		}
		_, err := h.client.Run(ctx, "remove the service", remote.BashCommand(removeScript, append([]string{spec.installDir(), spec.Name, data}, paths...)...))
		errs[i] = h.Target.Secrets.Error(err)
	})
	return errors.Join(errs...)
}

// Close ends the hosts' connections a Read left open.
func Close(hosts []*Host) {
	for _, h := range hosts {
		h.close()
	}
}
