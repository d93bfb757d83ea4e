//go:build unix

package buildfarm

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

const calcTests = `package calc

import "testing"

func TestAdd(t *testing.T) {}

func TestBroken(t *testing.T) { t.Errorf("want 4, got %d", 5) }
`

// build.sh's test mode runs go test as the script, sends its standard output
// and exit status (a failing test is a result, not a failed run), and the log
// names the step.
func TestBuildScript_goTestJSON(t *testing.T) {
	goroot := localGoRoot(t)
	src := writeTree(t, map[string]string{"go.mod": "module example.com/calc\n\ngo 1.22\n", "calc_test.go": calcTests})
	r := runBuildScript(t, newWorkspace(t), 1, nil, src, 0, "0", goroot, "0", "test", DefaultTestScript, "1")
	if r.exit != 0 {
		t.Fatalf("exit %d:\n%s", r.exit, r.stderr)
	}
	files := resultFiles(t, r.stdout)
	if string(files["exit-status"]) != "1\n" || !strings.Contains(string(files["stdout"]), `"Test":"TestBroken"`) || len(files) != 2 {
		t.Errorf("results: exit-status %q, %d files:\n%s", files["exit-status"], len(files), files["stdout"])
	}
	if !strings.Contains(r.stderr, "kiln-step: test script\n") || !strings.Contains(r.stderr, "kiln-step: collect the reports\n") {
		t.Errorf("log:\n%s", r.stderr)
	}
	suites, err := goTestJSON(strings.NewReader(string(files["stdout"])), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if c, failed := summary(suites); c != (Counts{Total: 2, Passed: 1, Failed: 1}) || failed[0].Name != "example.com/calc.TestBroken" {
		t.Errorf("%+v %+v", c, failed)
	}
}

// A custom script's reports are sent under reports/ by their paths; patterns
// glob across directories and match nothing quietly; its standard output
// stays in the log; links are not followed out of the tree.
func TestBuildScript_reports(t *testing.T) {
	outside := filepath.Join(t.TempDir(), "secret.xml")
	if err := os.WriteFile(outside, []byte("<secret/>"), 0o600); err != nil {
		t.Fatal(err)
	}
	script := `mkdir -p "test-report/deep er" && echo '<testsuite/>' > test-report/a.xml && echo '<testsuite/>' > "test-report/deep er/b.xml"
echo written; ln -s "$OUTSIDE" test-report/link.xml; exit 3`
	r := runBuildScript(t, newWorkspace(t), 1, []string{"OUTSIDE=" + outside}, writeTree(t, map[string]string{"x": "y"}), 0,
		"0", "/nonexistent", "0", "test", script, "0", "test-report/**/*.xml", "none/*.xml")
	if r.exit != 0 {
		t.Fatalf("exit %d:\n%s", r.exit, r.stderr)
	}
	files := resultFiles(t, r.stdout)
	want := []string{"exit-status", "reports/test-report/a.xml", "reports/test-report/deep er/b.xml"}
	var got []string
	for name := range files {
		got = append(got, name)
	}
	if strings.Join(slices.Sorted(slices.Values(got)), "|") != strings.Join(want, "|") || string(files["exit-status"]) != "3\n" {
		t.Errorf("results %q, exit-status %q", got, files["exit-status"])
	}
	if !strings.Contains(r.stderr, "written") {
		t.Errorf("the script's output is not in the log:\n%s", r.stderr)
	}
}
