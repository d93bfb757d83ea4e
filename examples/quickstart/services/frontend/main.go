// Command frontend is the quickstart's frontend: its page shows its own build
// stamp and the backend's, fetched from the backend's API.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"html"
	"log"
	"net/http"
	"time"
)

// buildStamp is set with -ldflags "-X main.buildStamp=<time>".
var buildStamp = "unknown"

// backendStampPath is where the backend serves its build stamp.
const backendStampPath = "/api/build-stamp"

func main() {
	listen := flag.String("listen", ":8080", "address to listen on")
	backend := flag.String("backend", "http://backend:8080", "the backend's base URL")
	flag.Parse()
	client := &http.Client{Timeout: 5 * time.Second}
	srv := &http.Server{Addr: *listen, Handler: routes(client, *backend), ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(srv.ListenAndServe())
}

func routes(client *http.Client, backend string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		theirs, err := backendStamp(client, backend)
		if err != nil {
			theirs = "unavailable (" + err.Error() + ")"
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, "<h1>Build stamps</h1>\n<p>frontend: %s</p>\n<p>backend: %s</p>\n",
			html.EscapeString(buildStamp), html.EscapeString(theirs))
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	return mux
}

// backendStamp asks the backend for its build stamp.
func backendStamp(client *http.Client, backend string) (string, error) {
	resp, err := client.Get(backend + backendStampPath)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s: %s", backendStampPath, resp.Status)
	}
	var body struct {
		BuildStamp string `json:"buildstamp"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return "", err
	}
	return body.BuildStamp, nil
}
