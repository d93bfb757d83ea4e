package testenv

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// ServeFiles serves files, keyed by URL path ("/name"), on 127.0.0.1 until
// the test ends, and returns the server's URL.
func ServeFiles(t *testing.T, files map[string][]byte) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		data, ok := files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write(data)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}
