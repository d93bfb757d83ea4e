package hostprep

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/kilnhq/terraform-provider-kiln/internal/gotool"
)

// scripts/tools.sh and facts.sh run here, in this machine's bash: a binary is
// installed only when it hashes as announced, read back intact until it is
// replaced, never put over a file Kiln did not install, and removed only when
// no other resource holds it and it is still the one Kiln installed.
func TestToolsScript(t *testing.T) {
	root, bin := t.TempDir(), t.TempDir()
	tools := func(stdin, owner, action string, args ...string) (string, error) {
		t.Helper()
		cmd := exec.Command("bash", append([]string{"-c", toolsScript, "kiln", root, owner, action}, args...)...)
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	install := func(owner, name, content, ref string) (string, error) {
		sum := sha256.Sum256([]byte(content))
		return tools(content, owner, "install", filepath.Join(bin, name), strconv.Itoa(len(content)), hex.EncodeToString(sum[:]), ref)
	}
	exists := func(name string) bool {
		_, err := os.Stat(filepath.Join(bin, name))
		return err == nil
	}
	toolFacts := func() map[string]InstalledTool {
		out := map[string]InstalledTool{}
		for _, tool := range parseFacts(runFactsScript(t, root, "")).Tools {
			out[tool.Owner+" "+filepath.Base(tool.Path)] = tool
		}
		return out
	}

	if out, err := install("a", "dlv", "dlv one", "example.com/dlv@v1.0.0"); err != nil {
		t.Fatalf("install: %v\n%s", err, out)
	}
	if out, err := install("b", "dlv", "dlv one", "example.com/dlv@v1.0.0"); err != nil {
		t.Fatalf("install of the same tool by a second resource: %v\n%s", err, out)
	}
	if out, err := install("a", "vet", "vet one", "example.com/vet@v1.0.0"); err != nil {
		t.Fatalf("install: %v\n%s", err, out)
	}
	if info, err := os.Stat(filepath.Join(bin, "dlv")); err != nil || info.Mode().Perm() != 0o755 {
		t.Fatalf("dlv: %v %v", info, err)
	}
	f := toolFacts()
	if got := f["a dlv"]; !got.Intact() || got.Ref != "example.com/dlv@v1.0.0" || len(f) != 3 {
		t.Fatalf("tools read back as %+v", f)
	}

	// A file Kiln did not install is never overwritten; a wrong hash installs nothing.
	if err := os.WriteFile(filepath.Join(bin, "gopls"), []byte("mine"), 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := install("a", "gopls", "gopls one", "example.com/gopls@v1.0.0"); err == nil || !strings.Contains(out, "Kiln did not install it") {
		t.Errorf("install over a file Kiln did not install: %v\n%s", err, out)
	}
	if out, err := tools("short", "a", "install", filepath.Join(bin, "new"), "5", strings.Repeat("0", 64), "example.com/new@v1.0.0"); err == nil || exists("new") {
		t.Errorf("install with a wrong hash: %v\n%s", err, out)
	}

	// Replaced by hand: read back as changed, and kept when a lets it go.
	if err := os.WriteFile(filepath.Join(bin, "vet"), []byte("someone else's vet"), 0o755); err != nil {
		t.Fatal(err)
	}
	if got := toolFacts()["a vet"]; got.Intact() || got.SHA256 == "" {
		t.Errorf("a replaced vet read back as %+v", got)
	}
	// a drops both: dlv stays while b holds it, vet stays as it is not Kiln's any more.
	if out, err := tools("", "a", "settle"); err != nil {
		t.Fatalf("settle: %v\n%s", err, out)
	}
	if !exists("dlv") || !exists("vet") || !exists("gopls") {
		t.Errorf("a's settle removed what it must not")
	}
	if out, err := tools("", "b", "release"); err != nil {
		t.Fatalf("release: %v\n%s", err, out)
	}
	if exists("dlv") || !exists("gopls") {
		t.Errorf("b's release: dlv left %v, gopls removed %v", exists("dlv"), !exists("gopls"))
	}
	if f := toolFacts(); len(f) != 0 {
		t.Errorf("records left: %+v", f)
	}
	if _, err := os.Stat(filepath.Join(root, ".kiln-tools")); !os.IsNotExist(err) {
		t.Errorf(".kiln-tools left behind: %v", err)
	}
}

func TestToolsObserved(t *testing.T) {
	spec := Spec{Root: DefaultRoot, Owner: "a", Tools: []gotool.Tool{{Package: "example.com/cmd/dlv", Version: "v1.0.0"}, {Package: "example.com/cmd/vet", Version: "v1.0.0"}}}
	f := Facts{Tools: []InstalledTool{
		{Owner: "a", Path: "/usr/local/bin/dlv", Ref: "example.com/cmd/dlv@v1.0.0", InstalledSHA256: "x", SHA256: "x"},
		{Owner: "a", Path: "/usr/local/bin/vet", Ref: "example.com/cmd/vet@v1.0.0", InstalledSHA256: "x", SHA256: "y"},
		{Owner: "a", Path: "/usr/local/bin/old", Ref: "example.com/cmd/old@v1.0.0", InstalledSHA256: "x", SHA256: "x"},
	}}
	if o := f.Observed(spec); len(o.Tools) != 1 || o.Tools[0].Name() != "dlv" {
		t.Errorf("observed tools %v, want dlv only (vet was replaced)", o.Tools)
	}
	if step, stale := settleTools(spec, f); !stale || strings.Join(step.args, " ") != "/usr/local/go a settle /usr/local/bin/dlv /usr/local/bin/vet" {
		t.Errorf("settle %v %v", step.args, stale)
	}
}
