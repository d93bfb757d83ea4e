package buildfarm

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/template"
	"time"

	"golang.org/x/mod/modfile"

	"github.com/kilnhq/terraform-provider-kiln/internal/delivery"
	"github.com/kilnhq/terraform-provider-kiln/internal/delivery/label"
	"github.com/kilnhq/terraform-provider-kiln/internal/gitsource"
	"github.com/kilnhq/terraform-provider-kiln/internal/oci"
	"github.com/kilnhq/terraform-provider-kiln/internal/redact"
	"github.com/kilnhq/terraform-provider-kiln/internal/remote"
)

// Build statuses, in a build record.
const (
	StatusRunning   = "running"
	StatusSucceeded = "succeeded"
	StatusFailed    = "failed"
)

// Result is a build, as its record holds it.
type Result struct {
	Number     int    `json:"number"`
	Project    string `json:"project,omitempty"`
	Service    string `json:"service,omitempty"`
	Name       string `json:"name,omitempty"`
	Commit     string `json:"commit,omitempty"`
	InputsHash string `json:"inputs_hash"`
	Status     string `json:"status"`
	Host       string `json:"host,omitempty"`
	GoVersion  string `json:"go_version,omitempty"` // exact
	// ImageRef (repository@sha256:…) and ImageDigest are the image of a Go
	// build, or the artifact of a script build.
	ImageRef     string         `json:"image_ref,omitempty"`
	ImageDigest  string         `json:"image_digest,omitempty"`
	Tags         []string       `json:"tags,omitempty"`
	BinarySHA256 string         `json:"binary_sha256,omitempty"`
	Artifacts    []ArtifactFile `json:"artifacts,omitempty"`
	Started      time.Time      `json:"started"`
	Finished     time.Time      `json:"finished,omitzero"`
	LogTail      string         `json:"log_tail,omitempty"`
}

// ArtifactFile is a file of a script build's artifact.
type ArtifactFile struct {
	Path   string `json:"path"`
	SHA256 string `json:"sha256"` // hex
	Size   int64  `json:"size"`
	Ref    string `json:"ref"` // repository@sha256:… of its blob
}

// BuildError is a build that failed on a host: the host, the step, the exit
// code and the last lines of the log.
type BuildError struct {
	Host, Step string
	ExitCode   int // -1 when the build did not exit (connection lost, timeout)
	LogTail    string
	Err        error
}

func (e *BuildError) Error() string {
	msg := fmt.Sprintf("build on %s failed in step %q", e.Host, e.Step)
	if e.ExitCode >= 0 {
		msg += fmt.Sprintf(" (exit code %d)", e.ExitCode)
	} else if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	if e.LogTail != "" {
		msg += ":\n" + e.LogTail
	}
	return msg
}

func (e *BuildError) Unwrap() error { return e.Err }

// logTailLines is how much of a build's log a record and an error keep.
const logTailLines = 20

// slotBusy is build.sh's exit code when the host has no free slot.
const slotBusy = 75

// slotPoll paces the search for a free slot when every host is busy.
var slotPoll = 2 * time.Second

// Run runs a planned build (Plan set its commit and labels): it picks a host
// with a free slot, builds there as the build user, brings the outputs back
// hashed in flight, pushes them, and records the build. A failed build pushes
// nothing and is recorded as failed.
func (f *Farm) Run(ctx context.Context, spec BuildSpec) (Result, error) {
	secrets := secretsOf(spec)
	res, err := f.run(ctx, spec)
	return res, secrets.Error(err)
}

func (f *Farm) run(ctx context.Context, spec BuildSpec) (Result, error) {
	if err := spec.Validate(); err != nil {
		return Result{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, runTimeout(spec.Timeout))
	defer cancel()
	ws, err := f.prepare(ctx, "build", spec.Source, spec.PoolLabels, spec.GoVersion)
	if err != nil {
		return Result{}, err
	}
	defer ws.remove()
	hosts, version, src, work := ws.hosts, ws.version, ws.src, ws.dir
	res := Result{Project: spec.Project, Service: spec.Service, Name: spec.Name, Commit: spec.Source.Commit,
		GoVersion: version, InputsHash: inputsHash(spec, version, src.sha256), Status: StatusRunning, Started: time.Now().UTC()}
	if err := f.claimNumber(ctx, &res); err != nil {
		return Result{}, err
	}
	out := filepath.Join(work, "out")
	if err := os.Mkdir(out, 0o700); err != nil {
		return res, err
	}
	mode, err := buildMode(spec, src)
	if err != nil {
		return res, err
	}
	files, err := f.runOnAHost(ctx, job{mode: mode, env: spec.Env, secretEnv: spec.SecretEnv}, hosts, version, src, out, &res)
	if err == nil {
		err = f.push(ctx, spec, src, files, &res)
	}
	res.Finished = time.Now().UTC()
	if err != nil {
		res.Status = StatusFailed
		var be *BuildError
		if errors.As(err, &be) {
			res.LogTail = be.LogTail
		}
	} else {
		res.Status = StatusSucceeded
	}
	res.LogTail = secretsOf(spec).Text(res.LogTail)
	// The record is written with a context of its own: a build cut short by
	// its timeout is still recorded as failed.
	rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer rcancel()
	if rerr := f.writeBuild(rctx, res, false); rerr != nil {
		err = errors.Join(err, rerr)
	}
	return res, err
}

// source is a build's source tree as a tar file, and its time.
type source struct {
	file   string
	size   int64
	sha256 string
	time   time.Time // SOURCE_DATE_EPOCH: the commit's time, or gitsource.DirEpoch
	branch string    // for image tags
	module string    // the module path of the root's go.mod
}

// runTimeout is a run's time limit: its own, or DefaultTimeout.
func runTimeout(d time.Duration) time.Duration {
	if d <= 0 {
		return DefaultTimeout
	}
	return d
}

// workspace is what a build or a suite needs before a host takes it: the hosts
// that may run it, the Go version they resolve its request to, and its source
// as a tar stream in a local work directory (dir), which remove deletes.
type workspace struct {
	hosts   []candidate
	version string
	src     source
	dir     string
}

// prepare finds the hosts for a run of kind ("build", "suite") and archives its
// source, which must be resolved to a commit when it is a git source.
func (f *Farm) prepare(ctx context.Context, kind string, s Source, labels map[string]string, goVersion string) (workspace, error) {
	if s.Git != nil && s.Commit == "" {
		return workspace{}, fmt.Errorf("the %s's source is not resolved to a commit", kind)
	}
	hosts, version, err := f.candidates(ctx, labels, goVersion)
	if err != nil {
		return workspace{}, err
	}
	dir, err := os.MkdirTemp("", "kiln-"+kind+"-")
	if err != nil {
		return workspace{}, err
	}
	src, err := archiveSource(ctx, s, filepath.Join(dir, "source.tar"))
	if err != nil {
		_ = os.RemoveAll(dir)
		return workspace{}, err
	}
	return workspace{hosts: hosts, version: version, src: src, dir: dir}, nil
}

func (w workspace) remove() { _ = os.RemoveAll(w.dir) }

func archiveSource(ctx context.Context, s Source, file string) (source, error) {
	fh, err := os.Create(file)
	if err != nil {
		return source{}, err
	}
	defer func() { _ = fh.Close() }()
	h := sha256.New()
	w := io.MultiWriter(fh, h)
	src := source{file: file, time: gitsource.DirEpoch}
	if s.Git != nil {
		c, err := s.Git.Archive(ctx, s.Commit, w)
		if err != nil {
			return source{}, err
		}
		src.time, src.branch = c.Time, branchName(s.Ref, s.Commit)
	} else if err := gitsource.ArchiveDir(s.Path, w); err != nil {
		return source{}, err
	}
	if src.size, err = fh.Seek(0, io.SeekCurrent); err != nil {
		return source{}, err
	}
	src.sha256 = hex.EncodeToString(h.Sum(nil))
	if err := fh.Close(); err != nil {
		return source{}, err
	}
	src.module, err = rootModule(file)
	return src, err
}

// rootModule is the module path in the go.mod at the root of a source tar,
// "" without one.
func rootModule(file string) (string, error) {
	fh, err := os.Open(file)
	if err != nil {
		return "", err
	}
	defer func() { _ = fh.Close() }()
	tr := tar.NewReader(fh)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return "", nil
		}
		if err != nil {
			return "", err
		}
		if hdr.Name == "go.mod" {
			data, err := io.ReadAll(io.LimitReader(tr, 1<<20))
			if err != nil {
				return "", err
			}
			return modfile.ModulePath(data), nil
		}
	}
}

// branchName is a ref as an image tag may hold it: "refs/heads/main" and
// "main" are "main", a commit its first 12 characters.
func branchName(ref, commit string) string {
	switch {
	case ref == commit:
		return commit[:12]
	case strings.HasPrefix(ref, "refs/heads/"), strings.HasPrefix(ref, "refs/tags/"):
		ref = ref[strings.Index(ref[5:], "/")+6:]
	}
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-' {
			return r
		}
		return '-'
	}, ref)
}

// inputsHash identifies what a build is made of; secret values enter only
// through their hashes.
func inputsHash(spec BuildSpec, version, sourceSHA256 string) string {
	secret := map[string]string{}
	for k, v := range spec.SecretEnv {
		sum := sha256.Sum256([]byte(v))
		secret[k] = hex.EncodeToString(sum[:])
	}
	data, _ := json.Marshal(struct {
		Source, GoVersion string
		Go                *GoBuild
		Script            string
		Artifacts         []string
		Env, SecretEnv    map[string]string
	}{sourceSHA256, version, spec.Go, spec.Script, spec.Artifacts, spec.Env, secret})
	sum := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(sum[:])
}

func secretsOf(spec BuildSpec) redact.Secrets {
	var s redact.Secrets
	for _, v := range spec.SecretEnv {
		s.Add(v)
	}
	if g := spec.Source.Git; g != nil {
		s.Add(g.Credentials.Password, g.Credentials.Token, g.Credentials.SSHPassphrase, string(g.Credentials.SSHPrivateKey))
	}
	return s
}

// job is what build.sh runs in a slot: its mode and the mode's arguments,
// and the environment.
type job struct {
	mode           []string
	env, secretEnv map[string]string
}

// buildMode is build.sh's mode and arguments for a build.
func buildMode(spec BuildSpec, src source) ([]string, error) {
	g := spec.Go
	if g == nil {
		return append([]string{"script", spec.Script}, spec.Artifacts...), nil
	}
	ldflags, err := expandLDFlags(g.LDFlags, spec.Source, src)
	if err != nil {
		return nil, err
	}
	return []string{"go", g.Package, binaryName(g.Package, src.module), ldflags, strings.Join(g.Tags, ","), boolDigit(g.CGO)}, nil
}

// runOnAHost runs the job on the first candidate with a free slot,
// starting from the run number's turn so runs spread over the hosts. While
// this process fills every slot, it waits for one of its builds to end; a
// host busy with other processes' builds is asked again after slotPoll.
func (f *Farm) runOnAHost(ctx context.Context, j job, hosts []candidate, version string, src source, out string, res *Result) (map[string]string, error) {
	for waited := false; ; waited = true {
		freed := localSlots.changed()
		var unreachable []error
		askedBusy := false
		for i := range hosts {
			c := hosts[(res.Number+i)%len(hosts)]
			slot := c.host.Addr + ":" + c.host.Workspace
			if !localSlots.take(slot, max(c.host.Concurrency, 1)) {
				continue
			}
			files, err := f.runOn(ctx, j, c, version, src, out, res)
			localSlots.give(slot)
			var be *BuildError
			var ue *unreachableError
			switch {
			case errors.As(err, &be) && be.ExitCode == slotBusy:
				askedBusy = true
				continue
			case errors.As(err, &ue) && ctx.Err() == nil:
				f.log(ctx, "build host unreachable; trying the next", "host", c.host.Addr, "error", err.Error())
				unreachable = append(unreachable, err)
				continue
			}
			return files, err
		}
		if len(unreachable) == len(hosts) {
			return nil, fmt.Errorf("no build host reachable: %w", errors.Join(unreachable...))
		}
		if !waited {
			f.log(ctx, "every build host is busy; waiting for a slot", "hosts", len(hosts))
		}
		var poll <-chan time.Time
		if askedBusy {
			poll = time.After(slotPoll)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("no free build slot on %d host(s) before the timeout: %w", len(hosts), ctx.Err())
		case <-freed:
		case <-poll:
		}
	}
}

// runOn runs the job on c's host and extracts the results into out.
func (f *Farm) runOn(ctx context.Context, j job, c candidate, version string, src source, out string, res *Result) (map[string]string, error) {
	client, err := dialBuildUser(ctx, c.pool, c.host)
	if err != nil {
		return nil, &unreachableError{err}
	}
	defer client.Close()
	res.Host = c.host.Addr
	args := append([]string{c.host.Workspace, strconv.Itoa(max(c.host.Concurrency, 1)), "0",
		path.Join(c.host.GoRoot, version), strconv.FormatInt(src.time.Unix(), 10)}, j.mode...)
	stdin, err := buildInput(j, src)
	if err != nil {
		return nil, err
	}
	defer stdin.Close()
	f.log(ctx, "build", "host", c.host.Addr, "pool", c.pool.Name, "go", version)
	results, stdout := extract(out)
	stderr, err := client.Stream(ctx, "build", remote.BashCommand(buildScript, args...), stdin, stdout)
	_ = stdout.CloseWithError(err)
	files, xerr := results()
	if err != nil {
		be := &BuildError{Host: c.host.Addr, Step: lastStep(stderr), ExitCode: -1, LogTail: logTail(stderr), Err: err}
		var se *remote.StepError
		if errors.As(err, &se) {
			be.ExitCode = se.ExitCode
		}
		return nil, be
	}
	res.LogTail = logTail(stderr)
	if xerr != nil {
		return nil, &BuildError{Host: c.host.Addr, Step: "receive the results", ExitCode: -1, LogTail: res.LogTail, Err: xerr}
	}
	return files, nil
}

// LDFlagsData is what go.ldflags may use as a Go template, under ko's names:
// {{.Git.FullCommit}}, {{.Git.ShortCommit}}, {{.Git.Branch}},
// {{.Git.CommitDate}} (RFC 3339, UTC) and {{.Git.CommitTimestamp}} (Unix
// seconds). All come from the commit, so the binary stays reproducible.
type LDFlagsData struct {
	Git struct {
		FullCommit, ShortCommit, Branch, CommitDate string
		CommitTimestamp                             int64
	}
}

func expandLDFlags(flags string, s Source, src source) (string, error) {
	if !strings.Contains(flags, "{{") {
		return flags, nil
	}
	t, err := template.New("ldflags").Option("missingkey=error").Parse(flags)
	if err != nil {
		return "", fieldError("go.ldflags", "%v", err)
	}
	var d LDFlagsData
	d.Git.FullCommit, d.Git.Branch = s.Commit, src.branch
	d.Git.ShortCommit = s.Commit[:min(12, len(s.Commit))]
	d.Git.CommitDate, d.Git.CommitTimestamp = src.time.UTC().Format(time.RFC3339), src.time.Unix()
	var b strings.Builder
	if err := t.Execute(&b, d); err != nil {
		return "", fieldError("go.ldflags", "%v", err)
	}
	return b.String(), nil
}

// unreachableError is a host a build could not log in to.
type unreachableError struct{ err error }

func (e *unreachableError) Error() string { return e.err.Error() }
func (e *unreachableError) Unwrap() error { return e.err }

func boolDigit(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// binaryName is the binary of a package as go build and ko name it: the last
// element of its import path ("." is the root module's).
func binaryName(pkg, module string) string {
	name := path.Base(pkg)
	if name == "." && module != "" {
		name = path.Base(module)
	}
	if name == "." || name == "/" || name == "" || name == ".." {
		return "app"
	}
	return name
}

// buildInput is build.sh's standard input: the environment, the source's size
// and the source, then nothing until it is closed (after the command ended).
func buildInput(j job, src source) (io.ReadCloser, error) {
	var head bytes.Buffer
	env := map[string]string{}
	maps.Copy(env, j.env)
	maps.Copy(env, j.secretEnv)
	fmt.Fprintf(&head, "%d\n", len(env))
	for _, k := range slices.Sorted(maps.Keys(env)) {
		fmt.Fprintf(&head, "%s=%s\n", k, env[k])
	}
	fmt.Fprintf(&head, "%d\n", src.size)
	fh, err := os.Open(src.file)
	if err != nil {
		return nil, err
	}
	hold := &holdOpen{done: make(chan struct{})}
	return &input{Reader: io.MultiReader(&head, fh, hold), file: fh, hold: hold}, nil
}

type input struct {
	io.Reader
	file *os.File
	hold *holdOpen
}

func (i *input) Close() error {
	close(i.hold.done)
	return i.file.Close()
}

// holdOpen blocks reads until done is closed, then ends.
type holdOpen struct{ done chan struct{} }

func (h *holdOpen) Read([]byte) (int, error) {
	<-h.done
	return 0, io.EOF
}

// extract writes the result tar it is fed into dir, each file hashed as it
// arrives; results returns path → sha256 (hex) once the writer is closed.
func extract(dir string) (results func() (map[string]string, error), w *io.PipeWriter) {
	pr, pw := io.Pipe()
	type done struct {
		files map[string]string
		err   error
	}
	ch := make(chan done, 1)
	go func() {
		files, err := untar(pr, dir)
		_, _ = io.Copy(io.Discard, pr)
		ch <- done{files, err}
	}()
	return func() (map[string]string, error) { d := <-ch; return d.files, d.err }, pw
}

func untar(r io.Reader, dir string) (map[string]string, error) {
	files := map[string]string{}
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return files, nil
		}
		if err != nil {
			return nil, err
		}
		name := path.Clean(hdr.Name)
		if hdr.Typeflag != tar.TypeReg || name == "." || strings.HasPrefix(name, "../") || path.IsAbs(name) {
			return nil, fmt.Errorf("result %q: want a regular file inside the build tree", hdr.Name)
		}
		file := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
			return nil, err
		}
		fh, err := os.OpenFile(file, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o700)
		if err != nil {
			return nil, err
		}
		h := sha256.New()
		_, err = io.Copy(io.MultiWriter(fh, h), tr)
		if cerr := fh.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return nil, fmt.Errorf("result %s: %w", name, err)
		}
		files[name] = hex.EncodeToString(h.Sum(nil))
	}
}

// lastStep is the last "kiln-step:" build.sh announced.
func lastStep(stderr string) string {
	step := "connect"
	for _, line := range strings.Split(stderr, "\n") {
		if s, ok := strings.CutPrefix(line, "kiln-step: "); ok {
			step = s
		}
	}
	return step
}

func logTail(stderr string) string {
	lines := strings.Split(strings.TrimRight(stderr, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-logTailLines):], "\n")
}

// push assembles and pushes the outputs in out (path → sha256).
func (f *Farm) push(ctx context.Context, spec BuildSpec, src source, files map[string]string, res *Result) error {
	repo, tags, err := f.imageName(ctx, spec, src)
	if err != nil {
		return err
	}
	dir := filepath.Dir(src.file)
	out := filepath.Join(dir, "out")
	if g := spec.Go; g != nil {
		name := binaryName(g.Package, src.module)
		img, err := f.Registry.Assemble(ctx, oci.Image{Binary: filepath.Join(out, name), Name: name, Base: g.Base, Created: src.time})
		if err != nil {
			return err
		}
		pushed, err := f.Registry.Push(ctx, repo, img, tags...)
		if err != nil {
			return err
		}
		res.ImageRef, res.ImageDigest, res.BinarySHA256, res.Tags = pushed.Ref, pushed.Digest, files[name], tags
		return nil
	}
	var ofs []oci.File
	for _, a := range spec.Artifacts {
		ofs = append(ofs, oci.File{Path: a, Source: filepath.Join(out, filepath.FromSlash(path.Clean(a)))})
	}
	art, err := f.Registry.PushArtifact(ctx, repo, "", ofs, tags...)
	if err != nil {
		return err
	}
	res.ImageRef, res.ImageDigest, res.Tags = art.Ref, art.Digest, tags
	repoRef := strings.SplitN(art.Ref, "@", 2)[0]
	for _, pf := range art.Files {
		res.Artifacts = append(res.Artifacts, ArtifactFile{Path: pf.Path, SHA256: strings.TrimPrefix(pf.Digest, "sha256:"),
			Size: pf.Size, Ref: repoRef + "@" + pf.Digest})
	}
	return nil
}

// imageName is the repository and tags of a build: a project's service is
// named by the project's image_rule (its .Timestamp the commit time, so tags
// are reproducible too), a standalone build by its name, untagged.
func (f *Farm) imageName(ctx context.Context, spec BuildSpec, src source) (string, []string, error) {
	if spec.Project == "" {
		return spec.Name, nil, nil
	}
	proj, err := f.Projects.ReadProject(ctx, f.Control, spec.Project)
	if err != nil {
		return "", nil, err
	}
	rule := proj.ImageRule
	if rule == "" {
		rule = delivery.DefaultImageRule
	}
	full, err := delivery.ImageName(rule, delivery.ImageNameData{Project: spec.Project, Service: spec.Service,
		Branch: src.branch, Timestamp: src.time.UTC().Format("20060102150405")})
	if err != nil {
		return "", nil, err
	}
	repo, tag := full, ""
	if i := strings.LastIndex(full, ":"); i > strings.LastIndex(full, "/") {
		repo, tag = full[:i], full[i+1:]
	}
	if tag == "" {
		return repo, nil, nil
	}
	return repo, []string{tag}, nil
}

// Exists reports whether a build's output is still in the registry (one HEAD).
func (f *Farm) Exists(ctx context.Context, ref string) (bool, error) {
	return f.Registry.Exists(ctx, ref)
}

// Series names a build's series, which numbers count in: its project and
// service ("shop.backend"), or its name.
func (r Result) Series() string {
	if r.Name != "" {
		return r.Name
	}
	return r.Project + "." + r.Service
}

func buildRecordName(r Result) string { return fmt.Sprintf("kiln-build-%s-%d", r.Series(), r.Number) }

func buildLabels(r Result) map[string]string {
	l := map[string]string{label.Kind: kindBuild, labelStatus: r.Status}
	if r.Name != "" {
		l[labelBuildName] = r.Name
	} else {
		l[label.Project], l[label.Service] = r.Project, r.Service
	}
	return l
}

// claimNumber gives res the next build number of its series (ZadigX's task
// id) by creating its record, running.
func (f *Farm) claimNumber(ctx context.Context, res *Result) error {
	match := buildLabels(*res)
	delete(match, labelStatus)
	return f.claim(ctx, match, func(n int) error { res.Number = n; return f.writeBuild(ctx, *res, true) })
}

// claim claims the next number of the series whose records carry the labels
// match by creating its record with create: two runs racing for a number get
// different ones.
func (f *Farm) claim(ctx context.Context, match map[string]string, create func(n int) error) error {
	for range 10 {
		recs, err := f.Records.List(ctx, match)
		if err != nil {
			return err
		}
		n := 1
		for _, r := range recs {
			var b struct {
				Number int `json:"number"`
			}
			if json.Unmarshal(r.Data, &b) == nil && b.Number >= n {
				n = b.Number + 1
			}
		}
		err = create(n)
		if !errors.Is(err, errExists) {
			return err
		}
	}
	return errors.New("could not claim a run number: too many runs at once")
}

func (f *Farm) writeBuild(ctx context.Context, r Result, create bool) error {
	data, err := json.Marshal(r)
	if err != nil {
		return err
	}
	rec := record{Name: buildRecordName(r), Labels: buildLabels(r), Data: data}
	if create {
		return f.Records.Create(ctx, rec)
	}
	return f.Records.Put(ctx, rec)
}

// ReadBuild reads the record of build number n of a series.
func (f *Farm) ReadBuild(ctx context.Context, project, service, name string, n int) (Result, error) {
	rec, err := f.Records.Get(ctx, buildRecordName(Result{Project: project, Service: service, Name: name, Number: n}))
	if err != nil {
		return Result{}, err
	}
	var r Result
	if err := json.Unmarshal(rec.Data, &r); err != nil {
		return Result{}, fmt.Errorf("build record %s: %w", rec.Name, err)
	}
	return r, nil
}
