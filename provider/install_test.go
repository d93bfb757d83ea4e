package provider

import (
	"archive/zip"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsimple"
	"github.com/hashicorp/terraform-plugin-testing/helper/acctest"

	"github.com/kilnhq/terraform-provider-kiln/internal/testenv"
)

// TestAccInstall installs the provider as users get it, not through the in-process
// server the other tests use: from a snapshot release (make release-snapshot-host,
// which make testacc-* build first and name in KILN_RELEASE_DIST), checked as a
// registry would check it, laid out as a filesystem mirror, and installed by the
// CLI's init under a version constraint, with no dev_overrides. The installed
// provider then creates and destroys a vSphere VM on the simulator. Last, a zip
// whose binary was changed is refused by init against the lock file.
func TestAccInstall(t *testing.T) {
	testAccPreCheck(t)
	rel := releaseSnapshot(t)
	cli := os.Getenv("TF_ACC_TERRAFORM_PATH")
	if cli == "" {
		t.Fatal("TF_ACC_TERRAFORM_PATH: the Terraform or OpenTofu CLI to install with (make testacc-terraform or testacc-tofu set it)")
	}
	// OpenTofu reads a source without a host, such as "kilnhq/kiln", as
	// registry.opentofu.org; the OpenTofu lane says so in TF_ACC_PROVIDER_HOST.
	host := os.Getenv("TF_ACC_PROVIDER_HOST")
	if host == "" {
		host = "registry.terraform.io"
	}
	addr := host + "/kilnhq/kiln"
	major, minor, _ := strings.Cut(rel.version, ".")
	minor, _, _ = strings.Cut(minor, ".")
	constraint := "~> " + major + "." + minor

	bed := testenv.Vsphere(t)
	name := acctest.RandomWithPrefix("kiln-install")
	config := fmt.Sprintf(`
terraform {
  required_providers {
    kiln = {
      source  = "kilnhq/kiln"
      version = %q
    }
  }
}
`, constraint) + vsphereVMConfig{bed: bed, name: name, numCPUs: 2, memoryMiB: 1024, diskGiB: 12}.String()

	// The mirror as terraform providers mirror lays it out: the release's zip,
	// under its release name, in the provider's directory.
	work := newInstallDir(t, cli, config, mirrorOf(t, addr, rel.zipName, rel.zip))

	out := work.run(t, "init", "-input=false", "-no-color")
	if !strings.Contains(out, "Installing kilnhq/kiln v"+rel.version) {
		t.Errorf("init did not report installing kilnhq/kiln v%s:\n%s", rel.version, out)
	}
	lock := readLock(t, filepath.Join(work.dir, ".terraform.lock.hcl"), addr)
	if lock.Version != rel.version || lock.Constraints != constraint {
		t.Errorf("lock file records %s %q, want %s %q", addr, lock.Version+" "+lock.Constraints, rel.version, constraint)
	}
	if zh := "zh:" + rel.zipSHA256; !slices.Contains(lock.Hashes, zh) {
		t.Errorf("lock file hashes %q lack the zip's %s", lock.Hashes, zh)
	}
	installed := filepath.Join(work.dir, ".terraform", "providers", addr, rel.version, runtime.GOOS+"_"+runtime.GOARCH, rel.binaryName)
	if got := fileSHA256(t, installed); got != rel.binarySHA256 {
		t.Errorf("installed %s has SHA-256 %s, want the zip's binary's %s", installed, got, rel.binarySHA256)
	}

	work.run(t, "apply", "-auto-approve", "-input=false", "-no-color")
	if err := checkVsphereVM(bed, "/DC0/vm/"+name, vmWant{poweredOn: true, cpus: 2, memoryMiB: 1024, diskGiB: 12, hostname: name})(nil); err != nil {
		t.Errorf("after apply: %v", err)
	}
	// The read-back agrees with the apply: nothing to change (exit code 0, not 2).
	work.run(t, "plan", "-detailed-exitcode", "-input=false", "-no-color")
	work.run(t, "destroy", "-auto-approve", "-input=false", "-no-color")
	if err := checkVsphereVMGone(bed, name)(nil); err != nil {
		t.Errorf("after destroy: %v", err)
	}

	// The same configuration and lock file, and a mirror whose zip holds a changed
	// binary under the same name: init refuses it and installs nothing.
	tampered := newInstallDir(t, cli, config, mirrorOf(t, addr, rel.zipName, tamperedZip(t, rel.zip)))
	copyFile(t, filepath.Join(work.dir, ".terraform.lock.hcl"), filepath.Join(tampered.dir, ".terraform.lock.hcl"))
	out, err := tampered.try("init", "-input=false", "-no-color")
	if err == nil {
		t.Fatalf("init installed a zip the lock file's hashes do not match:\n%s", out)
	}
	if !regexp.MustCompile(`doesn't match any of the checksums\s+previously recorded in the dependency lock file`).MatchString(out) {
		t.Errorf("init failed, but not on the checksums:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(tampered.dir, ".terraform", "providers", addr, rel.version)); !os.IsNotExist(err) {
		t.Errorf("init left the refused provider installed (stat: %v)", err)
	}
}

// snapshot is a release snapshot's file for this machine's platform, checked.
type snapshot struct {
	version      string
	zipName      string
	zip          []byte
	zipSHA256    string
	binaryName   string
	binarySHA256 string
}

// releaseSnapshot reads the snapshot release in KILN_RELEASE_DIST and checks it
// as a registry would: SHA256SUMS signed by the release key and matching every file
// it lists, the files named by the registry convention, the manifest stating
// protocol 6, and this platform's zip holding the binary alone, which reports the
// release's version.
func releaseSnapshot(t *testing.T) snapshot {
	t.Helper()
	dist := os.Getenv("KILN_RELEASE_DIST")
	if dist == "" {
		t.Skip("install test: set KILN_RELEASE_DIST to the dist/ of a snapshot release (make release-snapshot-host builds one; make testacc-terraform and testacc-tofu build it and set it)")
	}
	var meta struct {
		Version string `json:"version"`
	}
	if err := json.Unmarshal(readFile(t, filepath.Join(dist, "metadata.json")), &meta); err != nil || meta.Version == "" {
		t.Fatalf("%s/metadata.json: no version (%v): is it a goreleaser dist directory? make release-snapshot-host builds one", dist, err)
	}
	v := meta.Version
	if !regexp.MustCompile(`^[0-9]+\.[0-9]+\.[0-9]+$`).MatchString(v) {
		t.Fatalf("snapshot version %q is not a release version: \"~> X.Y\" constraints would not select it", v)
	}
	prefix := "terraform-provider-kiln_" + v + "_"

	sumsName := prefix + "SHA256SUMS"
	sums := readFile(t, filepath.Join(dist, sumsName))
	keys, err := openpgp.ReadArmoredKeyRing(bytes.NewReader(readFile(t, filepath.Join(dist, "signing-key.asc"))))
	if err != nil {
		t.Fatalf("signing-key.asc: %v", err)
	}
	if _, err := openpgp.CheckDetachedSignature(keys, bytes.NewReader(sums), bytes.NewReader(readFile(t, filepath.Join(dist, sumsName+".sig"))), nil); err != nil {
		t.Fatalf("%s.sig does not verify: %v", sumsName, err)
	}

	listed := map[string]string{}
	scanner := bufio.NewScanner(bytes.NewReader(sums))
	for scanner.Scan() {
		sum, name, ok := strings.Cut(scanner.Text(), "  ")
		if !ok {
			t.Fatalf("%s: malformed line %q", sumsName, scanner.Text())
		}
		listed[name] = sum
		if got := fileSHA256(t, filepath.Join(dist, name)); got != sum {
			t.Errorf("%s lists %s with SHA-256 %s, the file has %s", sumsName, name, sum, got)
		}
	}
	zipPattern := regexp.MustCompile(`^` + regexp.QuoteMeta(prefix) + `(linux|darwin|windows|freebsd)_(amd64|arm64)\.zip$`)
	for name := range listed {
		if name != prefix+"manifest.json" && !zipPattern.MatchString(name) {
			t.Errorf("%s lists %s, which is neither a platform's zip nor the manifest", sumsName, name)
		}
	}

	var manifest struct {
		Version  int `json:"version"`
		Metadata struct {
			ProtocolVersions []string `json:"protocol_versions"`
		} `json:"metadata"`
	}
	if _, ok := listed[prefix+"manifest.json"]; !ok {
		t.Errorf("%s does not list the manifest", sumsName)
	} else if err := json.Unmarshal(readFile(t, filepath.Join(dist, prefix+"manifest.json")), &manifest); err != nil {
		t.Errorf("manifest: %v", err)
	} else if manifest.Version != 1 || !slices.Equal(manifest.Metadata.ProtocolVersions, []string{"6.0"}) {
		t.Errorf("manifest = %+v, want version 1 and protocol_versions [6.0]", manifest)
	}

	s := snapshot{version: v, zipName: prefix + runtime.GOOS + "_" + runtime.GOARCH + ".zip", binaryName: "terraform-provider-kiln_v" + v}
	if runtime.GOOS == "windows" {
		s.binaryName += ".exe"
	}
	var ok bool
	if s.zipSHA256, ok = listed[s.zipName]; !ok {
		t.Fatalf("%s does not list %s, this platform's zip", sumsName, s.zipName)
	}
	s.zip = readFile(t, filepath.Join(dist, s.zipName))
	zr, err := zip.NewReader(bytes.NewReader(s.zip), int64(len(s.zip)))
	if err != nil {
		t.Fatalf("%s: %v", s.zipName, err)
	}
	if len(zr.File) != 1 || zr.File[0].Name != s.binaryName {
		var names []string
		for _, f := range zr.File {
			names = append(names, f.Name)
		}
		t.Fatalf("%s holds %q, want the binary %s alone", s.zipName, names, s.binaryName)
	}
	binary := filepath.Join(t.TempDir(), s.binaryName)
	writeFile(t, binary, readZipFile(t, zr.File[0]), 0o755)
	s.binarySHA256 = fileSHA256(t, binary)
	out, err := exec.Command(binary, "-version").CombinedOutput()
	if want := "terraform-provider-kiln " + v + "\n"; err != nil || string(out) != want {
		t.Errorf("%s -version = %q (%v), want %q", s.binaryName, out, err, want)
	}
	return s
}

// mirrorOf lays out a filesystem mirror holding zip as name for the provider addr
// (host/namespace/type), the packed layout of terraform providers mirror.
func mirrorOf(t *testing.T, addr, name string, zip []byte) string {
	t.Helper()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, addr, name), zip, 0o644)
	return dir
}

// tamperedZip returns a zip like the given one whose binary has one byte more.
func tamperedZip(t *testing.T, orig []byte) []byte {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(orig), int64(len(orig)))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, f := range zr.File {
		w, err := zw.CreateHeader(&f.FileHeader)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(append(readZipFile(t, f), 0)); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// installDir is a working directory with a configuration, run by the CLI with a
// CLI configuration of its own that installs the provider from a filesystem mirror
// only: no dev_overrides, no registry, no plugin cache.
type installDir struct {
	cli, dir string
	env      []string
}

func newInstallDir(t *testing.T, cli, config, mirror string) installDir {
	t.Helper()
	d := installDir{cli: cli, dir: t.TempDir()}
	rc := filepath.Join(d.dir, "cli.tfrc")
	writeFile(t, rc, fmt.Appendf(nil, "provider_installation {\n  filesystem_mirror {\n    path = %q\n  }\n}\n", mirror), 0o644)
	writeFile(t, filepath.Join(d.dir, "main.tf"), []byte(config), 0o644)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "TF_") && !strings.HasPrefix(kv, "TOFU_") && !strings.HasPrefix(kv, "CHECKPOINT_") {
			d.env = append(d.env, kv)
		}
	}
	d.env = append(d.env, "TF_CLI_CONFIG_FILE="+rc, "TF_IN_AUTOMATION=1", "CHECKPOINT_DISABLE=1")
	return d
}

// try runs the CLI in the directory and returns its output.
func (d installDir) try(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, d.cli, args...)
	cmd.Dir, cmd.Env = d.dir, d.env
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// run runs the CLI in the directory, logs how long it took and fails the test if
// the CLI fails.
func (d installDir) run(t *testing.T, args ...string) string {
	t.Helper()
	start := time.Now()
	out, err := d.try(args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(d.cli), args[0], err, out)
	}
	t.Logf("%s %s: %s", filepath.Base(d.cli), args[0], time.Since(start).Round(10*time.Millisecond))
	return out
}

// lockedProvider is a provider block of a dependency lock file.
type lockedProvider struct {
	Source      string   `hcl:"source,label"`
	Version     string   `hcl:"version"`
	Constraints string   `hcl:"constraints,optional"`
	Hashes      []string `hcl:"hashes"`
}

// readLock returns the lock file's block for addr.
func readLock(t *testing.T, path, addr string) lockedProvider {
	t.Helper()
	var lock struct {
		Providers []lockedProvider `hcl:"provider,block"`
		Remain    hcl.Body         `hcl:",remain"`
	}
	if err := hclsimple.DecodeFile(path, nil, &lock); err != nil {
		t.Fatalf("lock file: %v", err)
	}
	for _, p := range lock.Providers {
		if p.Source == addr {
			return p
		}
	}
	t.Fatalf("lock file %s records no provider %s:\n%s", path, addr, readFile(t, path))
	return lockedProvider{}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writeFile(t *testing.T, path string, b []byte, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, mode); err != nil {
		t.Fatal(err)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	writeFile(t, to, readFile(t, from), 0o644)
}

func fileSHA256(t *testing.T, path string) string {
	t.Helper()
	sum := sha256.Sum256(readFile(t, path))
	return hex.EncodeToString(sum[:])
}

func readZipFile(t *testing.T, f *zip.File) []byte {
	t.Helper()
	r, err := f.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
