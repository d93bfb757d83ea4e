package testenv

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/kilnhq/terraform-provider-kiln/internal/gotoolchain"
	"github.com/kilnhq/terraform-provider-kiln/internal/signature/signaturetest"
)

// GoMirror is a local download mirror of Go release tarballs, signed with a key
// the test made, with a release index giving their SHA-256.
type GoMirror struct {
	URL, IndexURL string
	Keyring       string // armored public key of the signer
	Fingerprint   string
	files         *mirrorFiles
}

// mirrorFiles are the tarballs served, by version; tampered versions serve
// another version's tarball (a valid archive with the wrong SHA-256).
type mirrorFiles struct {
	mu       sync.Mutex
	data     map[string][]byte
	tampered map[string]string
}

func (f *mirrorFiles) get(version string) []byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	if other, ok := f.tampered[version]; ok {
		return f.data[other]
	}
	return f.data[version]
}

// Tamper makes the mirror serve another version's tarball in place of
// version's, leaving its index entry and signature as they were.
func (m GoMirror) Tamper(version, with string) {
	m.files.mu.Lock()
	defer m.files.mu.Unlock()
	m.files.tampered[version] = with
}

// Restore undoes Tamper.
func (m GoMirror) Restore(version string) {
	m.files.mu.Lock()
	defer m.files.mu.Unlock()
	delete(m.files.tampered, version)
}

// StartGoMirror serves genuine toolchains, rebuilt as release tarballs from the
// golang.org/toolchain modules (verified against the checksum database), on
// 127.0.0.1. Versions in badSignature get a signature by another key.
func StartGoMirror(t *testing.T, versions []string, badSignature ...string) GoMirror {
	t.Helper()
	created := time.Now().Add(-time.Hour)
	signer := signaturetest.New(t, created, 0)
	stranger := signaturetest.New(t, created, 0)
	cache := filepath.Join(CacheDir(), "toolchains")
	fetcher := &gotoolchain.Fetcher{Cache: &gotoolchain.Cache{Dir: cache}}
	mux := http.NewServeMux()
	files := &mirrorFiles{data: map[string][]byte{}, tampered: map[string]string{}}
	var index []gotoolchain.Release
	for _, v := range versions {
		a, err := fetcher.FromModuleProxy(context.Background(), gotoolchain.ModuleProxy{}, v, "linux", "amd64")
		if err != nil {
			t.Fatalf("mirror go%s: %v", v, err)
		}
		data, err := os.ReadFile(a.Path)
		if err != nil {
			t.Fatal(err)
		}
		by := signer
		for _, bad := range badSignature {
			if bad == v {
				by = stranger
			}
		}
		signature := by.Sign(t, data, time.Now())
		name := gotoolchain.TarballName(v, "linux", "amd64")
		files.data[v] = data
		mux.HandleFunc("/go/"+name, func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(files.get(v)) })
		mux.HandleFunc("/go/"+name+".asc", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(signature) })
		index = append(index, gotoolchain.Release{Version: "go" + v, Stable: true, Files: []gotoolchain.File{
			{Filename: name, OS: "linux", Arch: "amd64", Kind: "archive", SHA256: a.SHA256, Size: a.Size},
		}})
	}
	mux.HandleFunc("/dl.json", func(w http.ResponseWriter, r *http.Request) { _ = json.NewEncoder(w).Encode(index) })
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	return GoMirror{
		URL: srv.URL + "/go/", IndexURL: srv.URL + "/dl.json",
		Keyring: signaturetest.PublicKeys(t, signer, stranger), Fingerprint: hex.EncodeToString(signer.Entity.PrimaryKey.Fingerprint),
		files: files,
	}
}

// CacheDir is the cache the test bed and tests share.
func CacheDir() string {
	if dir := os.Getenv("KILN_CACHE"); dir != "" {
		return dir
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".cache", "kiln")
}
