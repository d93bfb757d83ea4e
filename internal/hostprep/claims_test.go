package hostprep

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
)

// scripts/claims.sh runs here, in this machine's bash: two resources share a
// root, and each removes only toolchains it held that the other does not;
// toolchains without Kiln's marker are never removed.
func TestClaimsScript(t *testing.T) {
	root := t.TempDir()
	for _, v := range []string{"1.24.4", "1.23.10", "1.22.12", "1.21.13"} {
		if err := os.MkdirAll(filepath.Join(root, v), 0o755); err != nil {
			t.Fatal(err)
		}
		if v != "1.21.13" { // installed by hand
			if err := os.WriteFile(filepath.Join(root, v, markerName), []byte("archive=x\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	claims := func(owner, action string, versions ...string) {
		t.Helper()
		args := append([]string{"-c", claimsScript, "kiln", root, markerName, owner, action}, versions...)
		if out, err := exec.Command("bash", args...).CombinedOutput(); err != nil {
			t.Fatalf("claims.sh %s %s: %v\n%s", owner, action, err, out)
		}
	}
	present := func() []string {
		var got []string
		for _, v := range []string{"1.24.4", "1.23.10", "1.22.12", "1.21.13"} {
			if _, err := os.Stat(filepath.Join(root, v)); err == nil {
				got = append(got, v)
			}
		}
		return got
	}

	claims("a", "claim", "1.24.4", "1.23.10", "1.22.12", "1.21.13")
	claims("b", "claim", "1.24.4")
	claims("b", "claim", "1.22.12")
	if f := parseFacts(runFactsScript(t, root, "")); !slices.Equal(f.Claims["a"], []string{"1.21.13", "1.22.12", "1.23.10", "1.24.4"}) ||
		!slices.Equal(f.Claims["b"], []string{"1.22.12", "1.24.4"}) {
		t.Fatalf("claims read back as %v", f.Claims)
	}
	claims("a", "settle", "1.24.4")
	if got := present(); !slices.Equal(got, []string{"1.24.4", "1.22.12", "1.21.13"}) {
		t.Errorf("a let go of 1.23.10, 1.22.12 (b's too) and 1.21.13 (unmarked): left %v", got)
	}
	claims("b", "forget")
	claims("a", "release")
	if got := present(); !slices.Equal(got, []string{"1.22.12", "1.21.13"}) {
		t.Errorf("a released 1.24.4 after b forgot its claims: left %v", got)
	}
	if f := parseFacts(runFactsScript(t, root, "")); len(f.Claims) != 0 {
		t.Errorf("claims left: %v", f.Claims)
	}
}
