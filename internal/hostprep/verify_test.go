package hostprep

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// scripts/verify-go.sh runs here on this machine's go command: it reports
// the version as `go version` prints it, GOROOT and GOPATH, runs the
// compiler, and builds nothing. A toolchain whose compiler does not run fails it.
func TestVerifyGoScript(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH")
	}
	cache := t.TempDir()
	cmd := exec.Command("bash", "-c", verifyGoScript, "kiln", goBin)
	cmd.Env = append(os.Environ(), "GOCACHE="+cache, "GOFLAGS=")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("verify-go.sh: %v\n%s", err, out)
	}
	v, err := parseVerification(string(out))
	if err != nil {
		t.Fatal(err)
	}
	root, _ := exec.Command(goBin, "env", "GOROOT").Output()
	version, _ := exec.Command(goBin, "version").Output()
	if v.GoVersion != strings.TrimSpace(string(version)) || v.GOROOT != strings.TrimSpace(string(root)) || v.GOPATH == "" {
		t.Errorf("verification = %+v, want go version %q", v, version)
	}
	if built, _ := filepath.Glob(filepath.Join(cache, "??", "*")); len(built) > 0 {
		t.Errorf("the default checks wrote %d build cache entries: they must build nothing", len(built))
	}

	// A go command whose compiler does not run fails the checks.
	broken := filepath.Join(t.TempDir(), "go")
	script := "#!/bin/sh\n[ \"$1\" = tool ] && [ \"$2\" = compile ] && exit 1\nexec " + goBin + " \"$@\"\n"
	if err := os.WriteFile(broken, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("bash", "-c", verifyGoScript, "kiln", broken).CombinedOutput(); err == nil {
		t.Errorf("verify-go.sh passed a go command whose compiler fails: %s", out)
	}
}

func TestParseVerification(t *testing.T) {
	const good = "go1.24.4\nlinux\namd64\n/usr/local/go/1.24.4\n/home/debian/go\ncompile version go1.24.4\n"
	v, err := parseVerification(good)
	want := Verification{GoVersion: "go version go1.24.4 linux/amd64", GOROOT: "/usr/local/go/1.24.4", GOPATH: "/home/debian/go"}
	if err != nil || !reflect.DeepEqual(v, want) {
		t.Errorf("parseVerification = %+v, %v; want %+v", v, err, want)
	}
	for name, out := range map[string]string{
		"nothing":          "",
		"no compiler":      "go1.24.4\nlinux\namd64\n/usr/local/go\n/home/debian/go\n",
		"another compiler": strings.Replace(good, "compile version go1.24.4", "compile version go1.23.10", 1),
		"compiler fails":   strings.Replace(good, "compile version go1.24.4", "bash: compile: not found", 1),
		"no release":       strings.Replace(good, "go1.24.4\n", "\n", 1),
	} {
		if _, err := parseVerification(out); err == nil {
			t.Errorf("%s: parseVerification(%q) accepted it", name, out)
		}
	}
}

// The build stamp reads back through scripts/facts.sh, and counts only for
// the archive the toolchain was installed from, while bin/go is intact.
func TestBuildStamp(t *testing.T) {
	root := t.TempDir()
	archive := strings.Repeat("1", 64)
	goBin := layToolchain(t, root, "1.24.4", archive, strings.Repeat("a", 64))
	toolchain := func() Toolchain { t.Helper(); return parseFacts(runFactsScript(t, root, "")).Toolchains["1.24.4"] }
	if tc := toolchain(); !tc.Intact() || tc.BuildVerified() {
		t.Fatalf("unstamped toolchain = %+v: want intact, not build-verified", tc)
	}

	stamp := filepath.Join(root, "1.24.4", buildStampName)
	if err := os.WriteFile(stamp, []byte(archive+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if tc := toolchain(); !tc.BuildVerified() || tc.BuiltArchiveSHA256 != archive {
		t.Errorf("stamped toolchain = %+v: want build-verified", tc)
	}
	if err := os.WriteFile(stamp, []byte(strings.Repeat("2", 64)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if tc := toolchain(); tc.BuildVerified() {
		t.Error("a stamp for another archive counts")
	}
	if err := os.WriteFile(stamp, []byte(archive+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(goBin, []byte("tampered"), 0o755); err != nil {
		t.Fatal(err)
	}
	if tc := toolchain(); tc.BuildVerified() {
		t.Error("a stamp counts for a toolchain whose bin/go changed")
	}
}
