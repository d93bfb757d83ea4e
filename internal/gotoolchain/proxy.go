package gotoolchain

import (
	"archive/zip"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"golang.org/x/mod/sumdb"
	"golang.org/x/mod/sumdb/dirhash"
)

const (
	// ToolchainModule is the module path the Go toolchains are published under.
	ToolchainModule = "golang.org/toolchain"
	// DefaultProxy is the public Go module proxy.
	DefaultProxy = "https://proxy.golang.org"
	// DefaultSumDB is the public checksum database and its verifier key.
	DefaultSumDB = "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8"
)

// ModuleProxy fetches toolchains as golang.org/toolchain modules from a GOPROXY
// and verifies them against a checksum database through its signed tree (not by
// trusting a hash string from the proxy).
type ModuleProxy struct {
	URL string // GOPROXY base URL; DefaultProxy when empty
	// SumDB is "<name>+<hash>+<key>", as in GOSUMDB; DefaultSumDB when empty.
	SumDB string
	// SumDBURL serves the checksum database; "<URL>/sumdb/<name>" when empty
	// (proxies relay the database, so one reachable host suffices).
	SumDBURL string
}

// BaseURL is the GOPROXY the toolchains come from.
func (p ModuleProxy) BaseURL() string { return p.proxyURL() }

// SumDBKey is the checksum database as GOSUMDB names it (name+hash+key).
func (p ModuleProxy) SumDBKey() string { return p.sumDBKey() }

func (p ModuleProxy) proxyURL() string {
	if p.URL == "" {
		return DefaultProxy
	}
	return strings.TrimSuffix(p.URL, "/")
}

func (p ModuleProxy) sumDBKey() string {
	if p.SumDB == "" {
		return DefaultSumDB
	}
	return p.SumDB
}

func (p ModuleProxy) sumDBURL() string {
	if p.SumDBURL != "" {
		return strings.TrimSuffix(p.SumDBURL, "/")
	}
	name, _, _ := strings.Cut(p.sumDBKey(), "+")
	return p.proxyURL() + "/sumdb/" + name
}

// ModuleVersion is the golang.org/toolchain version of a Go release.
func ModuleVersion(version, goos, goarch string) string {
	return fmt.Sprintf("v0.0.1-go%s.%s-%s", version, goos, goarch)
}

// Releases lists the releases the proxy has for goos/goarch, for Resolve; an
// empty goarch takes those of any architecture of goos.
func (p ModuleProxy) Releases(ctx context.Context, client *http.Client, goos, goarch string) ([]Release, error) {
	body, err := get(ctx, client, p.proxyURL()+"/"+ToolchainModule+"/@v/list")
	if err != nil {
		return nil, err
	}
	var out []Release
	seen := map[string]bool{}
	for _, line := range strings.Fields(string(body)) {
		rest, ok := strings.CutPrefix(line, "v0.0.1-go")
		if !ok {
			continue
		}
		v, arch, ok := strings.Cut(rest, "."+goos+"-")
		if !ok || (goarch != "" && arch != goarch) || seen[v] {
			continue
		}
		seen[v] = true
		_, stable := parseRelease(v)
		out = append(out, Release{Version: "go" + v, Stable: stable})
	}
	return out, nil
}

// Fetch downloads the toolchain module zip for version, checks its h1: hash
// against the checksum database, and writes it to w as a release tarball.
func (p ModuleProxy) Fetch(ctx context.Context, client *http.Client, scratch, version, goos, goarch string, w io.Writer) (Artifact, error) {
	modVersion := ModuleVersion(version, goos, goarch)
	zipURL := p.proxyURL() + "/" + ToolchainModule + "/@v/" + modVersion + ".zip"
	zf, err := os.CreateTemp(scratch, "toolchain-*.zip")
	if err != nil {
		return Artifact{}, err
	}
	defer os.Remove(zf.Name())
	defer zf.Close()
	if err := download(ctx, client, zipURL, zf); err != nil {
		return Artifact{}, err
	}
	got, err := dirhash.HashZip(zf.Name(), dirhash.Hash1)
	if err != nil {
		return Artifact{}, fmt.Errorf("hash %s: %w", zipURL, err)
	}
	want, err := p.lookupSum(ctx, client, scratch, modVersion)
	if err != nil {
		return Artifact{}, err
	}
	if got != want {
		return Artifact{}, fmt.Errorf("%w: %s@%s from %s hashes to %s, the checksum database says %s",
			ErrChecksumMismatch, ToolchainModule, modVersion, p.proxyURL(), got, want)
	}
	info, err := zf.Stat()
	if err != nil {
		return Artifact{}, err
	}
	zr, err := zip.NewReader(zf, info.Size())
	if err != nil {
		return Artifact{}, fmt.Errorf("open %s: %w", zipURL, err)
	}
	if err := zipToTarball(zr, ToolchainModule+"@"+modVersion+"/", w); err != nil {
		return Artifact{}, fmt.Errorf("convert %s: %w", zipURL, err)
	}
	name, _, _ := strings.Cut(p.sumDBKey(), "+")
	return Artifact{
		Version: version, OS: goos, Arch: goarch,
		Source:   zipURL,
		Evidence: fmt.Sprintf("%s %s %s in %s", ToolchainModule, modVersion, want, name),
	}, nil
}

// ErrChecksumMismatch reports an archive that is not what the checksum database
// or the release index says it is.
var ErrChecksumMismatch = errors.New("checksum mismatch")

// Checksum returns the h1: hash the checksum database records for a version's
// toolchain module, verified through the database's signed tree.
func (p ModuleProxy) Checksum(ctx context.Context, client *http.Client, scratch, version, goos, goarch string) (string, error) {
	return p.lookupSum(ctx, client, scratch, ModuleVersion(version, goos, goarch))
}

func (p ModuleProxy) lookupSum(ctx context.Context, client *http.Client, scratch, modVersion string) (string, error) {
	ops := &sumdbOps{ctx: ctx, client: client, url: p.sumDBURL(), key: p.sumDBKey(), dir: filepath.Join(scratch, "sumdb")}
	lines, err := sumdb.NewClient(ops).Lookup(ToolchainModule, modVersion)
	if err != nil {
		if ops.securityErr != "" {
			return "", fmt.Errorf("%w: checksum database %s: %s", ErrChecksumMismatch, ops.url, ops.securityErr)
		}
		return "", fmt.Errorf("look up %s@%s in checksum database %s: %w", ToolchainModule, modVersion, ops.url, err)
	}
	for _, line := range lines {
		f := strings.Fields(line)
		if len(f) == 3 && f[0] == ToolchainModule && f[1] == modVersion {
			return f[2], nil
		}
	}
	return "", fmt.Errorf("checksum database %s has no hash for %s@%s", ops.url, ToolchainModule, modVersion)
}

// sumdbOps is the checksum database client's view of the world: the database
// over HTTP, and its verifier key, latest signed tree and tiles on disk.
type sumdbOps struct {
	ctx         context.Context
	client      *http.Client
	url, key    string
	dir         string
	mu          sync.Mutex
	securityErr string
}

func (o *sumdbOps) ReadRemote(path string) ([]byte, error) {
	return get(o.ctx, o.client, o.url+path)
}

func (o *sumdbOps) ReadConfig(file string) ([]byte, error) {
	if file == "key" {
		return []byte(o.key), nil
	}
	data, err := os.ReadFile(filepath.Join(o.dir, "config", file))
	if os.IsNotExist(err) {
		return nil, nil
	}
	return data, err
}

func (o *sumdbOps) WriteConfig(file string, old, new []byte) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	path := filepath.Join(o.dir, "config", file)
	cur, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	if string(cur) != string(old) {
		return sumdb.ErrWriteConflict
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return writeFileAtomic(path, new)
}

func (o *sumdbOps) ReadCache(file string) ([]byte, error) {
	return os.ReadFile(filepath.Join(o.dir, "cache", file))
}

func (o *sumdbOps) WriteCache(file string, data []byte) {
	path := filepath.Join(o.dir, "cache", file)
	if os.MkdirAll(filepath.Dir(path), 0o755) == nil {
		_ = writeFileAtomic(path, data)
	}
}

func (o *sumdbOps) Log(string) {}

func (o *sumdbOps) SecurityError(msg string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.securityErr = msg
}

// StatusError is an HTTP response other than 200 OK.
type StatusError struct {
	URL, Status string
	Code        int
}

func (e *StatusError) Error() string { return "GET " + e.URL + ": " + e.Status }

// Get reads url's body; a response other than 200 OK is a *StatusError.
func Get(ctx context.Context, client *http.Client, url string) ([]byte, error) {
	return get(ctx, client, url)
}

func get(ctx context.Context, client *http.Client, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, &StatusError{URL: url, Status: resp.Status, Code: resp.StatusCode}
	}
	return io.ReadAll(resp.Body)
}

func download(ctx context.Context, client *http.Client, url string, w io.Writer) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	if _, err := io.Copy(w, resp.Body); err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	return nil
}
