//go:build unix

// The build scripts run on pool hosts (Linux); these tests run them with bash here
// and lock and signal as the hosts do (flock, process groups): Unix only.

package buildfarm

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kilnhq/terraform-provider-kiln/internal/gitsource"
	"github.com/kilnhq/terraform-provider-kiln/internal/testenv"
)

// The host scripts parse, pass shellcheck and are embedded.
func TestScripts(t *testing.T) { testenv.CheckScripts(t, "scripts", "scripts.go") }

// scriptRun is build.sh run on this machine, as a host runs it.
type scriptRun struct {
	stdout []byte
	stderr string
	exit   int
}

// runBuildScript runs build.sh with args after the workspace and slots
// (wait, GOROOT, epoch, mode, ...), feeding env and the source directory,
// and keeping standard input open until the script ends, as Kiln does.
// closeAfter, when positive, closes standard input that long after the
// source went out: a dropped connection.
func runBuildScript(t *testing.T, workspace string, slots int, env []string, srcDir string, closeAfter time.Duration, args ...string) scriptRun {
	t.Helper()
	var src bytes.Buffer
	if err := gitsource.ArchiveDir(srcDir, &src); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("bash", append([]string{"scripts/build.sh", workspace, fmt.Sprint(slots)}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		fmt.Fprintf(stdin, "%d\n", len(env))
		for _, e := range env {
			fmt.Fprintln(stdin, e)
		}
		fmt.Fprintf(stdin, "%d\n", src.Len())
		_, _ = stdin.Write(src.Bytes())
		if closeAfter > 0 {
			time.Sleep(closeAfter)
			_ = stdin.Close()
		}
	}()
	err = cmd.Wait()
	r := scriptRun{stdout: stdout.Bytes(), stderr: stderr.String()}
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		r.exit = exit.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return r
}

func newWorkspace(t *testing.T) string {
	t.Helper()
	ws := t.TempDir()
	for _, d := range []string{"slots", "builds"} {
		if err := os.Mkdir(filepath.Join(ws, d), 0o750); err != nil {
			t.Fatal(err)
		}
	}
	return ws
}

func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const helloMain = `package main

import "fmt"

var stamp = "unset"

func main() { fmt.Println("stamp", stamp) }
`

func localGoRoot(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		t.Skip("no go command on PATH")
	}
	return strings.TrimSpace(string(out))
}

// resultFiles reads build.sh's result tar: name → content.
func resultFiles(t *testing.T, b []byte) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return files
		}
		if err != nil {
			t.Fatalf("result tar: %v", err)
		}
		files[hdr.Name], _ = io.ReadAll(tr)
	}
}

// A Go build in two different workspaces gives the same binary (trimpath,
// no build id), stamped through ldflags, and the log names each step.
func TestBuildScript_goReproducible(t *testing.T) {
	goroot := localGoRoot(t)
	src := writeTree(t, map[string]string{"go.mod": "module example.com/hello\n\ngo 1.22\n", "cmd/hello/main.go": helloMain})
	var sums []string
	for range 2 {
		r := runBuildScript(t, newWorkspace(t), 1, nil, src, 0, "0", goroot, "1700000000", "go",
			"./cmd/hello", "hello", "-X main.stamp=2023-11-14", "", "0")
		if r.exit != 0 {
			t.Fatalf("build exited %d:\n%s", r.exit, r.stderr)
		}
		bin := resultFiles(t, r.stdout)["hello"]
		if len(bin) == 0 {
			t.Fatalf("no binary in the results:\n%s", r.stderr)
		}
		sum := sha256.Sum256(bin)
		sums = append(sums, hex.EncodeToString(sum[:]))
		if got := lastStep(r.stderr); got != "send the results" {
			t.Errorf("last step %q", got)
		}
		path := filepath.Join(t.TempDir(), "hello")
		if err := os.WriteFile(path, bin, 0o755); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(path).Output(); err != nil || string(out) != "stamp 2023-11-14\n" {
			t.Errorf("the binary printed %q (%v)", out, err)
		}
	}
	if sums[0] != sums[1] {
		t.Errorf("two workspaces, two binaries: %s %s", sums[0], sums[1])
	}
}

// A package that does not compile fails in step "go build" with the
// compiler's message, and sends no results.
func TestBuildScript_compileError(t *testing.T) {
	goroot := localGoRoot(t)
	src := writeTree(t, map[string]string{"go.mod": "module example.com/broken\n\ngo 1.22\n", "main.go": "package main\n\nfunc main() { undefinedThing() }\n"})
	r := runBuildScript(t, newWorkspace(t), 1, nil, src, 0, "0", goroot, "0", "go", ".", "broken", "", "", "0")
	if r.exit == 0 || len(r.stdout) != 0 {
		t.Fatalf("exit %d, %d bytes of results", r.exit, len(r.stdout))
	}
	if lastStep(r.stderr) != "go build" || !strings.Contains(r.stderr, "undefined: undefinedThing") {
		t.Errorf("log:\n%s", r.stderr)
	}
}

// With every slot locked by other builds, the script gives up with 75.
func TestBuildScript_busy(t *testing.T) {
	ws := newWorkspace(t)
	lock, err := os.Create(filepath.Join(ws, "slots", "1.lock"))
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	r := runBuildScript(t, ws, 1, nil, writeTree(t, map[string]string{"a": "b"}), 0, "0", "/nonexistent", "0", "script", "true", "a")
	if r.exit != slotBusy {
		t.Fatalf("exit %d, want %d:\n%s", r.exit, slotBusy, r.stderr)
	}
}

// A script build returns its artifacts; secret values come through standard
// input, not the command line.
func TestBuildScript_artifacts(t *testing.T) {
	src := writeTree(t, map[string]string{"make.sh": "mkdir -p dist\nprintf '%s' \"$TOKEN\" | wc -c > dist/n\necho app > dist/app\n"})
	r := runBuildScript(t, newWorkspace(t), 1, []string{"TOKEN=s3cret"}, src, 0, "0", "/nonexistent", "0", "script", "bash make.sh", "dist/app", "dist/n")
	if r.exit != 0 {
		t.Fatalf("exit %d:\n%s", r.exit, r.stderr)
	}
	files := resultFiles(t, r.stdout)
	if string(files["dist/app"]) != "app\n" || strings.TrimSpace(string(files["dist/n"])) != "6" {
		t.Errorf("results %q", files)
	}
}

// When Kiln's end goes away mid-build, the build's whole process group is
// killed and the slot is free again.
func TestBuildScript_dropKillsProcessGroup(t *testing.T) {
	ws := newWorkspace(t)
	pidFile := filepath.Join(t.TempDir(), "pid")
	src := writeTree(t, map[string]string{"a": "b"})
	start := time.Now()
	r := runBuildScript(t, ws, 1, []string{"PIDFILE=" + pidFile}, src, 2*time.Second, "0", "/nonexistent", "0", "script",
		`sleep 300 & echo $! > "$PIDFILE"; wait`, "a")
	if r.exit == 0 || time.Since(start) > time.Minute {
		t.Fatalf("exit %d after %s:\n%s", r.exit, time.Since(start), r.stderr)
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for syscall.Kill(pid, 0) == nil {
		if time.Now().After(deadline) {
			t.Fatalf("the build's child %d still runs", pid)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, err := os.Stat(filepath.Join(ws, "builds", "1")); !os.IsNotExist(err) {
		t.Errorf("the slot's build directory is left: %v", err)
	}
}
