package gotoolchain

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"

	"github.com/kilnhq/terraform-provider-kiln/internal/signature"
)

// Platform is what a toolchain is built for, spelled as release file names
// spell it: OS "linux", Arch "amd64", "arm64", "armv6l". An empty Arch, when
// resolving versions, stands for any architecture of OS.
type Platform struct{ OS, Arch string }

func (p Platform) String() string { return p.OS + "/" + p.Arch }

// The kinds of Source.
const (
	// FromModuleProxy: golang.org/toolchain modules checked against the
	// checksum database.
	FromModuleProxy = "module_proxy"
	// FromMirror: release tarballs checked by SHA-256 and OpenPGP signature.
	FromMirror = "dl"
	// FetchedByHost: the host downloads the tarball from the mirror itself and
	// checks its SHA-256 there.
	FetchedByHost = "host"
)

// SourceKinds lists the kinds of Source.
var SourceKinds = []string{FromModuleProxy, FromMirror, FetchedByHost}

// Source is where a host's toolchains come from and how they are verified,
// whichever its kind: it lists the releases to resolve version requests
// against and hands out verified archives.
type Source struct {
	Kind   string // one of SourceKinds; FromModuleProxy when empty
	Proxy  ModuleProxy
	Mirror Mirror
	// Keyring holds armored OpenPGP keys that replace Mirror's for signature
	// checks (FromMirror).
	Keyring string
	// SHA256 pins tarball hashes by exact version, instead of the release
	// index's (FromMirror, FetchedByHost).
	SHA256 map[string]string
	// Fetcher caches what this machine fetches; required unless every
	// version is exact and the host fetches it itself.
	Fetcher *Fetcher
}

// Archive is a verified toolchain archive on its way to a host: streamed from
// this machine (Open, verified here) or downloaded by the host itself from URL.
// Either way the host installs it only when it hashes to SHA256.
type Archive struct {
	SHA256 string
	// Open reads the archive; its final read fails when the bytes are not the
	// verified ones (Artifact.Open).
	Open func() (io.ReadCloser, error)
	Size int64 // of the streamed archive
	URL  string
}

var exactRelease = regexp.MustCompile(`^[0-9]+\.[0-9]+\.[0-9]+$`)

var errNoFetcher = errors.New("no toolchain fetcher: the provider is not configured yet")

func (s Source) fromMirror() bool { return s.Kind == FromMirror || s.Kind == FetchedByHost }

func (s Source) client() *http.Client {
	if s.Fetcher == nil {
		return http.DefaultClient
	}
	return s.Fetcher.client()
}

// Releases lists what the source offers for p: a mirror's release index, or
// the module proxy's toolchain versions.
func (s Source) Releases(ctx context.Context, p Platform) ([]Release, error) {
	if s.Fetcher == nil {
		return nil, errNoFetcher
	}
	if s.fromMirror() {
		return s.Fetcher.MirrorReleases(ctx, s.Mirror)
	}
	return s.Fetcher.ProxyReleases(ctx, s.Proxy, p.OS, p.Arch)
}

// Resolve maps each version request ("1.24.4", "1.24", "stable") to the
// release it names on p; exact releases need no lookup.
func (s Source) Resolve(ctx context.Context, requests []string, p Platform) ([]string, error) {
	if !slices.ContainsFunc(requests, func(r string) bool { return !exactRelease.MatchString(r) }) {
		return requests, nil
	}
	releases, err := s.Releases(ctx, p)
	if err != nil {
		return nil, err
	}
	resolved := make([]string, len(requests))
	for i, request := range requests {
		if resolved[i], err = Resolve(request, releases); err != nil {
			return nil, err
		}
	}
	return resolved, nil
}

// Fetch returns the verified archive of go<version> for p.
func (s Source) Fetch(ctx context.Context, version string, p Platform) (Archive, error) {
	a, err := s.fetch(ctx, version, p)
	if err != nil {
		return Archive{}, fmt.Errorf("go%s: %w", version, err)
	}
	return a, nil
}

func (s Source) fetch(ctx context.Context, version string, p Platform) (Archive, error) {
	pinned := s.SHA256[version]
	if s.Kind == FetchedByHost {
		if pinned == "" {
			var err error
			if pinned, err = s.Mirror.ExpectedSHA256(ctx, s.client(), version, p.OS, p.Arch); err != nil {
				return Archive{}, err
			}
		}
		return Archive{SHA256: pinned, URL: s.Mirror.ArchiveURL(version, p.OS, p.Arch)}, nil
	}
	if s.Fetcher == nil {
		return Archive{}, errNoFetcher
	}
	var (
		a   Artifact
		err error
	)
	if s.Kind == FromMirror {
		m := s.Mirror
		if s.Keyring != "" {
			if m.Keyring, err = signature.ParseKeyring([]byte(s.Keyring)); err != nil {
				return Archive{}, fmt.Errorf("keyring: %w", err)
			}
		}
		a, err = s.Fetcher.FromMirror(ctx, m, version, p.OS, p.Arch, pinned)
	} else {
		a, err = s.Fetcher.FromModuleProxy(ctx, s.Proxy, version, p.OS, p.Arch)
	}
	if err != nil {
		return Archive{}, err
	}
	return Archive{SHA256: a.SHA256, Size: a.Size, Open: a.Open}, nil
}

// ArchiveID names the archive Fetch would hand out for go<version> on p,
// without downloading it: "sha256:<hex>" for a tarball (pinned, or the
// release index's), "h1:<hash>" (the checksum database's) for a toolchain
// module. What identifies an archive before it is fetched, for plans.
func (s Source) ArchiveID(ctx context.Context, version string, p Platform) (string, error) {
	if pinned := s.SHA256[version]; pinned != "" && s.fromMirror() {
		return "sha256:" + pinned, nil
	}
	if s.fromMirror() {
		sum, err := s.Mirror.ExpectedSHA256(ctx, s.client(), version, p.OS, p.Arch)
		if err != nil {
			return "", fmt.Errorf("go%s: %w", version, err)
		}
		return "sha256:" + sum, nil
	}
	if s.Fetcher == nil {
		return "", errNoFetcher
	}
	sum, err := s.Fetcher.Checksum(ctx, s.Proxy, version, p.OS, p.Arch)
	if err != nil {
		return "", fmt.Errorf("go%s: %w", version, err)
	}
	return sum, nil
}
