package image

import (
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/kilnhq/terraform-provider-kiln/internal/hostprep"
	"github.com/kilnhq/terraform-provider-kiln/internal/testenv"
)

// The generalize script parses in bash, passes shellcheck where this machine
// has it, and is embedded.
func TestScripts(t *testing.T) { testenv.CheckScripts(t, "scripts", "scripts.go") }

func sampleInputs() Inputs {
	return Inputs{
		Base: "volume:/var/lib/libvirt/images/debian12.qcow2|2147483648",
		Toolchains: []Toolchain{
			{Version: "1.24.4", ArchiveSHA256: strings.Repeat("a", 64), GoBinarySHA256: strings.Repeat("b", 64)},
			{Version: "1.23.10", ArchiveSHA256: strings.Repeat("c", 64), GoBinarySHA256: strings.Repeat("d", 64)},
		},
		Extra:      map[string]string{"hardening": `{"swap_off":true}`, "team": "platform"},
		Generalize: DefaultGeneralize(),
	}
}

func TestFingerprintIgnoresOrder(t *testing.T) {
	a := sampleInputs()
	b := sampleInputs()
	slices.Reverse(b.Toolchains)
	if Fingerprint(a) != Fingerprint(b) {
		t.Fatal("the order of toolchains changed the fingerprint")
	}
	if got := Fingerprint(a); len(got) != 64 || got != Fingerprint(sampleInputs()) {
		t.Fatalf("fingerprint %q is not a stable SHA-256", got)
	}
}

func TestFingerprintChangesWithEachInput(t *testing.T) {
	base := Fingerprint(sampleInputs())
	for name, change := range map[string]func(*Inputs){
		"base image":     func(in *Inputs) { in.Base += "x" },
		"go version":     func(in *Inputs) { in.Toolchains[0].Version = "1.24.5" },
		"archive digest": func(in *Inputs) { in.Toolchains[1].ArchiveSHA256 = strings.Repeat("e", 64) },
		"toolchain gone": func(in *Inputs) { in.Toolchains = in.Toolchains[:1] },
		"extra input":    func(in *Inputs) { in.Extra["hardening"] = `{"swap_off":false}` },
		"generalize":     func(in *Inputs) { in.Generalize.Fstrim = false },
	} {
		in := sampleInputs()
		change(&in)
		if Fingerprint(in) == base {
			t.Errorf("changing the %s left the fingerprint as it was", name)
		}
	}
}

func TestNames(t *testing.T) {
	fp := Fingerprint(sampleInputs())
	if got, want := VolumeName("go-builder", fp), "go-builder-"+fp[:12]+".qcow2"; got != want {
		t.Fatalf("VolumeName = %q, want %q", got, want)
	}
}

func TestGeneralizeArgs(t *testing.T) {
	if got := DefaultGeneralize().scriptArgs(); !slices.Equal(got, []string{"true", "true", "true", "true", "true", "true"}) {
		t.Fatalf("default args = %v", got)
	}
	g := DefaultGeneralize()
	g.MachineID, g.Fstrim = false, false
	if got := g.scriptArgs(); !slices.Equal(got, []string{"true", "true", "false", "true", "true", "false"}) {
		t.Fatalf("args = %v", got)
	}
}

// The script refuses to run without its six arguments rather than taking an
// unset one as false.
func TestGeneralizeScriptNeedsItsArguments(t *testing.T) {
	out, err := exec.Command("bash", "-c", generalizeScript, "kiln", "true", "true").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "unbound variable") {
		t.Fatalf("script with two arguments: err %v, output %q", err, out)
	}
}

// Users' SSH directories are never removed: virt-sysprep's habit of doing so
// breaks logins on the clones.
func TestGeneralizeScriptKeepsUsersSSH(t *testing.T) {
	for _, line := range strings.Split(generalizeScript, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		if strings.Contains(line, ".ssh") {
			t.Errorf("the script touches a user's .ssh: %q", line)
		}
	}
}

func TestManifestOf(t *testing.T) {
	in := sampleInputs()
	spec := Spec{Name: "go", Fingerprint: Fingerprint(in), Toolchains: in.Toolchains[:1]}
	tc := hostprep.Toolchain{Version: "1.24.4", ArchiveSHA256: strings.Repeat("a", 64),
		InstalledGoSHA256: strings.Repeat("f", 64), GoSHA256: strings.Repeat("f", 64)}
	facts := hostprep.Facts{OS: "Debian GNU/Linux 12 (bookworm)", Kernel: "6.1.0-40-amd64", Toolchains: map[string]hostprep.Toolchain{"1.24.4": tc}}
	m, err := manifestOf(spec, facts)
	if err != nil {
		t.Fatal(err)
	}
	if m.Name != "go-"+spec.Fingerprint[:12] || m.OS != facts.OS || len(m.Toolchains) != 1 || m.Toolchains[0].GoBinarySHA256 != tc.GoSHA256 {
		t.Fatalf("manifest = %+v", m)
	}

	changed := tc
	changed.GoSHA256 = strings.Repeat("0", 64)
	otherArchive := tc
	otherArchive.ArchiveSHA256 = strings.Repeat("9", 64)
	for name, host := range map[string]map[string]hostprep.Toolchain{
		"missing":       {},
		"bin/go":        {"1.24.4": changed},
		"other archive": {"1.24.4": otherArchive},
	} {
		facts.Toolchains = host
		if _, err := manifestOf(spec, facts); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
