package hostrelease

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kilnhq/terraform-provider-kiln/internal/testenv"
)

// Every host script parses in bash, passes shellcheck where this machine has
// it, and is embedded.
func TestScripts(t *testing.T) { testenv.CheckScripts(t, "scripts", "scripts.go") }

// runScript runs a host script here, as a host would run it.
func runScript(t *testing.T, script string, stdin []byte, args ...string) (string, string, error) {
	t.Helper()
	cmd := exec.Command("bash", append([]string{"-c", script, "kiln"}, args...)...)
	cmd.Stdin = bytes.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

func TestHealthScript(t *testing.T) {
	status := http.StatusOK
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/health" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(status)
		fmt.Fprint(w, "ok build-7")
	}))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, closedPort, _ := net.SplitHostPort(closed.Addr().String())
	closed.Close()

	cases := []struct {
		name, kind, port, path, status, body string
		fail                                 string // the failure's text; "" when healthy
	}{
		{"http healthy", "http", port, "/health", "200", "build-7", ""},
		{"http any body", "http", port, "/health", "200", "", ""},
		{"http wrong status", "http", port, "/nope", "200", "", "status 404, want 200"},
		{"http wrong body", "http", port, "/health", "200", "build-8", `body does not contain "build-8"`},
		{"http refused", "http", closedPort, "/health", "200", "", "no answer"},
		{"tcp healthy", "tcp", port, "", "0", "", ""},
		{"tcp refused", "tcp", closedPort, "", "0", "", "connection failed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, stderr, err := runScript(t, healthScript, nil, c.kind, c.port, c.path, c.status, c.body, "0.1", "2", "0", "2", "2")
			if c.fail == "" {
				if err != nil {
					t.Fatalf("want healthy, got %v: %s", err, stderr)
				}
				return
			}
			if err == nil || !strings.Contains(stderr, c.fail) || !strings.Contains(stderr, "2 consecutive failures") {
				t.Fatalf("want failure %q, got %v: %q", c.fail, err, stderr)
			}
		})
	}
}

// A release staged on a host (here, a directory) reads back as staged; a
// binary that arrives with another digest is refused and leaves nothing.
func TestStageAndReadScripts(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "svc")
	binary := []byte("#!/bin/sh\necho hi\n")
	sum := sha256.Sum256(binary)
	digest := hex.EncodeToString(sum[:])
	config := filepath.Join(t.TempDir(), "etc", "svc.conf")
	stdin := append(append([]byte{}, binary...), fmt.Sprintf("0640 5 %s\nhello", config)...)

	wrong := strings.Repeat("0", 64)
	if _, stderr, err := runScript(t, stageScript, stdin, dir, "svc", "v1-000000000000", wrong, fmt.Sprint(len(binary))); err == nil ||
		!strings.Contains(stderr, "want "+wrong) {
		t.Fatalf("a wrong digest was not refused: %v %s", err, stderr)
	}
	if entries, _ := os.ReadDir(filepath.Join(dir, "releases")); len(entries) != 0 {
		t.Fatalf("a refused release left %v", entries)
	}
	release := "v1-" + digest[:12]
	if _, stderr, err := runScript(t, stageScript, stdin, dir, "svc", release, digest, fmt.Sprint(len(binary))); err != nil {
		t.Fatalf("stage: %v: %s", err, stderr)
	}
	got, err := os.ReadFile(filepath.Join(dir, "releases", release, ".kiln", "files", config))
	if err != nil || string(got) != "hello" {
		t.Fatalf("staged config: %q, %v", got, err)
	}
	// A second staging reuses the binary already there.
	if _, stderr, err := runScript(t, stageScript, []byte(fmt.Sprintf("0640 3 %s\nbye", config)), dir, "svc", release, digest, "reuse"); err != nil {
		t.Fatalf("stage again: %v: %s", err, stderr)
	}
	if err := os.Symlink("releases/"+release, filepath.Join(dir, "current")); err != nil {
		t.Fatal(err)
	}
	// Read with a data directory present and one missing, and one health
	// probe of a port nothing listens on.
	data := t.TempDir()
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(closed.Addr().String())
	closed.Close()
	probe := healthArgs(HealthCheck{Port: mustAtoi(t, port), Timeout: time.Second, HealthyThreshold: 1, UnhealthyThreshold: 1})
	out, stderr, err := runScript(t, readScript, nil,
		append([]string{dir, "svc", release, data + "\n" + data + "/gone", healthScript}, probe...)...)
	if err != nil {
		t.Fatalf("read: %v: %s", err, stderr)
	}
	s, err := parseState(out)
	if err != nil {
		t.Fatal(err)
	}
	if s.Foreign || s.Current != release || s.BinarySHA256 != digest || s.WantedSHA256 != digest || len(s.Releases) != 1 ||
		!slices.Equal(s.MissingData, []string{data + "/gone"}) || s.Health != "unhealthy: tcp port "+port+": connection failed" {
		t.Fatalf("read back %+v from %q", s, out)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer srv.Close()
	_, port, _ = net.SplitHostPort(srv.Listener.Addr().String())
	probe = healthArgs(HealthCheck{HTTP: true, Port: mustAtoi(t, port), Path: "/", ExpectStatus: 200, Timeout: time.Second,
		HealthyThreshold: 1, UnhealthyThreshold: 1})
	out, _, _ = runScript(t, readScript, nil, append([]string{dir, "svc", release, "", healthScript}, probe...)...)
	if s, err := parseState(out); err != nil || s.Health != Healthy || len(s.MissingData) != 0 {
		t.Fatalf("a healthy service reads as %q (%v)", out, err)
	}

	// A directory Kiln did not create is not released into.
	other := t.TempDir()
	if err := os.WriteFile(filepath.Join(other, "data"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, stderr, err := runScript(t, stageScript, binary, other, "svc", release, digest, fmt.Sprint(len(binary))); err == nil ||
		!strings.Contains(stderr, "not installed by Kiln") {
		t.Fatalf("released into a foreign directory: %v %s", err, stderr)
	}
	if out, _, _ := runScript(t, readScript, nil, other, "svc", release, ""); !strings.Contains(out, "foreign ") {
		t.Fatalf("a foreign directory reads as %q", out)
	}
}

func mustAtoi(t *testing.T, s string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// Pruning keeps the newest releases, and never the current or previous one.
func TestPruneScript(t *testing.T) {
	dir := t.TempDir()
	names := []string{"r1", "r2", "r3", "r4", "r5"} // oldest first
	for i, n := range names {
		p := filepath.Join(dir, "releases", n)
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
		when := testTime.Add(time.Duration(i) * time.Minute)
		if err := os.Chtimes(p, when, when); err != nil {
			t.Fatal(err)
		}
	}
	for link, to := range map[string]string{"current": "releases/r1", "previous": "releases/r2"} {
		if err := os.Symlink(to, filepath.Join(dir, link)); err != nil {
			t.Fatal(err)
		}
	}
	if _, stderr, err := runScript(t, pruneScript, nil, dir, "2"); err != nil {
		t.Fatalf("prune: %v: %s", err, stderr)
	}
	var left []string
	entries, _ := os.ReadDir(filepath.Join(dir, "releases"))
	for _, e := range entries {
		left = append(left, e.Name())
	}
	if want := []string{"r1", "r2", "r4", "r5"}; !slices.Equal(left, want) {
		t.Fatalf("left %v, want %v", left, want)
	}
}

// Removal deletes the install dir and, only when asked, the data directories
// Kiln recorded as created, never another. systemctl is a stub here.
func TestRemoveScript(t *testing.T) {
	bin := t.TempDir()
	if err := os.WriteFile(filepath.Join(bin, "systemctl"), []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+":"+os.Getenv("PATH"))
	root := t.TempDir()
	dir, created, existing := filepath.Join(root, "svc"), filepath.Join(root, "data"), filepath.Join(root, "theirs")
	install := func() {
		for _, d := range []string{filepath.Join(dir, ".kiln"), created, existing} {
			if err := os.MkdirAll(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		for p, content := range map[string]string{
			filepath.Join(dir, ".kiln", "service"): "svc", filepath.Join(dir, ".kiln", "manifest"): "",
			filepath.Join(dir, ".kiln", "data-dirs"): created + "\n",
		} {
			if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	exists := func(p string) bool { _, err := os.Stat(p); return err == nil }
	for _, c := range []struct {
		mode        string
		createdKept bool
	}{{"keep-data", true}, {"remove-data", false}} {
		install()
		if _, stderr, err := runScript(t, removeScript, nil, dir, "svc", c.mode); err != nil {
			t.Fatalf("remove, %s: %v: %s", c.mode, err, stderr)
		}
		if exists(dir) || exists(created) != c.createdKept || !exists(existing) {
			t.Fatalf("after remove, %s: install dir %v, created data %v, existing data %v",
				c.mode, exists(dir), exists(created), exists(existing))
		}
	}
}

// A running release restaged with other files keeps the files it ran with;
// restore puts them back in place under the same release, and the prune
// after a healthy release drops them. systemctl is a stub here.
func TestRestageAndRestoreScripts(t *testing.T) {
	bin := t.TempDir()
	if err := os.WriteFile(filepath.Join(bin, "systemctl"), []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+":"+os.Getenv("PATH"))
	dir := filepath.Join(t.TempDir(), "svc")
	config := filepath.Join(t.TempDir(), "etc", "svc.conf")
	binary := []byte("#!/bin/sh\necho hi\n")
	sum := sha256.Sum256(binary)
	digest := hex.EncodeToString(sum[:])
	release := "v1-" + digest[:12]
	stage := func(content, how string, withBinary bool) {
		t.Helper()
		in := []byte(fmt.Sprintf("0640 %d %s\n%s", len(content), config, content))
		if withBinary {
			in = append(append([]byte{}, binary...), in...)
		}
		if _, stderr, err := runScript(t, stageScript, in, dir, "svc", release, digest, how); err != nil {
			t.Fatalf("stage %q: %v: %s", content, err, stderr)
		}
	}
	activate := func(mode string) {
		t.Helper()
		if _, stderr, err := runScript(t, activateScript, nil, dir, "svc", release, "", mode); err != nil {
			t.Fatalf("activate, %s: %v: %s", mode, err, stderr)
		}
	}
	installed := func(want string) {
		t.Helper()
		if got, err := os.ReadFile(config); err != nil || string(got) != want {
			t.Fatalf("the config in place is %q (%v), want %q", got, err, want)
		}
	}
	before := filepath.Join(dir, "releases", ".before-"+release)

	stage("good", fmt.Sprint(len(binary)), true)
	activate("release")
	installed("good")
	if _, err := os.Stat(before); !os.IsNotExist(err) {
		t.Fatalf("a first release kept files from before it: %v", err)
	}
	stage("broken", "reuse", false)
	activate("release")
	installed("broken")
	activate("restore")
	installed("good")
	out, stderr, err := runScript(t, readScript, nil, dir, "svc", release, "")
	if err != nil {
		t.Fatalf("read: %v: %s", err, stderr)
	}
	if s, err := parseState(out); err != nil || !s.RolledBack || !slices.Contains(s.Drift(dir, release, digest),
		"rolled back: the last release's unit and files failed their health check") {
		t.Fatalf("a restored host reads as %q (%v)", out, err)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "releases", release, ".kiln", "files", config)); string(got) != "good" {
		t.Fatalf("the release's staged config after the restore is %q", got)
	}
	if link, _ := os.Readlink(filepath.Join(dir, "current")); link != "releases/"+release {
		t.Fatalf("current is %q after the restore", link)
	}
	if _, stderr, err := runScript(t, activateScript, nil, dir, "svc", release, "", "restore"); err == nil ||
		!strings.Contains(stderr, "no files from before") {
		t.Fatalf("a second restore with nothing kept: %v %s", err, stderr)
	}

	stage("good", "reuse", false)
	activate("release")
	if out, _, _ := runScript(t, readScript, nil, dir, "svc", release, ""); strings.Contains(out, "rolledback") {
		t.Fatalf("a release after the restore still reads as rolled back: %q", out)
	}
	stage("broken", "reuse", false)
	if _, stderr, err := runScript(t, pruneScript, nil, dir, "5"); err != nil {
		t.Fatalf("prune: %v: %s", err, stderr)
	}
	if _, err := os.Stat(before); !os.IsNotExist(err) {
		t.Fatalf("prune kept the files from before: %v", err)
	}
}

// A failed release quotes the unit's journal since its activation only: older
// runs' lines would bury this one's. journalctl and systemctl are stubs here.
func TestJournalScriptStartsAtTheActivation(t *testing.T) {
	bin := t.TempDir()
	for name, body := range map[string]string{
		"systemctl":  "#!/bin/sh\nexit 0\n",
		"journalctl": "#!/bin/sh\necho \"$@\"\n",
	} {
		if err := os.WriteFile(filepath.Join(bin, name), []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", bin+":"+os.Getenv("PATH"))
	dir := filepath.Join(t.TempDir(), "svc")

	out, stderr, err := runScript(t, journalScript, nil, "svc", "200", dir)
	if err != nil || strings.Contains(out, "--since") {
		t.Fatalf("a host never activated: journalctl %q (%v %s)", out, err, stderr)
	}

	binary := []byte("#!/bin/sh\necho hi\n")
	sum := sha256.Sum256(binary)
	digest := hex.EncodeToString(sum[:])
	release := "v1-" + digest[:12]
	if _, stderr, err := runScript(t, stageScript, binary, dir, "svc", release, digest, fmt.Sprint(len(binary))); err != nil {
		t.Fatalf("stage: %v: %s", err, stderr)
	}
	before := time.Now().Unix()
	if _, stderr, err := runScript(t, activateScript, nil, dir, "svc", release, "", "release"); err != nil {
		t.Fatalf("activate: %v: %s", err, stderr)
	}
	out, stderr, err = runScript(t, journalScript, nil, "svc", "200", dir)
	var since int64
	if _, scanErr := fmt.Sscanf(out, "--unit svc.service --since @%d --lines 200", &since); err != nil || scanErr != nil ||
		since < before || since > time.Now().Unix() {
		t.Fatalf("after an activation at %d: journalctl %q (%v %v %s)", before, out, err, scanErr, stderr)
	}
}
