package gotoolchain

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/mod/sumdb"
	"golang.org/x/mod/sumdb/dirhash"
	"golang.org/x/mod/sumdb/note"

	"github.com/kilnhq/terraform-provider-kiln/internal/signature"
	"github.com/kilnhq/terraform-provider-kiln/internal/signature/signaturetest"
)

const testVersion = "1.99.0"

var linuxAMD64 = Platform{OS: "linux", Arch: "amd64"}

// toolchainZip builds a small golang.org/toolchain module zip for linux/amd64.
func toolchainZip(t *testing.T, version, marker string) []byte {
	return platformZip(t, linuxAMD64, version, marker)
}

// platformZip builds a small golang.org/toolchain module zip for p.
func platformZip(t *testing.T, p Platform, version, marker string) []byte {
	t.Helper()
	prefix := ToolchainModule + "@" + ModuleVersion(version, p.OS, p.Arch) + "/"
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, body := range map[string]string{
		"bin/go": "#!/bin/sh\necho go version go" + version + marker + "\n",
		"pkg/tool/" + p.OS + "_" + p.Arch + "/vet": "vet",
		"src/cmd/_go.mod":                          "module cmd\n",
		"VERSION":                                  "go" + version + "\n",
		"src/runtime/extern.go":                    "package runtime\n",
		"lib/time/zoneinfo.zip.note":               "tz",
	} {
		w, err := zw.Create(prefix + name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(w, body); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func zipHash(t *testing.T, data []byte) string {
	t.Helper()
	path := t.TempDir() + "/m.zip"
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	h, err := dirhash.HashZip(path, dirhash.Hash1)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// fakeProxy is a module proxy serving one toolchain zip, and a checksum
// database (signed with a key the test made) that vouches for `vouched`. Its
// version list also names 1.98.3 for linux/amd64.
type fakeProxy struct {
	*httptest.Server
	zip      atomic.Value // []byte served
	zipHits  atomic.Int32
	verifier string
}

func newFakeProxy(t *testing.T, served, vouched []byte) *fakeProxy {
	return newPlatformProxy(t, linuxAMD64, served, vouched)
}

// newPlatformProxy is newFakeProxy with the served toolchain built for p.
func newPlatformProxy(t *testing.T, p Platform, served, vouched []byte) *fakeProxy {
	t.Helper()
	skey, vkey, err := note.GenerateKey(rand.Reader, "sum.kiln.test")
	if err != nil {
		t.Fatal(err)
	}
	modVersion := ModuleVersion(testVersion, p.OS, p.Arch)
	h := zipHash(t, vouched)
	db := sumdb.NewServer(sumdb.NewTestServer(skey, func(path, vers string) ([]byte, error) {
		if path != ToolchainModule || vers != modVersion {
			return nil, errors.New("unknown module")
		}
		return []byte(path + " " + vers + " " + h + "\n" + path + " " + vers + "/go.mod h1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"), nil
	}))
	proxy := &fakeProxy{verifier: vkey}
	proxy.zip.Store(served)
	mux := http.NewServeMux()
	mux.Handle("/sumdb/sum.kiln.test/", http.StripPrefix("/sumdb/sum.kiln.test", db))
	mux.HandleFunc("/"+ToolchainModule+"/@v/list", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "v0.0.1-go1.98.3.linux-amd64\n"+modVersion+"\nv0.0.1-go1.99.0.darwin-arm64\n")
	})
	mux.HandleFunc("/"+ToolchainModule+"/@v/"+modVersion+".zip", func(w http.ResponseWriter, r *http.Request) {
		proxy.zipHits.Add(1)
		_, _ = w.Write(proxy.zip.Load().([]byte))
	})
	proxy.Server = httptest.NewServer(mux)
	t.Cleanup(proxy.Close)
	return proxy
}

func (p *fakeProxy) source() ModuleProxy { return ModuleProxy{URL: p.URL, SumDB: p.verifier} }

func newFetcher(t *testing.T) *Fetcher {
	return &Fetcher{Cache: &Cache{Dir: t.TempDir()}}
}

// tarEntries lists a tarball's regular files with their modes and contents.
func tarEntries(t *testing.T, path string) map[string]struct {
	mode int64
	body string
} {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	out := map[string]struct {
		mode int64
		body string
	}{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			b, _ := io.ReadAll(tr)
			out[h.Name] = struct {
				mode int64
				body string
			}{h.Mode, string(b)}
		}
	}
}

func TestModuleProxyFetchVerifiesAndConverts(t *testing.T) {
	good := toolchainZip(t, testVersion, "")
	proxy := newFakeProxy(t, good, good)
	f := newFetcher(t)
	a, err := f.FromModuleProxy(context.Background(), proxy.source(), testVersion, "linux", "amd64")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(a.Evidence, "h1:") || a.SHA256 == "" {
		t.Fatalf("artifact %+v lacks evidence or hash", a)
	}
	files := tarEntries(t, a.Path)
	if e := files["go/bin/go"]; e.mode != 0o755 {
		t.Errorf("go/bin/go mode = %o, want 755", e.mode)
	}
	if e := files["go/pkg/tool/linux_amd64/vet"]; e.mode != 0o755 {
		t.Errorf("vet mode = %o, want 755", e.mode)
	}
	if e, ok := files["go/src/cmd/go.mod"]; !ok || e.body != "module cmd\n" || e.mode != 0o644 {
		t.Errorf("_go.mod not restored as go.mod: %+v (present %v)", e, ok)
	}
	if _, ok := files["go/src/cmd/_go.mod"]; ok {
		t.Error("_go.mod left in the tarball")
	}
	if files["go/VERSION"].body != "go"+testVersion+"\n" {
		t.Errorf("go/VERSION = %q", files["go/VERSION"].body)
	}
}

func TestModuleProxyRejectsATamperedZip(t *testing.T) {
	good := toolchainZip(t, testVersion, "")
	evil := toolchainZip(t, testVersion, " (backdoored)")
	proxy := newFakeProxy(t, evil, good)
	f := newFetcher(t)
	_, err := f.FromModuleProxy(context.Background(), proxy.source(), testVersion, "linux", "amd64")
	if !errors.Is(err, ErrChecksumMismatch) {
		t.Fatalf("err = %v, want ErrChecksumMismatch", err)
	}
	// Nothing is cached: once the proxy serves the genuine zip, it is fetched and accepted.
	proxy.zip.Store(good)
	if _, err := f.FromModuleProxy(context.Background(), proxy.source(), testVersion, "linux", "amd64"); err != nil {
		t.Fatalf("after the proxy was repaired: %v", err)
	}
}

func TestModuleProxyRejectsAnotherChecksumDatabase(t *testing.T) {
	good := toolchainZip(t, testVersion, "")
	proxy := newFakeProxy(t, good, good)
	_, otherKey, _ := note.GenerateKey(rand.Reader, "sum.kiln.test")
	src := proxy.source()
	src.SumDB = otherKey // the database's signed tree does not verify under this key
	_, err := newFetcher(t).FromModuleProxy(context.Background(), src, testVersion, "linux", "amd64")
	if err == nil || !strings.Contains(err.Error(), "checksum database") {
		t.Fatalf("err = %v, want a checksum database verification error", err)
	}
}

func TestModuleProxyReleasesResolve(t *testing.T) {
	proxy := newFakeProxy(t, nil, toolchainZip(t, testVersion, ""))
	releases, err := proxy.source().Releases(context.Background(), http.DefaultClient, "linux", "amd64")
	if err != nil {
		t.Fatal(err)
	}
	got, err := Resolve("stable", releases)
	if err != nil || got != testVersion {
		t.Fatalf("Resolve(stable) = %q, %v; want %s", got, err, testVersion)
	}
}

// Many hosts (goroutines here) asking for the same toolchain fetch it once.
func TestFetchOnceUnderConcurrency(t *testing.T) {
	good := toolchainZip(t, testVersion, "")
	proxy := newFakeProxy(t, good, good)
	f := newFetcher(t)
	var wg sync.WaitGroup
	sums := make([]string, 4)
	for i := range sums {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a, err := f.FromModuleProxy(context.Background(), proxy.source(), testVersion, "linux", "amd64")
			if err != nil {
				t.Error(err)
				return
			}
			sums[i] = a.SHA256
		}()
	}
	wg.Wait()
	if hits := proxy.zipHits.Load(); hits != 1 {
		t.Fatalf("origin served the zip %d times, want 1", hits)
	}
	for _, s := range sums[1:] {
		if s != sums[0] {
			t.Fatalf("hosts got different archives: %v", sums)
		}
	}
}

// fakeMirror serves a release index, a tarball and its signature.
type fakeMirror struct {
	*httptest.Server
	tarball, sig []byte
	indexSHA     string
}

func newFakeMirror(t *testing.T, signer signaturetest.Signer) *fakeMirror {
	t.Helper()
	m := &fakeMirror{tarball: []byte("a go1.99.0 release tarball")}
	sum := sha256.Sum256(m.tarball)
	m.indexSHA = hex.EncodeToString(sum[:])
	m.sig = signer.Sign(t, m.tarball, time.Now().Add(-time.Hour))
	name := TarballName(testVersion, "linux", "amd64")
	mux := http.NewServeMux()
	mux.HandleFunc("/dl.json", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode([]Release{{Version: "go" + testVersion, Stable: true, Files: []File{
			{Filename: name, OS: "linux", Arch: "amd64", Kind: "archive", SHA256: m.indexSHA},
		}}})
	})
	mux.HandleFunc("/go/"+name, func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(m.tarball) })
	mux.HandleFunc("/go/"+name+".asc", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(m.sig) })
	m.Server = httptest.NewServer(mux)
	t.Cleanup(m.Close)
	return m
}

func TestMirrorFetch(t *testing.T) {
	created := time.Now().Add(-24 * time.Hour)
	signer := signaturetest.New(t, created, 365*24*time.Hour)
	stranger := signaturetest.New(t, created, 365*24*time.Hour)
	source := func(m *fakeMirror, keys signaturetest.Signer, pinned string) Mirror {
		return Mirror{URL: m.URL + "/go/", IndexURL: m.URL + "/dl.json", Keyring: keys.Keyring(), Fingerprint: pinned}
	}

	t.Run("good", func(t *testing.T) {
		m := newFakeMirror(t, signer)
		a, err := newFetcher(t).FromMirror(context.Background(), source(m, signer, signer.Fingerprint()), testVersion, "linux", "amd64", "")
		if err != nil {
			t.Fatal(err)
		}
		if a.SHA256 != m.indexSHA || !strings.Contains(a.Evidence, "OpenPGP") {
			t.Fatalf("artifact %+v, want sha256 %s and signature evidence", a, m.indexSHA)
		}
	})
	t.Run("wrong pinned sha256", func(t *testing.T) {
		m := newFakeMirror(t, signer)
		_, err := newFetcher(t).FromMirror(context.Background(), source(m, signer, ""), testVersion, "linux", "amd64", strings.Repeat("0", 64))
		if !errors.Is(err, ErrChecksumMismatch) {
			t.Fatalf("err = %v, want ErrChecksumMismatch", err)
		}
	})
	t.Run("tampered archive in the mirror", func(t *testing.T) {
		m := newFakeMirror(t, signer)
		m.tarball = append(m.tarball, '!')
		_, err := newFetcher(t).FromMirror(context.Background(), source(m, signer, ""), testVersion, "linux", "amd64", "")
		if !errors.Is(err, ErrChecksumMismatch) {
			t.Fatalf("err = %v, want ErrChecksumMismatch", err)
		}
	})
	t.Run("bad signature", func(t *testing.T) {
		m := newFakeMirror(t, signer)
		m.sig = signer.Sign(t, []byte("something else"), time.Now())
		_, err := newFetcher(t).FromMirror(context.Background(), source(m, signer, ""), testVersion, "linux", "amd64", "")
		if !errors.Is(err, signature.ErrBad) {
			t.Fatalf("err = %v, want ErrBad", err)
		}
	})
	t.Run("signed by another key than the pinned one", func(t *testing.T) {
		m := newFakeMirror(t, stranger)
		both := Mirror{URL: m.URL + "/go/", IndexURL: m.URL + "/dl.json",
			Keyring: append(signer.Keyring(), stranger.Entity), Fingerprint: signer.Fingerprint()}
		_, err := newFetcher(t).FromMirror(context.Background(), both, testVersion, "linux", "amd64", "")
		if !errors.Is(err, signature.ErrWrongSigner) {
			t.Fatalf("err = %v, want ErrWrongSigner", err)
		}
	})
}

// TestModuleProxyRealToolchain fetches a real toolchain through the real Go
// module proxy and checksum database. It needs the network, so it runs with
// the acceptance tests.
func TestModuleProxyRealToolchain(t *testing.T) {
	if os.Getenv("TF_ACC") == "" {
		t.Skip("needs the Go module proxy: set TF_ACC=1")
	}
	f := newFetcher(t)
	a, err := f.FromModuleProxy(context.Background(), ModuleProxy{}, "1.24.4", "linux", "amd64")
	if err != nil {
		t.Fatal(err)
	}
	files := tarEntries(t, a.Path)
	if e := files["go/bin/go"]; e.mode != 0o755 || len(e.body) < 1<<20 {
		t.Fatalf("go/bin/go: mode %o, %d bytes", e.mode, len(e.body))
	}
	if !strings.HasPrefix(files["go/VERSION"].body, "go1.24.4\n") {
		t.Fatalf("go/VERSION = %q", files["go/VERSION"].body)
	}
	t.Logf("go1.24.4 linux/amd64: %d bytes, sha256 %s, %s", a.Size, a.SHA256, a.Evidence)
}

// A cached archive is served only under the policy it was verified with: the
// same URL asked for with other keys, another pinned signer or another release
// index is fetched and verified again, and fails here.
func TestMirrorCacheHitHeldToThePolicy(t *testing.T) {
	created := time.Now().Add(-24 * time.Hour)
	signer := signaturetest.New(t, created, 365*24*time.Hour)
	stranger := signaturetest.New(t, created, 365*24*time.Hour)
	m := newFakeMirror(t, signer)
	otherIndex := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode([]Release{{Version: "go" + testVersion, Stable: true, Files: []File{
			{Filename: TarballName(testVersion, "linux", "amd64"), OS: "linux", Arch: "amd64", Kind: "archive", SHA256: strings.Repeat("0", 64)},
		}}})
	}))
	defer otherIndex.Close()
	f := newFetcher(t)
	filled := Mirror{URL: m.URL + "/go/", IndexURL: m.URL + "/dl.json", Keyring: signer.Keyring(), Fingerprint: signer.Fingerprint()}
	if _, err := f.FromMirror(context.Background(), filled, testVersion, "linux", "amd64", ""); err != nil {
		t.Fatal(err)
	}

	for name, m := range map[string]Mirror{
		"the embedded Go release keys": {URL: filled.URL, IndexURL: filled.IndexURL},
		"another keyring":              {URL: filled.URL, IndexURL: filled.IndexURL, Keyring: stranger.Keyring()},
		"another pinned signer": {URL: filled.URL, IndexURL: filled.IndexURL,
			Keyring: append(signer.Keyring(), stranger.Entity), Fingerprint: stranger.Fingerprint()},
		"another release index": {URL: filled.URL, IndexURL: otherIndex.URL, Keyring: filled.Keyring, Fingerprint: filled.Fingerprint},
	} {
		if a, err := f.FromMirror(context.Background(), m, testVersion, "linux", "amd64", ""); err == nil {
			t.Errorf("with %s: served %s (%s) from the cache", name, a.SHA256, a.Evidence)
		}
	}
	if _, err := f.FromMirror(context.Background(), filled, testVersion, "linux", "amd64", ""); err != nil {
		t.Errorf("under the policy it was filled with: %v", err)
	}
}
