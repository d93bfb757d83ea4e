package testenv

import (
	"archive/zip"
	"bytes"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"testing"

	"github.com/kilnhq/terraform-provider-kiln/internal/gotoolchain"
)

// StartDoctoredModuleProxy serves the module proxy at upstream (its checksum
// database included) except for one toolchain version, whose zip it replaces
// with a doctored one: what the real checksum database records for that
// version no longer matches what is served.
func StartDoctoredModuleProxy(t *testing.T, upstream, version string) string {
	t.Helper()
	target, err := url.Parse(upstream)
	if err != nil {
		t.Fatal(err)
	}
	modVersion := gotoolchain.ModuleVersion(version, "linux", "amd64")
	var doctored bytes.Buffer
	zw := zip.NewWriter(&doctored)
	w, err := zw.Create(gotoolchain.ToolchainModule + "@" + modVersion + "/VERSION")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("go" + version + "\n")); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	doctoredPath := "/" + gotoolchain.ToolchainModule + "/@v/" + modVersion + ".zip"
	return startModuleProxy(t, target, func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path != doctoredPath {
			return false
		}
		_, _ = w.Write(doctored.Bytes())
		return true
	})
}

// StartModuleProxy serves the module proxy at upstream over plain HTTP on
// 127.0.0.1: for guests, which reach it as 10.0.2.2 without a TLS handshake
// of their own (slow under emulation, and timed out at 10 s by Go).
func StartModuleProxy(t *testing.T, upstream string) string {
	t.Helper()
	target, err := url.Parse(upstream)
	if err != nil {
		t.Fatal(err)
	}
	return startModuleProxy(t, target, func(http.ResponseWriter, *http.Request) bool { return false })
}

// startModuleProxy forwards to target what serve does not answer itself.
func startModuleProxy(t *testing.T, target *url.URL, serve func(http.ResponseWriter, *http.Request) bool) string {
	forward := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) { r.SetURL(target) }}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !serve(w, r) {
			forward.ServeHTTP(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}
