// Command backend is the quickstart's backend: it answers /api/buildstamp
// with the time it was built, set at link time.
package main

import (
	"encoding/json"
	"flag"
	"log"
	"net/http"
	"time"
)

// buildStamp is set with -ldflags "-X main.buildStamp=<time>".
var buildStamp = "unknown"

func main() {
	listen := flag.String("listen", ":8080", "address to listen on")
	flag.Parse()
	srv := &http.Server{Addr: *listen, Handler: routes(), ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(srv.ListenAndServe())
}

func routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/buildstamp", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{"buildstamp": buildStamp})
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	return mux
}
