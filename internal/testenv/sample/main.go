// Command backend is the sample service the build tests push to the test git
// server and build: a small HTTP backend in the spirit of the ZadigX course's,
// whose build timestamp is injected at link time.
package main

import (
	"encoding/json"
	"flag"
	"log"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"
)

// buildStamp is set with -ldflags "-X main.buildStamp=<time>"; the build
// tests set it from the commit time, so it is reproducible.
var buildStamp = "unknown"

func main() {
	listen := flag.String("listen", "127.0.0.1:8080", "address to listen on")
	flag.Parse()
	srv := &http.Server{Addr: *listen, Handler: routes(), ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(srv.ListenAndServe())
}

func routes() http.Handler {
	r := chi.NewRouter()
	r.Get("/api/buildstamp", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{"buildstamp": buildStamp})
	})
	r.Get("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	return r
}
