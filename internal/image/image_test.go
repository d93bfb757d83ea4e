package image

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kilnhq/terraform-provider-kiln/internal/hostprep"
	"github.com/kilnhq/terraform-provider-kiln/internal/libvirt"
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
		"compression":    func(in *Inputs) { in.Compress = CompressZstd },
		"overlay":        func(in *Inputs) { in.Overlay = true },
	} {
		in := sampleInputs()
		change(&in)
		if Fingerprint(in) == base {
			t.Errorf("changing the %s left the fingerprint as it was", name)
		}
	}
}

// The libvirt options at their defaults leave the fingerprint as it was
// before they existed, so images baked then are not planned again.
func TestFingerprintKeepsImagesBakedBeforeLibvirtOptions(t *testing.T) {
	in := sampleInputs()
	type extra struct{ Key, Value string }
	before, err := json.Marshal(struct {
		Base       string
		Toolchains []Toolchain
		Extra      []extra
		Generalize Generalize
		Script     string
	}{in.Base, []Toolchain{in.Toolchains[1], in.Toolchains[0]},
		[]extra{{"hardening", in.Extra["hardening"]}, {"team", in.Extra["team"]}}, in.Generalize, ScriptVersion()})
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(before)
	want := hex.EncodeToString(sum[:])
	for _, compress := range []string{"", CompressNone} {
		in.Compress = compress
		if got := Fingerprint(in); got != want {
			t.Errorf("compress %q: fingerprint %s, want the earlier %s", compress, got, want)
		}
	}
}

func TestParseVolumeName(t *testing.T) {
	for volume, want := range map[string]string{
		"go-builder-3f2a9c81d04e.qcow2":     "go-builder",
		"go.v2-000000000000.qcow2":          "go.v2",
		"go-builder.qcow2":                  "",
		"go-builder-3F2A9C81D04E.qcow2":     "",
		"go-builder-3f2a9c81d04e.qcow2.bak": "",
		"vm-root.qcow2":                     "",
	} {
		got, ok := ParseVolumeName(volume)
		if got != want || ok != (want != "") {
			t.Errorf("%s: %q, %v; want %q", volume, got, ok, want)
		}
	}
}

// Destroy leaves an image in place while other Kiln images are overlays on
// it, force or not; other users hold it only without force.
func TestDeletable(t *testing.T) {
	const image = "go-3f2a9c81d04e.qcow2"
	thin := libvirt.VolumeRef{Pool: "images", Name: "thin-0123456789ab.qcow2"}
	vmRoot := libvirt.VolumeRef{Pool: "default", Name: "builder-root.qcow2"}
	for name, c := range map[string]struct {
		users libvirt.VolumeUsers
		force bool
		want  string // in the error; "" for none
	}{
		"unused":                   {libvirt.VolumeUsers{}, false, ""},
		"a VM's disk":              {libvirt.VolumeUsers{Overlays: []libvirt.VolumeRef{vmRoot}}, false, "in use by volume builder-root.qcow2"},
		"a VM's disk, forced":      {libvirt.VolumeUsers{Overlays: []libvirt.VolumeRef{vmRoot}}, true, ""},
		"a domain":                 {libvirt.VolumeUsers{Domains: []string{"builder"}}, false, "in use by domain builder"},
		"an image in another pool": {libvirt.VolumeUsers{Overlays: []libvirt.VolumeRef{vmRoot, thin}}, false, "base of the Kiln image volumes images/thin-0123456789ab.qcow2"},
		"an image, forced":         {libvirt.VolumeUsers{Overlays: []libvirt.VolumeRef{thin}}, true, "force_destroy does not break images"},
	} {
		err := deletable("default", image, c.users, c.force)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", name, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: error %v, want one saying %q", name, err, c.want)
		}
	}
}

// fakeHost records the scripts it is given instead of running them.
type fakeHost struct{ script, args []string }

func (h *fakeHost) Run(_ context.Context, _, script string, args ...string) (string, error) {
	h.script = append(h.script, script)
	h.args = append(h.args, args...)
	return "", nil
}

func TestCompressRunsTheScriptOnTheHost(t *testing.T) {
	h := &fakeHost{}
	if err := Compress(context.Background(), h, "/pool/go-3f2a9c81d04e.qcow2"); err != nil {
		t.Fatal(err)
	}
	if len(h.script) != 1 || h.script[0] != compressScript || !slices.Equal(h.args, []string{"/pool/go-3f2a9c81d04e.qcow2"}) {
		t.Fatalf("ran %d scripts with %q", len(h.script), h.args)
	}
	if !strings.Contains(compressScript, "compression_type=zstd") || !strings.Contains(compressScript, "compat=1.1") {
		t.Fatal("the script does not ask qemu-img for zstd clusters in a compat 1.1 image")
	}
}

// The script compresses an image in place, keeping its path, where this
// machine has qemu-img.
func TestCompressScript(t *testing.T) {
	if _, err := exec.LookPath("qemu-img"); err != nil {
		t.Skip("no qemu-img here")
	}
	path := filepath.Join(t.TempDir(), "go-3f2a9c81d04e.qcow2")
	if out, err := exec.Command("qemu-img", "create", "-f", "qcow2", "-o", "compat=0.10", path, "16M").CombinedOutput(); err != nil {
		t.Fatalf("qemu-img create: %v: %s", err, out)
	}
	if out, err := exec.Command("bash", "-c", compressScript, "kiln", path).CombinedOutput(); err != nil {
		t.Fatalf("script: %v: %s", err, out)
	}
	out, err := exec.Command("qemu-img", "info", "--output=json", path).Output()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), `"compression-type": "zstd"`) || !strings.Contains(string(out), `"compat": "1.1"`) {
		t.Fatalf("image after the script: %s", out)
	}
	if left, _ := filepath.Glob(path + ".*"); len(left) > 0 {
		t.Fatalf("left behind: %v", left)
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

// An existing volume under the image's name is adopted only with Kiln's record
// of this fingerprint and the recorded content; its content is hashed only
// once the record fits.
func TestAdoptable(t *testing.T) {
	const fp, volume = "3f2a9c81d04e0000", "go-3f2a9c81d04e.qcow2"
	record := func(fingerprint, sum string) []byte {
		doc, _ := json.Marshal(Record{Fingerprint: fingerprint, SHA256: sum, Manifest: Manifest{Name: "go-3f2a9c81d04e"}})
		return doc
	}
	for name, c := range map[string]struct {
		doc     []byte
		readErr error
		sum     string
		hashed  bool
		want    string // in the error; "" to adopt
	}{
		"match":           {record(fp, "ab"), nil, "ab", true, ""},
		"no record":       {nil, libvirt.ErrNotFound, "ab", false, "carries no Kiln record"},
		"unreadable":      {nil, errors.New("connection reset"), "ab", false, "connection reset"},
		"not a record":    {[]byte("hello"), nil, "ab", false, "not one Kiln wrote"},
		"empty record":    {[]byte("{}"), nil, "ab", false, "not one Kiln wrote"},
		"other image":     {record("0123", "ab"), nil, "ab", false, "fingerprint 0123"},
		"changed content": {record(fp, "ab"), nil, "cd", true, "changed since Kiln baked it"},
	} {
		hashed := false
		rec, err := adoptable("default", volume, fp, c.doc, c.readErr, func() (string, error) { hashed = true; return c.sum, nil })
		switch {
		case c.want == "" && (err != nil || rec.Manifest.Name != "go-3f2a9c81d04e"):
			t.Errorf("%s: %v, record %+v", name, err, rec)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), volume)):
			t.Errorf("%s: error %v, want one naming the volume and saying %q", name, err, c.want)
		}
		if hashed != c.hashed {
			t.Errorf("%s: hashed %v, want %v", name, hashed, c.hashed)
		}
	}
}

// The image volume is deleted only for the owner Kiln's record names: a
// replacement that adopted it (create_before_destroy) wrote its own, and the
// instance it replaced leaves the volume. Without an owner on either side
// (baked before owners) it is deleted as before; without a record Kiln
// wrote, nothing can have adopted it.
func TestOwned(t *testing.T) {
	const volume = "go-3f2a9c81d04e.qcow2"
	record := func(owner string) []byte {
		doc, _ := json.Marshal(Record{Fingerprint: "3f2a9c81d04e0000", SHA256: "ab", Owner: owner})
		return doc
	}
	for name, c := range map[string]struct {
		owner   string
		doc     []byte
		readErr error
		mine    bool
		want    string // in the error; "" for none
	}{
		"this owner":                {"n1", record("n1"), nil, true, ""},
		"adopted by a replacement":  {"n1", record("n2"), nil, false, ""},
		"baked before owners":       {"", record(""), nil, true, ""},
		"old state, adopted since":  {"", record("n2"), nil, false, ""},
		"owner, record without one": {"n1", record(""), nil, false, ""},
		"no record":                 {"n1", nil, libvirt.ErrNotFound, true, ""},
		"not a record":              {"n1", []byte("hello"), nil, true, ""},
		"empty record":              {"n1", []byte(`{"owner":"n2"}`), nil, true, ""},
		"record unreadable":         {"n1", nil, errors.New("connection reset"), false, "connection reset"},
	} {
		mine, err := owned("default", volume, c.owner, c.doc, c.readErr)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", name, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), volume)):
			t.Errorf("%s: error %v, want one naming the volume and saying %q", name, err, c.want)
		case mine != c.mine:
			t.Errorf("%s: owned %v, want %v", name, mine, c.mine)
		}
	}
}

// baseInputs are an image's inputs baked from a base volume.
func baseInputs() Inputs {
	return Inputs{
		Base: "volume:/var/lib/libvirt/images/debian12.qcow2|2147483648",
		Provision: &Provision{
			Archives: map[string]string{"1.24.4": "sha256:" + strings.Repeat("a", 64), "1.23.10": "h1:abc="},
			Host: hostprep.Spec{Root: hostprep.DefaultRoot, Versions: []string{"1.24.4", "1.23.10"}, Default: "1.24.4",
				SwapOff: true, NoFile: 65536, CgroupV2: "verify"},
		},
		Generalize: DefaultGeneralize(),
	}
}

// Whatever goes into the provisioning makes another image: a Go version, the
// archive it comes from, the default, the hardening; and it differs from an
// image of the same base with no provisioning.
func TestFingerprintCoversTheProvisioning(t *testing.T) {
	base := Fingerprint(baseInputs())
	if base != Fingerprint(baseInputs()) {
		t.Fatal("the fingerprint of a provisioned base is not stable")
	}
	for name, change := range map[string]func(*Inputs){
		"go version": func(in *Inputs) {
			in.Provision.Host.Versions[1] = "1.23.11"
			in.Provision.Archives = map[string]string{"1.24.4": in.Provision.Archives["1.24.4"], "1.23.11": "h1:abc="}
		},
		"archive":          func(in *Inputs) { in.Provision.Archives["1.24.4"] = "sha256:" + strings.Repeat("e", 64) },
		"default":          func(in *Inputs) { in.Provision.Host.Default = "1.23.10" },
		"swap":             func(in *Inputs) { in.Provision.Host.SwapOff = false },
		"limits":           func(in *Inputs) { in.Provision.Host.NoFile = 4096 },
		"sysctls":          func(in *Inputs) { in.Provision.Host.Sysctls = map[string]string{"vm.swappiness": "0"} },
		"cgroup v2":        func(in *Inputs) { in.Provision.Host.CgroupV2 = "enable" },
		"base volume":      func(in *Inputs) { in.Base += "x" },
		"generalize":       func(in *Inputs) { in.Generalize.Logs = false },
		"no provisioning":  func(in *Inputs) { in.Provision = nil },
		"toolchain root":   func(in *Inputs) { in.Provision.Host.Root = "/opt/go" },
		"compression":      func(in *Inputs) { in.Compress = CompressZstd },
		"inputs map entry": func(in *Inputs) { in.Extra = map[string]string{"team": "platform"} },
	} {
		in := baseInputs()
		change(&in)
		if Fingerprint(in) == base {
			t.Errorf("changing the %s left the fingerprint as it was", name)
		}
	}
}

// The transient VM is named from the image, apart from its volumes' names.
func TestTransientVMName(t *testing.T) {
	fp := Fingerprint(baseInputs())
	name := TransientVMName("go-builder", fp)
	if name != "go-builder-"+fp[:12]+"-bake" {
		t.Fatalf("TransientVMName = %q", name)
	}
	if _, ok := ParseVolumeName(name + "-root.qcow2"); ok {
		t.Errorf("the transient VM's root volume %s-root.qcow2 reads as an image volume", name)
	}
}

// After provisioning, each declared version must be on the host intact; the
// image records its archive and bin/go as installed.
func TestProvisioned(t *testing.T) {
	tc := hostprep.Toolchain{Version: "1.24.4", ArchiveSHA256: strings.Repeat("a", 64),
		InstalledGoSHA256: strings.Repeat("f", 64), GoSHA256: strings.Repeat("f", 64)}
	facts := hostprep.Facts{Toolchains: map[string]hostprep.Toolchain{"1.24.4": tc}}
	got, err := provisioned([]string{"1.24.4"}, facts)
	want := []Toolchain{{Version: "1.24.4", ArchiveSHA256: tc.ArchiveSHA256, GoBinarySHA256: tc.GoSHA256}}
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("provisioned = %+v, %v; want %+v", got, err, want)
	}
	if _, err := provisioned([]string{"1.24.4", "1.23.10"}, facts); err == nil {
		t.Error("a version missing after provisioning was accepted")
	}
	tc.GoSHA256 = strings.Repeat("0", 64)
	facts.Toolchains["1.24.4"] = tc
	if _, err := provisioned([]string{"1.24.4"}, facts); err == nil {
		t.Error("a changed bin/go was accepted")
	}
}

// A domain under the transient VM's name is removed only when it carries the
// mark of a bake of this very image; anything else fails the bake, untouched.
func TestLeftover(t *testing.T) {
	const name, volume = "go-0123456789ab-bake", "go-0123456789ab.qcow2"
	for what, c := range map[string]struct {
		vm      libvirt.VM
		readErr error
		remove  bool
		fails   bool
	}{
		"no domain":             {readErr: fmt.Errorf("domain %q: %w", name, libvirt.ErrNotFound)},
		"this image's bake":     {vm: libvirt.VM{Name: name, BakeOf: volume}, remove: true},
		"another image's bake":  {vm: libvirt.VM{Name: name, BakeOf: "go-ba9876543210.qcow2"}, fails: true},
		"a domain Kiln did not": {vm: libvirt.VM{Name: name}, fails: true},
		"libvirt unreachable":   {readErr: errors.New("connection refused"), fails: true},
	} {
		remove, err := leftover(name, volume, c.vm, c.readErr)
		if remove != c.remove || (err != nil) != c.fails {
			t.Errorf("%s: remove %v, error %v; want remove %v, failing %v", what, remove, err, c.remove, c.fails)
		}
	}
}
