package provider

import (
	"archive/zip"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
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
	"golang.org/x/mod/sumdb/dirhash"

	"github.com/kilnhq/terraform-provider-kiln/internal/testenv"
)

// TestAccInstall installs the provider as users get it, not through the in-process
// server the other tests use: from a snapshot release (make release-snapshot-host,
// which make testacc-terraform and testacc-tofu build first and name in
// KILN_RELEASE_DIST), checked as a registry would check it, installed by the CLI's
// init under a version constraint with no dev_overrides: once from a registry (the
// registry protocol served on 127.0.0.1, the CLI verifying the signed SHA256SUMS),
// once from a filesystem mirror, as a company would serve it. The provider installed
// from the mirror creates and destroys a vSphere VM on the simulator. Last, a zip
// whose binary was changed is refused by init against the lock file.
func TestAccInstall(t *testing.T) {
	testAccPreCheck(t)
	dist := os.Getenv("KILN_RELEASE_DIST")
	rel := releaseSnapshot(t, dist)
	cli := os.Getenv("TF_ACC_TERRAFORM_PATH")
	if cli == "" {
		t.Fatal("TF_ACC_TERRAFORM_PATH: the Terraform or OpenTofu CLI to install with (make testacc-terraform or testacc-tofu set it)")
	}
	// OpenTofu reads a source without a host, such as "kilnhq/kiln", as
	// registry.opentofu.org; the OpenTofu processes say so in TF_ACC_PROVIDER_HOST.
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
	installed := filepath.Join(".terraform", "providers", addr, rel.version, runtime.GOOS+"_"+runtime.GOARCH, rel.binaryName)
	checkInstall := func(d installDir, wantHashes []string) {
		t.Helper()
		lock := readLock(t, filepath.Join(d.dir, ".terraform.lock.hcl"), addr)
		if lock.Version != rel.version || lock.Constraints != constraint {
			t.Errorf("lock file records %s %s %q, want %s %q", addr, lock.Version, lock.Constraints, rel.version, constraint)
		}
		for _, h := range wantHashes {
			if !slices.Contains(lock.Hashes, h) {
				t.Errorf("lock file hashes %q lack %s", lock.Hashes, h)
			}
		}
		if got := fileSHA256(t, filepath.Join(d.dir, installed)); got != rel.binarySHA256 {
			t.Errorf("installed %s has SHA-256 %s, want the zip's binary's %s", installed, got, rel.binarySHA256)
		}
	}

	// From the registry: the CLI checks SHA256SUMS against its signature and the
	// zip against SHA256SUMS, and records every platform's zh: (the zip's SHA-256)
	// from the signed list, and the h1: of this platform's zip's content.
	registryConfig, caFile := startProviderRegistry(t, dist, host, rel)
	fromRegistry := newInstallDir(t, cli, config, registryConfig, "SSL_CERT_FILE="+caFile)
	out := fromRegistry.run(t, "init", "-input=false", "-no-color")
	if !strings.Contains(out, "Installing kilnhq/kiln v"+rel.version) || !strings.Contains(out, "signed by") {
		t.Errorf("init did not report installing kilnhq/kiln v%s, signed:\n%s", rel.version, out)
	}
	want := []string{rel.zipH1}
	for _, p := range rel.platforms {
		want = append(want, "zh:"+rel.sums["terraform-provider-kiln_"+rel.version+"_"+p+".zip"])
	}
	checkInstall(fromRegistry, want)

	// From a company's filesystem mirror, laid out as terraform providers mirror
	// does (the release's zip under its name in the provider's directory): no
	// signature there; the CLI records the h1: of the zip it installed.
	fromMirror := newInstallDir(t, cli, config, mirrorConfig(mirrorOf(t, addr, rel.zipName, rel.zip)))
	out = fromMirror.run(t, "init", "-input=false", "-no-color")
	if !strings.Contains(out, "Installing kilnhq/kiln v"+rel.version) {
		t.Errorf("init did not report installing kilnhq/kiln v%s:\n%s", rel.version, out)
	}
	checkInstall(fromMirror, []string{rel.zipH1})

	fromMirror.run(t, "apply", "-auto-approve", "-input=false", "-no-color")
	if err := checkVsphereVM(bed, "/DC0/vm/"+name, vmWant{poweredOn: true, cpus: 2, memoryMiB: 1024, diskGiB: 12, hostname: name})(nil); err != nil {
		t.Errorf("after apply: %v", err)
	}
	// The read-back agrees with the apply: nothing to change (exit code 0, not 2).
	fromMirror.run(t, "plan", "-detailed-exitcode", "-input=false", "-no-color")
	fromMirror.run(t, "destroy", "-auto-approve", "-input=false", "-no-color")
	if err := checkVsphereVMGone(bed, name)(nil); err != nil {
		t.Errorf("after destroy: %v", err)
	}

	// The lock file the registry install wrote, committed, and a mirror whose zip
	// holds a changed binary under the release's name: init refuses it and
	// installs nothing.
	tampered := newInstallDir(t, cli, config, mirrorConfig(mirrorOf(t, addr, rel.zipName, tamperedZip(t, rel.zip))))
	copyFile(t, filepath.Join(fromRegistry.dir, ".terraform.lock.hcl"), filepath.Join(tampered.dir, ".terraform.lock.hcl"))
	out, err := tampered.try("init", "-input=false", "-no-color")
	if err == nil {
		t.Fatalf("init installed a zip the lock file's hashes do not match:\n%s", out)
	}
	if !regexp.MustCompile(`doesn't match any of the checksums\s+previously recorded in the dependency lock file`).MatchString(out) {
		t.Errorf("init failed, but not on the checksums:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(tampered.dir, installed)); !os.IsNotExist(err) {
		var files []string
		_ = filepath.WalkDir(filepath.Join(tampered.dir, ".terraform"), func(path string, d os.DirEntry, _ error) error {
			if info, err := d.Info(); err == nil {
				files = append(files, fmt.Sprintf("%s %d", path, info.Size()))
			}
			return nil
		})
		t.Errorf("init left the refused provider installed (stat: %v):\n%s", err, strings.Join(files, "\n"))
	}
}

// snapshot is a release snapshot's file for this machine's platform, checked.
type snapshot struct {
	version      string
	zipName      string
	zip          []byte
	zipSHA256    string
	zipH1        string // the zip's content hash as lock files record it
	binaryName   string
	binarySHA256 string
	// sums is SHA256SUMS by file name; platforms are those it has a zip for.
	sums      map[string]string
	platforms []string
	// keyArmor is the signing key's public key, keyID its long ID.
	keyArmor []byte
	keyID    string
}

// releaseSnapshot reads the snapshot release in KILN_RELEASE_DIST and checks it
// as a registry would: SHA256SUMS signed by the release key and matching every file
// it lists, the files named by the registry convention, the manifest stating
// protocol 6, and this platform's zip holding the binary alone, which reports the
// release's version.
func releaseSnapshot(t *testing.T, dist string) snapshot {
	t.Helper()
	if dist == "" {
		t.Skip("install test: set KILN_RELEASE_DIST to the dist/ of a snapshot release (make release-snapshot-host builds one; make testacc-terraform and testacc-tofu build it and set it)")
	}
	if _, err := os.Stat(filepath.Join(dist, ".snapshot")); err != nil {
		t.Fatalf("%s holds no finished snapshot release (%v): make release-snapshot-host builds one", dist, err)
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
	keyArmor := readFile(t, filepath.Join(dist, "signing-key.asc"))
	keys, err := openpgp.ReadArmoredKeyRing(bytes.NewReader(keyArmor))
	if err != nil || len(keys) != 1 {
		t.Fatalf("signing-key.asc: %d keys (%v), want one", len(keys), err)
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
	zipPattern := regexp.MustCompile(`^` + regexp.QuoteMeta(prefix) + `((linux|darwin|windows|freebsd)_(amd64|arm64))\.zip$`)
	var platforms []string
	for name := range listed {
		if m := zipPattern.FindStringSubmatch(name); m != nil {
			platforms = append(platforms, m[1])
		} else if name != prefix+"manifest.json" {
			t.Errorf("%s lists %s, which is neither a platform's zip nor the manifest", sumsName, name)
		}
	}
	slices.Sort(platforms)
	t.Logf("snapshot %s: zips for %s", v, strings.Join(platforms, ", "))

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

	s := snapshot{
		version: v, zipName: prefix + runtime.GOOS + "_" + runtime.GOARCH + ".zip", binaryName: "terraform-provider-kiln_v" + v,
		sums: listed, platforms: platforms, keyArmor: keyArmor, keyID: keys[0].PrimaryKey.KeyIdString(),
	}
	if runtime.GOOS == "windows" {
		s.binaryName += ".exe"
	}
	var ok bool
	if s.zipSHA256, ok = listed[s.zipName]; !ok {
		t.Fatalf("%s does not list %s, this platform's zip", sumsName, s.zipName)
	}
	s.zip = readFile(t, filepath.Join(dist, s.zipName))
	if s.zipH1, err = dirhash.HashZip(filepath.Join(dist, s.zipName), dirhash.Hash1); err != nil {
		t.Fatalf("%s: %v", s.zipName, err)
	}
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

// startProviderRegistry serves the snapshot in dist over the provider registry protocol, on
// 127.0.0.1 over HTTPS, as a registry serves a release: the versions, and for each
// platform the zip, SHA256SUMS, its signature and the signing key. It returns a CLI
// configuration that sends the CLI there for host (the CLI's host blocks replace
// service discovery) and the server's certificate, a PEM file for SSL_CERT_FILE.
func startProviderRegistry(t *testing.T, dist, host string, rel snapshot) (cliConfig, caFile string) {
	t.Helper()
	prefix := "terraform-provider-kiln_" + rel.version + "_"
	var platforms []map[string]string
	for _, p := range rel.platforms {
		goos, goarch, _ := strings.Cut(p, "_")
		platforms = append(platforms, map[string]string{"os": goos, "arch": goarch})
	}
	var srv *httptest.Server
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/providers/kilnhq/kiln/versions", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{"versions": []any{
			map[string]any{"version": rel.version, "protocols": []string{"6.0"}, "platforms": platforms},
		}})
	})
	mux.HandleFunc("GET /v1/providers/kilnhq/kiln/{version}/download/{os}/{arch}", func(w http.ResponseWriter, r *http.Request) {
		platform := r.PathValue("os") + "_" + r.PathValue("arch")
		if r.PathValue("version") != rel.version || !slices.Contains(rel.platforms, platform) {
			http.NotFound(w, r)
			return
		}
		files := srv.URL + "/files/" + prefix
		_ = json.NewEncoder(w).Encode(map[string]any{
			"protocols":             []string{"6.0"},
			"os":                    r.PathValue("os"),
			"arch":                  r.PathValue("arch"),
			"filename":              prefix + platform + ".zip",
			"download_url":          files + platform + ".zip",
			"shasums_url":           files + "SHA256SUMS",
			"shasums_signature_url": files + "SHA256SUMS.sig",
			"shasum":                rel.sums[prefix+platform+".zip"],
			"signing_keys": map[string]any{"gpg_public_keys": []any{
				map[string]string{"key_id": rel.keyID, "ascii_armor": string(rel.keyArmor)},
			}},
		})
	})
	mux.Handle("GET /files/", http.StripPrefix("/files/", http.FileServer(http.Dir(dist))))
	srv = httptest.NewTLSServer(mux)
	t.Cleanup(srv.Close)

	caFile = filepath.Join(t.TempDir(), "registry.pem")
	writeFile(t, caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644)
	cliConfig = fmt.Sprintf("host %q {\n  services = {\n    \"providers.v1\" = %q\n  }\n}\n\nprovider_installation {\n  direct {}\n}\n",
		host, srv.URL+"/v1/providers/")
	return cliConfig, caFile
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

func newInstallDir(t *testing.T, cli, config, cliConfig string, env ...string) installDir {
	t.Helper()
	d := installDir{cli: cli, dir: t.TempDir()}
	rc := filepath.Join(d.dir, "cli.tfrc")
	writeFile(t, rc, []byte(cliConfig), 0o644)
	writeFile(t, filepath.Join(d.dir, "main.tf"), []byte(config), 0o644)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "TF_") && !strings.HasPrefix(kv, "TOFU_") && !strings.HasPrefix(kv, "CHECKPOINT_") && !strings.HasPrefix(kv, "SSL_CERT_") {
			d.env = append(d.env, kv)
		}
	}
	d.env = append(d.env, "TF_CLI_CONFIG_FILE="+rc, "TF_IN_AUTOMATION=1", "CHECKPOINT_DISABLE=1")
	d.env = append(d.env, env...)
	return d
}

// mirrorConfig is a CLI configuration installing providers from a filesystem
// mirror only.
func mirrorConfig(mirror string) string {
	return fmt.Sprintf("provider_installation {\n  filesystem_mirror {\n    path = %q\n  }\n}\n", mirror)
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
