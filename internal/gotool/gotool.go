// Package gotool builds Go programs (go.tools: "github.com/go-delve/delve/cmd/dlv@v1.27.2")
// for a host's platform on this machine: versions resolved through the module
// proxy, modules downloaded and checked against the checksum database by the go
// command of a verified toolchain from Kiln's cache, pure Go (CGO_ENABLED=0,
// -trimpath), and the binaries cached by what they were built from.
package gotool

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"go/version"
	"log/slog"
	"net/http"
	"path"
	"strings"

	"golang.org/x/mod/module"
	"golang.org/x/mod/semver"

	"github.com/kilnhq/terraform-provider-kiln/internal/gotoolchain"
)

// Latest asks for the newest version the module proxy offers.
const Latest = "latest"

// Request is one entry of a tools list: a main package and a module version,
// or Latest.
type Request struct {
	Package, Version string
}

func (r Request) String() string { return r.Package + "@" + r.Version }

// ParseRequest reads "package@version", where version is a canonical
// semantic version (v1.27.2) or "latest".
func ParseRequest(s string) (Request, error) {
	pkg, version, ok := strings.Cut(s, "@")
	if !ok || pkg == "" || version == "" {
		return Request{}, fmt.Errorf("%q must be a package path and a version, such as github.com/go-delve/delve/cmd/dlv@v1.27.2 or ...@latest", s)
	}
	if err := module.CheckImportPath(pkg); err != nil {
		return Request{}, fmt.Errorf("%q: %w", s, err)
	}
	if version != Latest && (!semver.IsValid(version) || semver.Canonical(version) != version) {
		return Request{}, fmt.Errorf("%q: version %q must be an exact semantic version such as v1.2.3, or latest", s, version)
	}
	return Request{Package: pkg, Version: version}, nil
}

// Tool is a request resolved to the module holding its package and an exact
// version.
type Tool struct {
	Package string // "github.com/go-delve/delve/cmd/dlv"
	Module  string // "github.com/go-delve/delve"
	Version string // "v1.27.2"
	// GoVersion is the go line of the module's go.mod: the oldest Go that
	// builds it ("1.25.0").
	GoVersion string
}

func (t Tool) String() string { return t.Package + "@" + t.Version }

// Name is the binary's name, as go install names it: the package's last
// element, or the one before a major version suffix (…/cmd/foo/v2 is foo).
func (t Tool) Name() string {
	name := path.Base(t.Package)
	if _, major, ok := module.SplitPathVersion(t.Package); ok && major != "" {
		name = path.Base(strings.TrimSuffix(t.Package, major))
	}
	return name
}

// Builder resolves and builds tools.
type Builder struct {
	// Dir is the builder's own cache: the go command's module and build
	// caches, unpacked toolchains and built binaries.
	Dir string
	// Proxy is the GOPROXY and checksum database modules come through, the
	// ones the toolchains come through.
	Proxy  gotoolchain.ModuleProxy
	Client *http.Client
	// Log receives progress messages; nil discards them.
	Log *slog.Logger
}

func (b *Builder) client() *http.Client {
	if b.Client == nil {
		return http.DefaultClient
	}
	return b.Client
}

func (b *Builder) log(ctx context.Context, msg string, args ...any) {
	if b.Log != nil {
		b.Log.InfoContext(ctx, msg, args...)
	}
}

// errNotFound is the module proxy's 404 or 410: no such module or version.
var errNotFound = errors.New("not found")

// Resolve finds the module that holds r's package (the longest prefix of its
// path the module proxy knows at that version, as go install does), the
// exact version "latest" stands for, and the module's go line.
func (b *Builder) Resolve(ctx context.Context, r Request) (Tool, error) {
	for mod := r.Package; mod != "." && mod != "/" && mod != ""; mod = path.Dir(mod) {
		if module.CheckPath(mod) != nil {
			continue
		}
		v, err := b.version(ctx, mod, r.Version)
		if errors.Is(err, errNotFound) {
			continue
		}
		if err != nil {
			return Tool{}, fmt.Errorf("%s: %w", r, err)
		}
		goLine, err := b.goLine(ctx, mod, v)
		if err != nil {
			return Tool{}, fmt.Errorf("%s: %w", r, err)
		}
		return Tool{Package: r.Package, Module: mod, Version: v, GoVersion: goLine}, nil
	}
	return Tool{}, fmt.Errorf("%s: no module at %s holds this package at version %s", r, b.Proxy.BaseURL(), r.Version)
}

// version asks the proxy for mod's version: the info of an exact version, or
// for Latest, as the go command does, the highest release in the version
// list (a pre-release when there is none), else @latest.
func (b *Builder) version(ctx context.Context, mod, version string) (string, error) {
	escaped, err := module.EscapePath(mod)
	if err != nil {
		return "", err
	}
	url := b.Proxy.BaseURL() + "/" + escaped + "/@latest"
	if version == Latest {
		list, err := b.get(ctx, b.Proxy.BaseURL()+"/"+escaped+"/@v/list")
		if err != nil {
			return "", err
		}
		if v := highest(strings.Fields(string(list))); v != "" {
			return v, nil
		}
	} else {
		v, err := module.EscapeVersion(version)
		if err != nil {
			return "", err
		}
		url = b.Proxy.BaseURL() + "/" + escaped + "/@v/" + v + ".info"
	}
	body, err := b.get(ctx, url)
	if err != nil {
		return "", err
	}
	var info struct{ Version string }
	if err := json.Unmarshal(body, &info); err != nil || !semver.IsValid(info.Version) {
		return "", fmt.Errorf("GET %s: not a version info (%v)", url, err)
	}
	return info.Version, nil
}

// highest is the highest release among versions, or the highest pre-release
// when there is no release; pseudo-versions do not count.
func highest(versions []string) string {
	release, pre := "", ""
	for _, v := range versions {
		switch {
		case !semver.IsValid(v) || module.IsPseudoVersion(v):
		case semver.Prerelease(v) == "":
			if release == "" || semver.Compare(v, release) > 0 {
				release = v
			}
		case pre == "" || semver.Compare(v, pre) > 0:
			pre = v
		}
	}
	if release != "" {
		return release
	}
	return pre
}

// goLine reads the go directive of mod@version's go.mod; the go command
// takes a go.mod without one for go 1.16.
func (b *Builder) goLine(ctx context.Context, mod, version string) (string, error) {
	escaped, _ := module.EscapePath(mod)
	v, _ := module.EscapeVersion(version)
	body, err := b.get(ctx, b.Proxy.BaseURL()+"/"+escaped+"/@v/"+v+".mod")
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(body), "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == "go" {
			return f[1], nil
		}
	}
	return "1.16", nil
}

// get reads url from the module proxy; its 404 and 410 are errNotFound.
func (b *Builder) get(ctx context.Context, url string) ([]byte, error) {
	body, err := gotoolchain.Get(ctx, b.client(), url)
	var se *gotoolchain.StatusError
	if errors.As(err, &se) && (se.Code == http.StatusNotFound || se.Code == http.StatusGone) {
		return nil, fmt.Errorf("%w: %w", err, errNotFound)
	}
	return body, err
}

// PickToolchain is the newest of versions (exact Go releases) that is at
// least goLine, the go directive of the module to build; false when none is.
func PickToolchain(goLine string, versions []string) (string, bool) {
	want := "go" + goLine
	best := ""
	for _, v := range versions {
		if version.Compare("go"+v, want) >= 0 && (best == "" || version.Compare("go"+v, "go"+best) > 0) {
			best = v
		}
	}
	return best, best != ""
}
