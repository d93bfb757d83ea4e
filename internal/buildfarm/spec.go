package buildfarm

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/kilnhq/terraform-provider-kiln/internal/delivery"
	"github.com/kilnhq/terraform-provider-kiln/internal/gitsource"
)

// Projects reads projects' records: the delivery engine.
type Projects interface {
	ReadProject(ctx context.Context, control, name string) (delivery.Project, error)
}

// Source is where a build's source comes from: a commit of a git repository,
// or a directory on this machine.
type Source struct {
	Git *gitsource.Repository
	Ref string // as asked for: names the branch in image tags
	// Commit is Ref resolved (Plan sets it); a build takes exactly this one.
	Commit string
	Path   string
}

// GoBuild builds a Go package into a binary packed as an image.
type GoBuild struct {
	Package string // "./cmd/backend"
	LDFlags string
	Tags    []string
	CGO     bool
	// Base is "" for scratch, else a reference pinned by digest.
	Base string
}

// BuildSpec is one build.
type BuildSpec struct {
	// Project and Service name the image after the project's image_rule;
	// Name, instead, names a standalone build (its repository).
	Project, Service, Name string
	// PoolLabels select the pools a host is taken from; nil takes the
	// project's build_pool_labels.
	PoolLabels map[string]string
	GoVersion  string // "1.24" (its newest patch on the hosts) or "1.24.4"
	Source     Source
	// Go, or Script with Artifacts.
	Go        *GoBuild
	Script    string
	Artifacts []string
	Env       map[string]string
	SecretEnv map[string]string
	Timeout   time.Duration // DefaultTimeout when 0
}

// DefaultTimeout bounds a build that sets no timeout.
const DefaultTimeout = 30 * time.Minute

// FieldError is an input at fault, named as Kiln's configuration spells it
// ("source.git.ref", "go_version").
type FieldError struct {
	Field string
	Err   error
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Err.Error() }
func (e *FieldError) Unwrap() error { return e.Err }

func fieldError(field string, format string, args ...any) error {
	return &FieldError{Field: field, Err: fmt.Errorf(format, args...)}
}

var (
	envKey       = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	goVersionReq = regexp.MustCompile(`^[0-9]+\.[0-9]+(\.[0-9]+)?$`)
)

// Validate checks what needs nothing but the spec.
func (s BuildSpec) Validate() error {
	var errs []error
	switch {
	case s.Name != "" && (s.Project != "" || s.Service != ""):
		errs = append(errs, fieldError("name", "a standalone build has no project or service"))
	case s.Name == "" && (s.Project == "" || s.Service == ""):
		errs = append(errs, fieldError("project", "set project and service, or name"))
	case s.Name != "" && !delivery.ValidName(s.Name):
		errs = append(errs, fieldError("name", "%q is not a DNS label", s.Name))
	}
	if !goVersionReq.MatchString(s.GoVersion) {
		errs = append(errs, fieldError("go_version", "%q: want a Go version such as 1.24 or 1.24.4", s.GoVersion))
	}
	switch {
	case (s.Source.Git == nil) == (s.Source.Path == ""):
		errs = append(errs, fieldError("source", "set exactly one of git and path"))
	case s.Source.Git != nil && s.Source.Ref == "":
		errs = append(errs, fieldError("source.git.ref", "required"))
	}
	switch {
	case (s.Go == nil) == (s.Script == ""):
		errs = append(errs, fieldError("go", "set exactly one of go and script"))
	case s.Go != nil && s.Go.Package == "":
		errs = append(errs, fieldError("go.package", "required"))
	case s.Go != nil && len(s.Artifacts) > 0:
		errs = append(errs, fieldError("artifacts", "a go build's output is its image; artifacts go with script"))
	case s.Script != "" && len(s.Artifacts) == 0:
		errs = append(errs, fieldError("artifacts", "a script build needs at least one artifact"))
	}
	for _, a := range s.Artifacts {
		if a == "" || strings.HasPrefix(a, "/") || slices.Contains(strings.Split(a, "/"), "..") {
			errs = append(errs, fieldError("artifacts", "%q: want a relative path inside the source tree", a))
		}
	}
	for _, env := range []map[string]string{s.Env, s.SecretEnv} {
		for k, v := range env {
			if !envKey.MatchString(k) {
				errs = append(errs, fieldError("env", "%q is not an environment variable name", k))
			}
			if strings.ContainsAny(v, "\n\x00") {
				errs = append(errs, fieldError("env", "the value of %s holds a newline or NUL", k))
			}
		}
	}
	for k := range s.SecretEnv {
		if _, ok := s.Env[k]; ok {
			errs = append(errs, fieldError("secret_env", "%s is also in env", k))
		}
	}
	return errors.Join(errs...)
}

// Planned is what a plan knows of a build.
type Planned struct {
	Commit string // the git ref resolved; "" for a path source
	// SourceHash is the content hash of a path source.
	SourceHash string
	PoolLabels map[string]string
}

// Plan checks spec against the world as a plan can: the ref resolves, the
// project has the service, some pool host has the labels and the Go version.
// It sets spec.Source.Commit and spec.PoolLabels. Errors are FieldErrors.
//
// A plan may come before the project or the pool exists (they are created in
// the same apply): unless strict, a project without a record, or no pool
// with the labels, is a warning, and the build checks again when it runs.
func (f *Farm) Plan(ctx context.Context, spec *BuildSpec, strict bool) (Planned, []string, error) {
	if err := spec.Validate(); err != nil {
		return Planned{}, nil, err
	}
	return f.plan(ctx, &spec.Source, spec.Project, spec.Service, &spec.PoolLabels, spec.GoVersion, strict)
}

// plan is Plan for what builds and test suites share: it resolves src, checks
// the project and its service (when set), defaults poolLabels to the
// project's, and looks for a host.
func (f *Farm) plan(ctx context.Context, src *Source, project, service string, poolLabels *map[string]string, goVersion string, strict bool) (Planned, []string, error) {
	var p Planned
	var warnings []string
	switch {
	case src.Git != nil:
		ref, err := src.Git.Resolve(ctx, src.Ref)
		if err != nil {
			return Planned{}, nil, &FieldError{Field: "source.git.ref", Err: err}
		}
		src.Commit, p.Commit = ref.Commit, ref.Commit
	default:
		h, err := gitsource.HashDir(src.Path)
		if err != nil {
			return Planned{}, nil, &FieldError{Field: "source.path", Err: err}
		}
		p.SourceHash = h
	}
	if project != "" {
		if f.Projects == nil {
			return Planned{}, nil, errors.New("builds of a project need the provider's kubernetes block")
		}
		proj, err := f.Projects.ReadProject(ctx, f.Control, project)
		switch {
		case errors.Is(err, delivery.ErrNotFound) && !strict:
			return p, []string{fmt.Sprintf("project %s has no record in %s yet: its service and build pool are checked when the build runs", project, f.Control)}, nil
		case err != nil:
			return Planned{}, nil, &FieldError{Field: "project", Err: err}
		}
		if _, ok := proj.Services[service]; service != "" && !ok {
			return Planned{}, nil, fieldError("service", "project %s has no service %q (it has %s)", project, service,
				strings.Join(slices.Sorted(maps.Keys(proj.Services)), ", "))
		}
		if *poolLabels == nil {
			*poolLabels = proj.BuildPoolLabels
		}
	}
	p.PoolLabels = *poolLabels
	if _, _, err := f.candidates(ctx, *poolLabels, goVersion); err != nil {
		var fe *FieldError
		if !strict && errors.As(err, &fe) && fe.Field == "pool_labels" {
			return p, append(warnings, err.Error()+": checked again when the build runs (the pool may be created in this apply)"), nil
		}
		return Planned{}, nil, err
	}
	return p, warnings, nil
}

// LabelledHosts are the hosts of the pools whose labels include labels, pool
// by pool in name order, each host once: where a service released to a
// pool's hosts goes, at the address and with the host key the pool's record
// pins. Only records Kiln wrote count. A FieldError on pool_labels when no
// pool has the labels.
func (f *Farm) LabelledHosts(ctx context.Context, labels map[string]string) ([]PoolHost, error) {
	pools, err := f.pools(ctx)
	if err != nil {
		return nil, err
	}
	var out []PoolHost
	seen := map[string]bool{}
	for _, p := range pools {
		if !hasLabels(p.Labels, labels) {
			continue
		}
		for _, h := range p.Hosts {
			if !seen[h.Addr] {
				seen[h.Addr] = true
				out = append(out, h)
			}
		}
	}
	if len(out) == 0 {
		return nil, fieldError("pool_labels", "no build pool with hosts has the labels %s (pools: %s)", formatLabels(labels), poolNames(pools))
	}
	return out, nil
}

// candidate is a host a build may run on.
type candidate struct {
	pool Pool
	host PoolHost
}

// candidates are the hosts of pools whose labels include labels that have
// the newest Go version matching request any such host has, and that version.
func (f *Farm) candidates(ctx context.Context, labels map[string]string, request string) ([]candidate, string, error) {
	pools, err := f.pools(ctx)
	if err != nil {
		return nil, "", err
	}
	var labelled []candidate
	for _, p := range pools {
		if hasLabels(p.Labels, labels) {
			for _, h := range p.Hosts {
				labelled = append(labelled, candidate{p, h})
			}
		}
	}
	if len(labelled) == 0 {
		return nil, "", fieldError("pool_labels", "no build pool has the labels %s (pools: %s)", formatLabels(labels), poolNames(pools))
	}
	version := ""
	var have []string
	for _, c := range labelled {
		for _, v := range c.host.GoVersions {
			have = append(have, v)
			if matchesVersion(v, request) && (version == "" || compareVersions(v, version) > 0) {
				version = v
			}
		}
	}
	if version == "" {
		slices.Sort(have)
		return nil, "", fieldError("go_version", "no host of the pools labelled %s has Go %s (they have %s)",
			formatLabels(labels), request, strings.Join(slices.Compact(have), ", "))
	}
	var out []candidate
	for _, c := range labelled {
		if slices.Contains(c.host.GoVersions, version) {
			out = append(out, c)
		}
	}
	return out, version, nil
}

func hasLabels(have, want map[string]string) bool {
	for k, v := range want {
		if have[k] != v {
			return false
		}
	}
	return true
}

func formatLabels(l map[string]string) string {
	if len(l) == 0 {
		return "{}"
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(l)) {
		parts = append(parts, k+"="+l[k])
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

func poolNames(pools []Pool) string {
	if len(pools) == 0 {
		return "none registered"
	}
	var names []string
	for _, p := range pools {
		names = append(names, p.Name+" "+formatLabels(p.Labels))
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// matchesVersion reports whether v (exact, "1.24.4") answers request ("1.24"
// or "1.24.4").
func matchesVersion(v, request string) bool {
	return v == request || strings.HasPrefix(v, request+".") && strings.Count(request, ".") == 1
}

// compareVersions compares exact Go versions numerically.
func compareVersions(a, b string) int {
	pa, pb := strings.Split(a, "."), strings.Split(b, ".")
	for i := range max(len(pa), len(pb)) {
		var x, y int
		if i < len(pa) {
			x, _ = strconv.Atoi(pa[i])
		}
		if i < len(pb) {
			y, _ = strconv.Atoi(pb[i])
		}
		if c := cmp.Compare(x, y); c != 0 {
			return c
		}
	}
	return 0
}
