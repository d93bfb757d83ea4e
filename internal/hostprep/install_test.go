package hostprep

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
)

// scripts/install.sh runs here, in this machine's bash, on a streamed archive:
// what it installs reads back through scripts/facts.sh as an intact
// toolchain, and an archive the sender refuses leaves nothing behind.
func TestInstallScriptStreamed(t *testing.T) {
	archive := releaseTarball(t, "go1.24.4")
	sum := sha256.Sum256(archive)
	install := func(root, version string) error {
		sealed := sealArchive(bytes.NewReader(archive), version)
		defer sealed.stop()
		cmd := exec.Command("bash", "-c", installScript, "kiln", root, version, hex.EncodeToString(sum[:]),
			"GOPROXY=off\n", markerName, "stream", strconv.Itoa(len(archive)))
		cmd.Stdin = sealed
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Logf("install.sh: %s", out)
		}
		return err
	}

	root := t.TempDir()
	if err := install(root, "1.24.4"); err != nil {
		t.Fatal(err)
	}
	tc := parseFacts(runFactsScript(t, root, "")).Toolchains["1.24.4"]
	if !tc.Intact() || tc.ArchiveSHA256 != hex.EncodeToString(sum[:]) || tc.Env["GOPROXY"] != "off" {
		t.Errorf("installed toolchain reads back as %+v", tc)
	}

	if err := install(root, "1.23.10"); err == nil {
		t.Fatal("an archive holding another version was installed")
	}
	left, _ := filepath.Glob(filepath.Join(root, "*1.23.10*"))
	if len(left) > 0 {
		t.Errorf("a refused archive left %v", left)
	}
	if _, err := os.Stat(filepath.Join(root, "1.24.4", "bin", "go")); err != nil {
		t.Errorf("the installed toolchain went: %v", err)
	}
}
