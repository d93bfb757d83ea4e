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
	forward := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) { r.SetURL(target) }}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/"+gotoolchain.ToolchainModule+"/@v/"+modVersion+".zip" {
			_, _ = w.Write(doctored.Bytes())
			return
		}
		forward.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}
