package hostprep

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Every host script parses in bash, passes shellcheck where this machine has
// it, and is embedded: a file under scripts/ that nothing runs is a mistake.
func TestScripts(t *testing.T) {
	files, err := filepath.Glob("scripts/*.sh")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scripts found: %v", err)
	}
	embedded, err := os.ReadFile("scripts.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if out, err := exec.Command("bash", "-n", f).CombinedOutput(); err != nil {
			t.Errorf("bash -n %s: %v\n%s", f, err, out)
		}
		if !strings.Contains(string(embedded), "//go:embed "+f+"\n") {
			t.Errorf("%s is not embedded in scripts.go", f)
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
