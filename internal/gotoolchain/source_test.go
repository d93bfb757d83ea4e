package gotoolchain

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

var linuxARM64 = Platform{OS: "linux", Arch: "arm64"}

// A module proxy source fetches the toolchain module of the platform asked
// for, and nothing else.
func TestSourceFetchesThePlatformsToolchain(t *testing.T) {
	zip := platformZip(t, linuxARM64, testVersion, "")
	proxy := newPlatformProxy(t, linuxARM64, zip, zip)
	src := Source{Kind: FromModuleProxy, Proxy: proxy.source(), Fetcher: newFetcher(t)}
	a, err := src.Fetch(context.Background(), testVersion, linuxARM64)
	if err != nil {
		t.Fatal(err)
	}
	if a.Open == nil || a.URL != "" || a.Size == 0 {
		t.Fatalf("archive %+v, want one streamed from here", a)
	}
	rc, err := a.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if c, err := Inspect(rc); err != nil || c.Version != "go"+testVersion {
		t.Fatalf("Inspect = %+v, %v", c, err)
	}
	if _, err := src.Fetch(context.Background(), testVersion, linuxAMD64); err == nil {
		t.Fatal("fetched a linux/amd64 toolchain the proxy does not serve")
	}
}

func TestSourceResolve(t *testing.T) {
	exact, err := Source{}.Resolve(context.Background(), []string{"1.24.4", "1.23.10"}, linuxARM64)
	if err != nil || strings.Join(exact, " ") != "1.24.4 1.23.10" {
		t.Fatalf("exact releases resolve to %v, %v without a lookup", exact, err)
	}
	zip := platformZip(t, linuxARM64, testVersion, "")
	src := Source{Proxy: newPlatformProxy(t, linuxARM64, zip, zip).source(), Fetcher: newFetcher(t)}
	// The list names 1.98.3 for linux/amd64 only.
	if _, err := src.Resolve(context.Background(), []string{"1.98"}, linuxARM64); err == nil {
		t.Error("1.98 resolved for linux/arm64")
	}
	got, err := src.Resolve(context.Background(), []string{"1.98", "stable"}, Platform{OS: "linux"})
	if err != nil || strings.Join(got, " ") != "1.98.3 "+testVersion {
		t.Errorf("for any linux architecture: %v, %v", got, err)
	}
}

// A host that fetches its toolchain itself is told the URL and the SHA-256 of
// its platform's tarball; a pinned SHA-256 wins over the index's.
func TestSourceFetchedByHost(t *testing.T) {
	index := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode([]Release{{Version: "go1.24.4", Stable: true, Files: []File{
			{Filename: "go1.24.4.linux-amd64.tar.gz", OS: "linux", Arch: "amd64", Kind: "archive", SHA256: strings.Repeat("a", 64)},
			{Filename: "go1.24.4.linux-arm64.tar.gz", OS: "linux", Arch: "arm64", Kind: "archive", SHA256: strings.Repeat("b", 64)},
		}}})
	}))
	defer index.Close()
	src := Source{Kind: FetchedByHost, Mirror: Mirror{URL: "http://mirror.test/go", IndexURL: index.URL}}
	a, err := src.Fetch(context.Background(), "1.24.4", linuxARM64)
	if err != nil {
		t.Fatal(err)
	}
	if a.URL != "http://mirror.test/go/go1.24.4.linux-arm64.tar.gz" || a.SHA256 != strings.Repeat("b", 64) || a.Open != nil {
		t.Errorf("archive %+v, want the linux/arm64 tarball for the host to fetch", a)
	}
	src.SHA256 = map[string]string{"1.24.4": strings.Repeat("c", 64)}
	if a, err := src.Fetch(context.Background(), "1.24.4", linuxARM64); err != nil || a.SHA256 != strings.Repeat("c", 64) {
		t.Errorf("with a pinned SHA-256: %+v, %v", a, err)
	}
}

// An archive is named before it is fetched: by the index's SHA-256 or a
// pinned one for tarballs, by the checksum database's hash for modules.
func TestSourceArchiveID(t *testing.T) {
	index := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode([]Release{{Version: "go1.24.4", Stable: true, Files: []File{
			{Filename: "go1.24.4.linux-arm64.tar.gz", OS: "linux", Arch: "arm64", Kind: "archive", SHA256: strings.Repeat("b", 64)},
		}}})
	}))
	defer index.Close()
	ctx := context.Background()
	for _, kind := range []string{FromMirror, FetchedByHost} {
		src := Source{Kind: kind, Mirror: Mirror{IndexURL: index.URL}}
		if id, err := src.ArchiveID(ctx, "1.24.4", linuxARM64); err != nil || id != "sha256:"+strings.Repeat("b", 64) {
			t.Errorf("%s: %q, %v; want the index's SHA-256", kind, id, err)
		}
		src.SHA256 = map[string]string{"1.24.4": strings.Repeat("c", 64)}
		if id, err := src.ArchiveID(ctx, "1.24.4", linuxARM64); err != nil || id != "sha256:"+strings.Repeat("c", 64) {
			t.Errorf("%s pinned: %q, %v; want the pin", kind, id, err)
		}
	}
	zip := platformZip(t, linuxARM64, testVersion, "")
	src := Source{Proxy: newPlatformProxy(t, linuxARM64, zip, zip).source(), Fetcher: newFetcher(t)}
	id, err := src.ArchiveID(ctx, testVersion, linuxARM64)
	if err != nil || !strings.HasPrefix(id, "h1:") {
		t.Errorf("module proxy: %q, %v; want the checksum database's h1: hash", id, err)
	}
}
