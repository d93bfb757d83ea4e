// Command githttpd serves the bare repositories under a directory over smart
// HTTP for the build test bed (scripts/build-testbed.sh): Debian's
// git-http-backend behind HTTP basic auth checked against an htpasswd file
// (bcrypt entries, as htpasswd -B writes them). Every authenticated user may
// fetch and push.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"log"
	"net/http"
	"net/http/cgi"
	"os"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on")
	root := flag.String("root", "", "directory holding the bare repositories")
	htpasswd := flag.String("htpasswd", "", "htpasswd file with bcrypt entries")
	backend := flag.String("backend", "/usr/lib/git-core/git-http-backend", "git-http-backend")
	flag.Parse()
	if *root == "" || *htpasswd == "" {
		log.Fatal("githttpd: -root and -htpasswd are required")
	}
	users, err := readHtpasswd(*htpasswd)
	if err != nil {
		log.Fatalf("githttpd: %v", err)
	}
	git := &cgi.Handler{
		Path: *backend,
		Env: []string{
			"GIT_PROJECT_ROOT=" + *root,
			"GIT_HTTP_EXPORT_ALL=1",
			// git-http-backend allows pushes only with REMOTE_USER set, which
			// net/http/cgi does not pass on; the users were checked here.
			"GIT_CONFIG_COUNT=1",
			"GIT_CONFIG_KEY_0=http.receivepack",
			"GIT_CONFIG_VALUE_0=true",
		},
	}
	srv := &http.Server{
		Addr:              *listen,
		Handler:           basicAuth(users, git),
		ReadHeaderTimeout: 10 * time.Second,
	}
	log.Fatal(srv.ListenAndServe())
}

func basicAuth(users map[string]string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, pass, ok := r.BasicAuth()
		hash, known := users[user]
		if !ok || !known || bcrypt.CompareHashAndPassword([]byte(hash), []byte(pass)) != nil {
			w.Header().Set("WWW-Authenticate", `Basic realm="kiln-test-git"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func readHtpasswd(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	users := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if user, hash, ok := strings.Cut(strings.TrimSpace(sc.Text()), ":"); ok {
			users[user] = hash
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(users) == 0 {
		return nil, fmt.Errorf("%s has no users", path)
	}
	return users, nil
}
