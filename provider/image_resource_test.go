package provider

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	golibvirt "github.com/digitalocean/go-libvirt"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-testing/config"
	"github.com/hashicorp/terraform-plugin-testing/helper/acctest"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"
	"golang.org/x/crypto/ssh"

	"github.com/kilnhq/terraform-provider-kiln/internal/image"
	"github.com/kilnhq/terraform-provider-kiln/internal/testenv"
)

const (
	imageAddr      = "kiln_image.go"
	thinImageAddr  = "kiln_image.thin"
	imageGoVersion = "1.24.4"
)

// imageTestConfig holds what the image test's configurations share.
type imageTestConfig struct {
	bed                testenv.LibvirtBed
	keyFile            string
	srcName, clone     string
	imageName, goBlock string
	thinName           string
	loginKey           string
}

// provider is the provider block: libvirt, and the login every host shares.
func (c imageTestConfig) provider() string {
	return fmt.Sprintf(`
provider "kiln" {
  libvirt {
    uri = %q
  }
  ssh {
    user        = "debian"
    private_key = file(%q)
  }
}
`, c.bed.URI, c.keyFile)
}

// vm is a guest with 1024 MiB; base is its base_volume expression.
func (c imageTestConfig) vm(label, name, base string) string {
	return fmt.Sprintf(`
resource "kiln_libvirt_vm" %[1]q {
  name          = %[2]q
  domain_type   = %[3]q
  pool          = %[4]q
  base_volume   = %[5]s
  vcpu          = 2
  memory_mib    = 1024
  disk_size_gib = 4

  network_interface {
    user_mode = true
  }

  cloud_init {
    hostname            = %[2]q
    ssh_authorized_keys = [%[6]q]
  }
}
`, label, name, c.bed.DomainType, c.bed.Pool, base, c.loginKey)
}

// goHost provisions the VM labelled vm with the one toolchain.
func (c imageTestConfig) goHost(label, vm string) string {
	return fmt.Sprintf(`
resource "kiln_go_host" %[1]q {
  ssh {
    host     = kiln_libvirt_vm.%[2]s.ssh_host
    port     = kiln_libvirt_vm.%[2]s.ssh_port
    host_key = kiln_libvirt_vm.%[2]s.ssh_host_public_key
  }

  go {
    versions = [%[3]q]
    %[4]s
  }

  remove_on_destroy = false
}
`, label, vm, imageGoVersion, c.goBlock)
}

// sourceConfig is the provisioned source VM.
func (c imageTestConfig) sourceConfig() string {
	return c.provider() + c.vm("src", c.srcName, fmt.Sprintf("%q", c.bed.BaseVolume)) + c.goHost("src", "src")
}

// imageConfig bakes the source into a zstd-compressed image, the source
// leaving the configuration without being destroyed (the bake deletes it),
// and boots a clone from the image with a Go host on it.
func (c imageTestConfig) imageConfig() string {
	return c.provider() + c.image(false) + c.vm("clone", c.clone, "kiln_image.go.volume") + c.goHost("clone", "clone")
}

// image is the compressed image baked from the source, with the variable its
// toolchains come from.
func (c imageTestConfig) image(forceDestroy bool) string {
	return fmt.Sprintf(`
variable "toolchains" {
  type = list(object({ version = string, archive_sha256 = string, go_binary_sha256 = string }))
}

removed {
  from = kiln_go_host.src
  lifecycle {
    destroy = false
  }
}

removed {
  from = kiln_libvirt_vm.src
  lifecycle {
    destroy = false
  }
}

resource "kiln_image" "go" {
  name = %q

  source {
    vm_id      = %q
    toolchains = var.toolchains
  }

  libvirt {
    compress = "zstd"
  }

  source_after_bake = "deleted"
  force_destroy     = %t
}
`, c.imageName, c.srcName, forceDestroy)
}

// thinConfig bakes the clone, which leaves the configuration (kept, stopped),
// into an overlay image on the compressed image, whose destroy even with
// force_destroy is then refused while the overlay image is there. Without
// thin, the overlay image leaves the state but stays.
func (c imageTestConfig) thinConfig(withImage, thin bool) string {
	config := c.provider()
	if withImage {
		config += c.image(true)
	} else {
		config += `
variable "toolchains" {
  type = list(object({ version = string, archive_sha256 = string, go_binary_sha256 = string }))
}
`
	}
	config += `
removed {
  from = kiln_go_host.clone
  lifecycle {
    destroy = false
  }
}

removed {
  from = kiln_libvirt_vm.clone
  lifecycle {
    destroy = false
  }
}
`
	if !thin {
		return config + `
removed {
  from = kiln_image.thin
  lifecycle {
    destroy = false
  }
}
`
	}
	return config + fmt.Sprintf(`
resource "kiln_image" "thin" {
  name = %q

  source {
    vm_id      = %q
    toolchains = var.toolchains
  }

  libvirt {
    flatten = false
  }
}
`, c.thinName, c.clone)
}

// inUseConfig drops the image while the clone still boots from its volume,
// given as a variable.
func (c imageTestConfig) inUseConfig() string {
	return c.provider() + `
variable "image_volume" {
  type = string
}
` + c.vm("clone", c.clone, "var.image_volume") + c.goHost("clone", "clone")
}

// lateJSON is a configuration variable whose value a previous step captured.
type lateJSON struct{ value *json.RawMessage }

func (v lateJSON) MarshalJSON() ([]byte, error) { return *v.value, nil }

// TestAccImage_libvirt provisions a source VM with one toolchain, bakes it
// into an image (a standalone qcow2, compat 1.1, carrying the manifest; the
// source deleted), boots a clone from the image that answers SSH with its own
// host key, has a machine-id of its own and runs the baked Go, and provisions
// the clone with nothing to install. The plan is then empty, the image is
// imported, its destroy is refused while the clone uses it, and the image
// volume deleted out of band shows in the plan.
func TestAccImage_libvirt(t *testing.T) {
	testAccPreCheck(t)
	bed := testenv.Libvirt(t)
	mirror := testenv.StartGoMirror(t, []string{imageGoVersion})
	dir := t.TempDir()
	keyFile, signer := writeLoginKey(t, dir)
	keyringFile := filepath.Join(dir, "mirror-keys.asc")
	if err := os.WriteFile(keyringFile, []byte(mirror.Keyring), 0o644); err != nil {
		t.Fatal(err)
	}
	pub, err := os.ReadFile(keyFile + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	c := imageTestConfig{bed: bed, keyFile: keyFile, srcName: acctest.RandomWithPrefix("kiln-img-src"),
		clone: acctest.RandomWithPrefix("kiln-img-clone"), imageName: acctest.RandomWithPrefix("kiln-img"),
		thinName: acctest.RandomWithPrefix("kiln-thin"),
		goBlock:  dlSource(mirror, keyringFile, nil), loginKey: strings.TrimSpace(string(pub))}
	bed.RemoveGuestAtCleanup(t, c.srcName)
	bed.RemoveGuestAtCleanup(t, c.clone)
	t.Cleanup(func() { removeImageVolumes(t, bed, c.imageName); removeImageVolumes(t, bed, c.thinName) })

	var (
		toolchains       = json.RawMessage("null")
		imageVolume      = json.RawMessage("null")
		imagePath        string
		thinSHA256       string
		source           imageSource
		variables        = config.Variables{"toolchains": lateJSON{&toolchains}}
		goBinary         = "/usr/local/go/" + imageGoVersion + "/bin/go"
		captureSourceVM  = captureImageSource(signer, goBinary, &source, &toolchains)
		volumeNamePrefix = regexp.MustCompile("^" + regexp.QuoteMeta(c.imageName) + "-[0-9a-f]{12}[.]qcow2$")
	)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		Steps: []resource.TestStep{
			{
				Config: c.sourceConfig(),
				Check:  captureSourceVM,
			},
			{
				Config:          c.imageConfig(),
				ConfigVariables: variables,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(imageAddr, tfjsonpath.New("format"), knownvalue.StringExact("qcow2")),
					statecheck.ExpectKnownValue(imageAddr, tfjsonpath.New("libvirt"), knownvalue.ObjectExact(map[string]knownvalue.Check{
						"pool": knownvalue.StringExact(bed.Pool), "flatten": knownvalue.Bool(true), "compress": knownvalue.StringExact("zstd"),
					})),
					statecheck.ExpectKnownValue(imageAddr, tfjsonpath.New("backing_volume"), knownvalue.StringExact("")),
					statecheck.ExpectKnownValue(imageAddr, tfjsonpath.New("volume"), knownvalue.StringRegexp(volumeNamePrefix)),
					statecheck.ExpectKnownValue(imageAddr, tfjsonpath.New("fingerprint"), knownvalue.StringRegexp(regexp.MustCompile(`^[0-9a-f]{64}$`))),
					statecheck.ExpectKnownValue("kiln_go_host.clone", tfjsonpath.New("installed"), knownvalue.ListSizeExact(1)),
				},
				Check: resource.ComposeTestCheckFunc(
					checkImageVolume(bed, imageAddr, "", &imagePath),
					checkImageRecord(bed, imageAddr),
					checkCompressed(t, &imagePath),
					checkImageManifest(&source),
					checkDomainGone(bed, c.srcName),
					checkHostOf("kiln_libvirt_vm.clone", signer, "go version", "go version go"+imageGoVersion+" linux/amd64"),
					checkClone(signer, goBinary, &source),
					func(s *terraform.State) error {
						a := s.RootModule().Resources[imageAddr].Primary.Attributes
						t.Logf("baked %s in %s s: %s bytes allocated of %s", a["volume"], a["bake_seconds"], a["allocation"], a["virtual_size"])
						var err error
						imageVolume, err = json.Marshal(a["volume"])
						return err
					},
				),
			},
			{
				Config:            c.imageConfig(),
				ConfigVariables:   variables,
				ConfigPlanChecks:  resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
				ConfigStateChecks: []statecheck.StateCheck{statecheck.ExpectKnownValue(imageAddr, tfjsonpath.New("bake_seconds"), knownvalue.NotNull())},
			},
			{
				ResourceName:      imageAddr,
				ConfigVariables:   variables,
				ImportState:       true,
				ImportStateIdFunc: func(s *terraform.State) (string, error) { return s.RootModule().Resources[imageAddr].Primary.ID, nil },
				ImportStateVerify: true,
				ImportStateVerifyIgnore: []string{"bake_seconds", "source", "inputs", "generalize",
					"source_after_bake", "force_destroy", "timeouts"},
			},
			{
				// The clone's root volume is still an overlay on the image:
				// destroying it is refused.
				Config:          c.inUseConfig(),
				ConfigVariables: config.Variables{"image_volume": lateJSON{&imageVolume}},
				ExpectError:     regexp.MustCompile(`(?s)Could not delete the image.*still\s+in\s+use\s+by\s+volume\s+` + c.clone + `-root.qcow2`),
			},
			{
				// The provisioned clone baked into an overlay on the
				// compressed image it booted from: no copy of the base.
				Config:          c.thinConfig(true, true),
				ConfigVariables: variables,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(thinImageAddr, tfjsonpath.New("libvirt").AtMapKey("flatten"), knownvalue.Bool(false)),
					statecheck.ExpectKnownValue(thinImageAddr, tfjsonpath.New("libvirt").AtMapKey("compress"), knownvalue.StringExact("none")),
				},
				Check: resource.ComposeTestCheckFunc(
					checkImageVolume(bed, thinImageAddr, imageAddr, nil),
					checkImageRecord(bed, thinImageAddr),
					func(s *terraform.State) error {
						a := s.RootModule().Resources[thinImageAddr].Primary.Attributes
						t.Logf("overlay image %s baked in %s s: %s bytes allocated", a["volume"], a["bake_seconds"], a["allocation"])
						thinSHA256 = a["sha256"]
						return nil
					},
				),
			},
			{
				// The overlay image leaves the state, its volume kept...
				Config:          c.thinConfig(true, false),
				ConfigVariables: variables,
			},
			{
				// ... and is adopted by its record: the source, stopped by the
				// bake, could not be baked again.
				Config:          c.thinConfig(true, true),
				ConfigVariables: variables,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(thinImageAddr, plancheck.ResourceActionCreate),
				}},
				Check: func(s *terraform.State) error {
					if got := s.RootModule().Resources[thinImageAddr].Primary.Attributes["sha256"]; got != thinSHA256 {
						return fmt.Errorf("adopted image hashes to %s, baked to %s", got, thinSHA256)
					}
					return nil
				},
			},
			{
				// Even with force_destroy, the image an image is an overlay on stays.
				Config:          c.thinConfig(false, true),
				ConfigVariables: variables,
				ExpectError:     regexp.MustCompile(`(?s)Could not delete the image.*base\s+of\s+the\s+Kiln\s+image\s+volumes\s+` + c.thinName),
			},
			{
				// The image volume deleted out of band: the plan bakes it
				// again, and the overlay on it, which lost its base.
				PreConfig:       func() { deleteImageVolume(t, bed, c.imageName) },
				Config:          c.thinConfig(true, true),
				ConfigVariables: variables,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(imageAddr, plancheck.ResourceActionReplace),
					plancheck.ExpectUnknownValue(imageAddr, tfjsonpath.New("sha256")),
					plancheck.ExpectResourceAction(thinImageAddr, plancheck.ResourceActionReplace),
				}},
				// The source is gone: the bake fails, naming it.
				ExpectError: regexp.MustCompile(`(?s)Could not read the source VM.*not found`),
			},
		},
	})
}

// imageSource is what the test saw on the source host before the bake.
type imageSource struct {
	machineID, hostKey, goStat string
	installed                  []image.Toolchain
}

// captureImageSource records the source host's machine-id, host key and
// bin/go stat, and its go_host's installed toolchains as the variable the
// image configuration takes.
func captureImageSource(signer ssh.Signer, goBinary string, src *imageSource, variable *json.RawMessage) resource.TestCheckFunc {
	return func(s *terraform.State) error {
		out, err := hostOutput(s, "kiln_libvirt_vm.src", signer, "cat /etc/machine-id; stat -c %i:%Z "+goBinary)
		if err != nil {
			return err
		}
		lines := strings.Split(out, "\n")
		if len(lines) != 2 {
			return fmt.Errorf("source host printed %q", out)
		}
		src.machineID, src.goStat = lines[0], lines[1]
		src.hostKey = s.RootModule().Resources["kiln_libvirt_vm.src"].Primary.Attributes["ssh_host_public_key"]
		a := s.RootModule().Resources["kiln_go_host.src"].Primary.Attributes
		if a["installed.#"] != "1" || a["installed.0.version"] != imageGoVersion {
			return fmt.Errorf("source go_host installed %s toolchains, first %q", a["installed.#"], a["installed.0.version"])
		}
		src.installed = []image.Toolchain{{Version: a["installed.0.version"], ArchiveSHA256: a["installed.0.archive_sha256"],
			GoBinarySHA256: a["installed.0.go_binary_sha256"]}}
		doc, err := json.Marshal(src.installed)
		*variable = doc
		return err
	}
}

// qemuImgInfo is what the tests read of `qemu-img info`.
type qemuImgInfo struct {
	Format          string `json:"format"`
	BackingFilename string `json:"backing-filename"`
	ActualSize      int64  `json:"actual-size"`
	Specific        struct {
		Data struct {
			Compat          string `json:"compat"`
			CompressionType string `json:"compression-type"`
		} `json:"data"`
	} `json:"format-specific"`
}

func readQemuImgInfo(path string) (qemuImgInfo, error) {
	var info qemuImgInfo
	out, err := exec.Command("qemu-img", "info", "-U", "--output=json", path).Output()
	if err != nil {
		return info, fmt.Errorf("qemu-img info %s: %w", path, err)
	}
	return info, json.Unmarshal(out, &info)
}

// checkImageVolume asserts on the volume of the image at addr itself: a
// qcow2, compat 1.1, standalone or (with base, an image's address) an
// overlay on base's volume, as backing_volume says; whose SHA-256 and
// allocation are the recorded ones. path, if set, receives the file's path.
func checkImageVolume(bed testenv.LibvirtBed, addr, base string, path *string) resource.TestCheckFunc {
	return func(s *terraform.State) error {
		a := s.RootModule().Resources[addr].Primary.Attributes
		file, err := volumePath(bed, a["volume"])
		if err != nil {
			return err
		}
		if path != nil {
			*path = file
		}
		info, err := readQemuImgInfo(file)
		if err != nil {
			return err
		}
		wantBacking := ""
		if base != "" {
			if wantBacking, err = volumePath(bed, s.RootModule().Resources[base].Primary.Attributes["volume"]); err != nil {
				return err
			}
		}
		if info.Format != "qcow2" || info.BackingFilename != wantBacking || a["backing_volume"] != wantBacking || info.Specific.Data.Compat != "1.1" {
			return fmt.Errorf("image %s: format %q, backing file %q (backing_volume %q), compat %q; want a qcow2, compat 1.1, backing file %q",
				file, info.Format, info.BackingFilename, a["backing_volume"], info.Specific.Data.Compat, wantBacking)
		}
		if got := strconv.FormatInt(info.ActualSize, 10); got != a["allocation"] {
			return fmt.Errorf("image %s takes %s bytes, state says %s", file, got, a["allocation"])
		}
		sum, err := exec.Command("sha256sum", file).Output()
		if err != nil {
			return err
		}
		if got := strings.Fields(string(sum))[0]; got != a["sha256"] {
			return fmt.Errorf("image %s hashes to %s, state says %s", file, got, a["sha256"])
		}
		return nil
	}
}

// volumePath is the path of the volume in the test bed's pool.
func volumePath(bed testenv.LibvirtBed, volume string) (string, error) {
	var path string
	err := withLibvirt(bed, func(l *golibvirt.Libvirt) error {
		pool, err := l.StoragePoolLookupByName(bed.Pool)
		if err != nil {
			return err
		}
		vol, err := l.StorageVolLookupByName(pool, volume)
		if err != nil {
			return fmt.Errorf("volume %q: %w", volume, err)
		}
		path, err = l.StorageVolGetPath(vol)
		return err
	})
	return path, err
}

// checkImageRecord asserts Kiln's record beside the image's volume names its
// fingerprint, SHA-256 and manifest.
func checkImageRecord(bed testenv.LibvirtBed, addr string) resource.TestCheckFunc {
	return func(s *terraform.State) error {
		a := s.RootModule().Resources[addr].Primary.Attributes
		path, err := volumePath(bed, strings.TrimSuffix(a["volume"], ".qcow2")+".kiln.json")
		if err != nil {
			return err
		}
		doc, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		var rec image.Record
		if err := json.Unmarshal(doc, &rec); err != nil {
			return fmt.Errorf("record %s: %w", path, err)
		}
		var manifest image.Manifest
		if err := json.Unmarshal([]byte(a["manifest"]), &manifest); err != nil {
			return err
		}
		if rec.Fingerprint != a["fingerprint"] || rec.SHA256 != a["sha256"] || !reflect.DeepEqual(rec.Manifest, manifest) {
			return fmt.Errorf("record %s = %s, want the image's fingerprint, SHA-256 and manifest", path, doc)
		}
		return nil
	}
}

// checkCompressed asserts the image at *path has zstd clusters and takes no
// more space than the same image uncompressed, as the bake made it before
// compressing.
func checkCompressed(t *testing.T, path *string) resource.TestCheckFunc {
	return func(*terraform.State) error {
		info, err := readQemuImgInfo(*path)
		if err != nil {
			return err
		}
		if info.Specific.Data.CompressionType != "zstd" {
			return fmt.Errorf("image %s: compression type %q, want zstd", *path, info.Specific.Data.CompressionType)
		}
		plain := filepath.Join(os.TempDir(), filepath.Base(*path)+".plain")
		defer os.Remove(plain)
		if out, err := exec.Command("qemu-img", "convert", "-U", "-O", "qcow2", "-o", "compat=1.1", *path, plain).CombinedOutput(); err != nil {
			return fmt.Errorf("qemu-img convert %s: %w: %s", *path, err, out)
		}
		uncompressed, err := readQemuImgInfo(plain)
		if err != nil {
			return err
		}
		if info.ActualSize > uncompressed.ActualSize {
			return fmt.Errorf("the compressed image takes %d bytes, uncompressed it takes %d", info.ActualSize, uncompressed.ActualSize)
		}
		t.Logf("compressed image: %d bytes, uncompressed %d", info.ActualSize, uncompressed.ActualSize)
		return nil
	}
}

// checkImageManifest asserts the manifest output names the image and the
// toolchain the source's go_host installed.
func checkImageManifest(src *imageSource) resource.TestCheckFunc {
	return func(s *terraform.State) error {
		a := s.RootModule().Resources[imageAddr].Primary.Attributes
		var m image.Manifest
		if err := json.Unmarshal([]byte(a["manifest"]), &m); err != nil {
			return fmt.Errorf("manifest %q: %w", a["manifest"], err)
		}
		want := []image.ManifestToolchain{{Version: imageGoVersion, ArchiveSHA256: src.installed[0].ArchiveSHA256, GoBinarySHA256: src.installed[0].GoBinarySHA256}}
		if m.Fingerprint != a["fingerprint"] || !strings.HasPrefix(a["volume"], m.Name+".") ||
			!strings.HasPrefix(m.OS, "Debian GNU/Linux 12") || m.Kernel == "" || !reflect.DeepEqual(m.Toolchains, want) {
			return fmt.Errorf("manifest = %+v, want the image's name and fingerprint, Debian 12, a kernel, and toolchains %+v", m, want)
		}
		return nil
	}
}

// checkClone asserts that the clone has its own host key and machine-id, the
// manifest inside, and the very bin/go the source had: the go_host on it
// installed nothing.
func checkClone(signer ssh.Signer, goBinary string, src *imageSource) resource.TestCheckFunc {
	return func(s *terraform.State) error {
		const clone = "kiln_libvirt_vm.clone"
		out, err := hostOutput(s, clone, signer, "cat /etc/machine-id; stat -c %i:%Z "+goBinary+"; cat "+image.ManifestPath)
		if err != nil {
			return err
		}
		machineID, rest, _ := strings.Cut(out, "\n")
		goStat, manifest, _ := strings.Cut(rest, "\n")
		if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(machineID) || machineID == src.machineID {
			return fmt.Errorf("clone machine-id %q, source's %q: want a new one", machineID, src.machineID)
		}
		if key := s.RootModule().Resources[clone].Primary.Attributes["ssh_host_public_key"]; key == src.hostKey {
			return fmt.Errorf("clone answers with the source's host key")
		}
		if goStat != src.goStat {
			return fmt.Errorf("clone's bin/go is %s, the source's was %s: it was installed again", goStat, src.goStat)
		}
		var inside, output image.Manifest
		if err := json.Unmarshal([]byte(manifest), &inside); err != nil {
			return fmt.Errorf("%s on the clone: %w", image.ManifestPath, err)
		}
		if err := json.Unmarshal([]byte(s.RootModule().Resources[imageAddr].Primary.Attributes["manifest"]), &output); err != nil {
			return err
		}
		if !reflect.DeepEqual(inside, output) {
			return fmt.Errorf("manifest in the clone %+v differs from the output %+v", inside, output)
		}
		return nil
	}
}

// checkDomainGone asserts the domain no longer exists.
func checkDomainGone(bed testenv.LibvirtBed, name string) resource.TestCheckFunc {
	return func(*terraform.State) error {
		return withLibvirt(bed, func(l *golibvirt.Libvirt) error {
			if _, err := l.DomainLookupByName(name); !golibvirt.IsNotFound(err) {
				return fmt.Errorf("source domain %q still exists (lookup error: %v)", name, err)
			}
			return nil
		})
	}
}

// imageVolumes lists the pool's volumes of the test's image.
func imageVolumes(l *golibvirt.Libvirt, bed testenv.LibvirtBed, name string) (golibvirt.StoragePool, []golibvirt.StorageVol, error) {
	pool, err := l.StoragePoolLookupByName(bed.Pool)
	if err != nil {
		return pool, nil, err
	}
	vols, _, err := l.StoragePoolListAllVolumes(pool, 1, 0)
	var mine []golibvirt.StorageVol
	for _, v := range vols {
		if strings.HasPrefix(v.Name, name+"-") {
			mine = append(mine, v)
		}
	}
	return pool, mine, err
}

// deleteImageVolume deletes the image volume as an operator would.
func deleteImageVolume(t *testing.T, bed testenv.LibvirtBed, name string) {
	t.Helper()
	err := withLibvirt(bed, func(l *golibvirt.Libvirt) error {
		_, vols, err := imageVolumes(l, bed, name)
		vols = slices.DeleteFunc(vols, func(v golibvirt.StorageVol) bool { return !strings.HasSuffix(v.Name, ".qcow2") })
		if err != nil || len(vols) != 1 {
			return fmt.Errorf("image volumes %v: %v", vols, err)
		}
		return l.StorageVolDelete(vols[0], golibvirt.StorageVolDeleteNormal)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// removeImageVolumes removes what a failed test left of its image.
func removeImageVolumes(t *testing.T, bed testenv.LibvirtBed, name string) {
	err := withLibvirt(bed, func(l *golibvirt.Libvirt) error {
		_, vols, err := imageVolumes(l, bed, name)
		for _, v := range vols {
			t.Logf("removing image volume %s, left behind by the test", v.Name)
			_ = l.StorageVolDelete(v, golibvirt.StorageVolDeleteNormal)
		}
		return err
	})
	if err != nil {
		t.Logf("image volumes of %s: %v", name, err)
	}
}

// TestAccImage_badInput checks plan-time errors; it needs no test bed.
func TestAccImage_badInput(t *testing.T) {
	testAccPreCheck(t)
	const provider = `
provider "kiln" {
  libvirt {}
}
`
	// image is a kiln_image with the given extra lines.
	image := func(lines string) string {
		return `
resource "kiln_image" "go" {
  name = "go"
  source {
    vm_id      = "builder"
    toolchains = [{ version = "1.24.4", archive_sha256 = "", go_binary_sha256 = "" }]
  }
` + lines + `
}
`
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		Steps: []resource.TestStep{
			{
				// A VM no go_host provisioned records no toolchains.
				Config: provider + `
resource "kiln_image" "go" {
  name = "go"
  source {
    vm_id      = "builder"
    toolchains = []
  }
  libvirt {}
}
`,
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`(?s)Source VM not provisioned.*source.toolchains\s+is\s+empty`),
			},
			{
				Config: provider + `
resource "kiln_image" "go" {
  name = "go"
  libvirt {}
}
`,
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`(?s)Missing Configuration for Required Attribute.*source.vm_id`),
			},
			{
				Config:      provider + image(`source_after_bake = "kept"`+"\n"+`libvirt {}`),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`(?s)source_after_bake.*value must be one of`),
			},
			{
				Config:      image(`libvirt {}`),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`Missing libvirt configuration`),
			},
			{
				Config:      provider + image(""),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`(?s)Missing Attribute Configuration.*Exactly\s+one.*\[libvirt,vsphere\]`),
			},
			{
				Config:      provider + image("libvirt {}\nvsphere {}"),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`(?s)Invalid Attribute Combination.*\[libvirt,vsphere\]`),
			},
			{
				Config:      provider + image("libvirt {\n  compress = \"gzip\"\n}"),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`(?s)libvirt.compress\s+value\s+must\s+be\s+one\s+of`),
			},
			{
				Config:      provider + image("libvirt {\n  flatten  = false\n  compress = \"zstd\"\n}"),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`(?s)Compression needs a standalone image.*libvirt.flatten\s+=\s+false`),
			},
			{
				// qemu-img cannot be run on a daemon reached over TCP: the
				// plan fails before anything is dialled.
				Config: `
provider "kiln" {
  libvirt {
    uri = "qemu+tcp://libvirt.invalid/system"
  }
}
` + image("libvirt {\n  compress = \"zstd\"\n}"),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`(?s)Cannot compress on the libvirt host.*libvirt.compress.*over\s+tcp`),
			},
			{
				// Over SSH without credentials: the plan says which are missing.
				Config: `
provider "kiln" {
  libvirt {
    uri = "qemu+ssh://virt@libvirt.invalid/system"
  }
}
` + image("libvirt {\n  compress = \"zstd\"\n}"),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`(?s)Cannot compress on the libvirt host.*no\s+SSH\s+credentials`),
			},
			{
				// A vsphere block bakes on the provider's vSphere, which is not configured.
				Config:      provider + image("vsphere {}"),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`(?s)Missing vSphere configuration.*kiln_image with a .vsphere. block`),
			},
		},
	})
}

func TestImageImportID(t *testing.T) {
	for id, name := range map[string]string{
		"default/go-builder-3f2a9c81d04e.qcow2":     "go-builder",
		"kiln-test/go.v2-000000000000.qcow2":        "go.v2",
		"default/go-builder.qcow2":                  "",
		"default/go-builder-3F2A9C81D04E.qcow2":     "",
		"default/go-builder-3f2a9c81d04e.qcow2.bak": "",
	} {
		_, volume, _ := strings.Cut(id, "/")
		if got, _ := image.ParseVolumeName(volume); got != name {
			t.Errorf("%s: name %q, want %q (empty: refused)", id, got, name)
		}
	}
}

// An absent generalize block, or an option left unset, generalizes fully.
func TestImageGeneralizeDefaults(t *testing.T) {
	if got := (imageModel{}).generalize(); got != image.DefaultGeneralize() {
		t.Fatalf("no block: %+v", got)
	}
	m := imageModel{Generalize: &imageGeneralizeModel{Logs: types.BoolValue(false)}}
	want := image.DefaultGeneralize()
	want.Logs = false
	if got := m.generalize(); got != want {
		t.Fatalf("logs off: %+v, want %+v", got, want)
	}
}

func TestImageImportTemplatePath(t *testing.T) {
	for id, want := range map[string][2]string{
		"/DC1/vm/templates/go/go-builder-3f2a9c81d04e": {"templates/go", "go-builder"},
		"/DC1/vm/go.v2-000000000000":                   {"", "go.v2"},
		"/folder/DC1/vm/t/go-builder-3f2a9c81d04e":     {"t", "go-builder"},
		"/DC1/vm/templates/go-builder":                 {"", ""},
		"/DC1/host/go-builder-3f2a9c81d04e":            {"", ""},
		"DC1/vm/go-builder-3f2a9c81d04e":               {"", ""},
	} {
		var got [2]string
		if m := importedTemplate.FindStringSubmatch(id); m != nil {
			got = [2]string{m[1], m[2]}
		}
		if got != want {
			t.Errorf("%s: folder, name = %q, want %q (empty name: refused)", id, got, want)
		}
	}
}
