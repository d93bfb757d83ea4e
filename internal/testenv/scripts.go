package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// CheckScripts checks an engine's host scripts: every .sh file in dir parses
// in bash, passes shellcheck where this machine has it, and is embedded by
// embedFile (a file under dir that nothing runs is a mistake).
func CheckScripts(t *testing.T, dir, embedFile string) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.sh"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no scripts found: %v", err)
	}
	embedded, err := os.ReadFile(embedFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if out, err := exec.Command("bash", "-n", f).CombinedOutput(); err != nil {
			t.Errorf("bash -n %s: %v\n%s", f, err, out)
		}
		if !strings.Contains(string(embedded), "//go:embed "+filepath.ToSlash(f)+"\n") {
			t.Errorf("%s is not embedded in %s", f, embedFile)
		}
	}
	shellcheck, err := exec.LookPath("shellcheck")
	if err != nil {
		t.Log("shellcheck is not on PATH: scripts checked with bash -n only")
		return
	}
	if out, err := exec.Command(shellcheck, append([]string{"--shell=bash"}, files...)...).CombinedOutput(); err != nil {
		t.Errorf("shellcheck: %v\n%s", err, out)
	}
}
