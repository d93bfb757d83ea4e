package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// The page shows both stamps when the backend answers where the frontend asks.
func TestPageShowsBothStamps(t *testing.T) {
	buildStamp = "frontend-stamp"
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != backendStampPath {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write([]byte(`{"buildstamp":"backend-stamp"}`))
	}))
	defer backend.Close()
	rec := httptest.NewRecorder()
	routes(backend.Client(), backend.URL).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	for _, want := range []string{"frontend: frontend-stamp", "backend: backend-stamp"} {
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("page lacks %q:\n%s", want, rec.Body)
		}
	}
}

func TestHealthz(t *testing.T) {
	rec := httptest.NewRecorder()
	routes(http.DefaultClient, "http://backend.invalid").ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/healthz", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d", rec.Code)
	}
}
