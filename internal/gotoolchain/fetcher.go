package gotoolchain

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"time"
)

// Fetcher gets verified toolchain archives into its cache, fetching each from
// its origin at most once.
type Fetcher struct {
	Cache  *Cache
	Client *http.Client
	// Log receives progress messages; nil discards them.
	Log *slog.Logger
}

func (f *Fetcher) client() *http.Client {
	if f.Client == nil {
		return http.DefaultClient
	}
	return f.Client
}

func (f *Fetcher) log(ctx context.Context, msg string, args ...any) {
	if f.Log != nil {
		f.Log.InfoContext(ctx, msg, args...)
	}
}

// FromModuleProxy returns the verified archive of go<version> for goos/goarch
// from a module proxy.
func (f *Fetcher) FromModuleProxy(ctx context.Context, p ModuleProxy, version, goos, goarch string) (Artifact, error) {
	key := "module_proxy " + p.proxyURL() + " " + p.sumDBKey() + " " + ModuleVersion(version, goos, goarch)
	return f.get(ctx, key, func(w io.Writer) (Artifact, error) {
		f.log(ctx, "fetching toolchain from module proxy", "version", version, "proxy", p.proxyURL())
		return p.Fetch(ctx, f.client(), f.scratch(), version, goos, goarch, w)
	})
}

// FromMirror returns the verified release tarball of go<version> for
// goos/goarch from a download mirror. wantSHA256 pins the hash; when empty the
// release index provides it.
//
// The cache key names everything the verification relied on (the hash's
// origin, the keyring and the pinned signer), so an archive verified under one
// policy is never served to another.
func (f *Fetcher) FromMirror(ctx context.Context, m Mirror, version, goos, goarch, wantSHA256 string) (Artifact, error) {
	policy, err := m.policy(wantSHA256)
	if err != nil {
		return Artifact{}, err
	}
	key := "dl " + m.ArchiveURL(version, goos, goarch) + " " + policy
	return f.get(ctx, key, func(w io.Writer) (Artifact, error) {
		f.log(ctx, "fetching toolchain from mirror", "version", version, "mirror", m.baseURL())
		return m.Fetch(ctx, f.client(), f.scratch(), version, goos, goarch, wantSHA256, w)
	})
}

func (f *Fetcher) get(ctx context.Context, key string, fill func(io.Writer) (Artifact, error)) (Artifact, error) {
	start := time.Now()
	a, hit, err := f.Cache.Get(key, fill)
	if err != nil {
		return a, err
	}
	msg := "toolchain archive fetched and verified"
	if hit {
		msg = "toolchain archive from cache"
	}
	f.log(ctx, msg, "version", a.Version, "sha256", a.SHA256, "seconds", float64(time.Since(start).Milliseconds())/1000)
	return a, nil
}

func (f *Fetcher) scratch() string { return filepath.Join(f.Cache.Dir, "tmp") }

// Checksum is the checksum database's h1: hash for a toolchain module.
func (f *Fetcher) Checksum(ctx context.Context, p ModuleProxy, version, goos, goarch string) (string, error) {
	return p.Checksum(ctx, f.client(), f.scratch(), version, goos, goarch)
}

// ProxyReleases lists the toolchain versions a module proxy offers.
func (f *Fetcher) ProxyReleases(ctx context.Context, p ModuleProxy, goos, goarch string) ([]Release, error) {
	return p.Releases(ctx, f.client(), goos, goarch)
}

// MirrorReleases reads a mirror's release index.
func (f *Fetcher) MirrorReleases(ctx context.Context, m Mirror) ([]Release, error) {
	return FetchIndex(ctx, f.client(), m.indexURL())
}
