package provider

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
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

	"github.com/kilnhq/terraform-provider-kiln/internal/gotoolchain"
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
	clone              string
	imageName, goBlock string
	thinName           string
	loginKey           string
	// createFirst replaces the image create_before_destroy.
	createFirst bool
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

// imageConfig bakes the test bed's base volume, provisioned with the one
// toolchain, into a zstd-compressed image, and boots a clone from the image
// with a Go host on it.
func (c imageTestConfig) imageConfig() string {
	return c.provider() + c.image(c.bed.BaseVolume, false) + c.vm("clone", c.clone, "kiln_image.go.volume") + c.goHost("clone", "clone")
}

// createFirstConfig is imageConfig with the image replaced create_before_destroy.
func (c imageTestConfig) createFirstConfig() string {
	c.createFirst = true
	return c.imageConfig()
}

// image is the compressed image baked from base (a volume in the test bed's
// pool, which the image goes to too), provisioned in a transient VM with the
// toolchain from the test's mirror and swap turned off.
func (c imageTestConfig) image(base string, forceDestroy bool) string {
	lifecycle := ""
	if c.createFirst {
		lifecycle = "\n  lifecycle {\n    create_before_destroy = true\n  }\n"
	}
	return fmt.Sprintf(`
resource "kiln_image" "go" {
  name = %[1]q

  source {
    base_volume = %[2]q
    base_pool   = %[3]q
    domain_type = %[4]q

    go {
      versions = [%[5]q]
      %[6]s
    }

    hardening {
      swap_off = true
    }
  }

  libvirt {
    compress = "zstd"
  }

  force_destroy = %[7]t
%[8]s}
`, c.imageName, base, c.bed.Pool, c.bed.DomainType, imageGoVersion, c.goBlock, forceDestroy, lifecycle)
}

// thinConfig bakes the clone, which leaves the configuration (kept, stopped),
// with the toolchains the image's manifest lists,
// into an overlay image on the compressed image, whose destroy even with
// force_destroy is then refused while the overlay image is there. Without
// thin, the overlay image leaves the state but stays.
func (c imageTestConfig) thinConfig(withImage, thin bool) string {
	config := c.provider() + `
variable "toolchains" {
  type = list(object({ version = string, archive_sha256 = string, go_binary_sha256 = string }))
}
`
	if withImage {
		config += c.image(c.bed.BaseVolume, true)
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

// TestAccImage_libvirt bakes the test bed's base volume, provisioned with one
// toolchain in a transient VM, into an image (a standalone qcow2, compat 1.1,
// carrying the manifest; the transient VM and its volumes gone), boots a
// clone from the image that answers SSH with its own host key, has a
// machine-id of its own and runs the baked Go, and provisions the clone with
// nothing to install. The plan is then empty, the image is imported, its
// destroy is refused while the clone uses it, the provisioned clone is baked
// into an overlay image (the provisioned-VM source), and the image volume
// deleted out of band shows in the plan.
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
	c := imageTestConfig{bed: bed, keyFile: keyFile,
		clone: acctest.RandomWithPrefix("kiln-img-clone"), imageName: acctest.RandomWithPrefix("kiln-img"),
		thinName: acctest.RandomWithPrefix("kiln-thin"),
		goBlock:  dlSource(mirror, keyringFile, nil), loginKey: strings.TrimSpace(string(pub))}
	bed.RemoveGuestAtCleanup(t, c.clone)
	t.Cleanup(func() { removeImageVolumes(t, bed, c.imageName); removeImageVolumes(t, bed, c.thinName) })
	t.Cleanup(func() { removeBakeVMs(t, bed, c.imageName) })

	var (
		toolchains       = json.RawMessage("null")
		imageVolume      = json.RawMessage("null")
		imagePath        string
		thinSHA256       string
		variables        = config.Variables{"toolchains": lateJSON{&toolchains}}
		goBinary         = "/usr/local/go/" + imageGoVersion + "/bin/go"
		volumeNamePrefix = regexp.MustCompile("^" + regexp.QuoteMeta(c.imageName) + "-[0-9a-f]{12}[.]qcow2$")
	)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		Steps: []resource.TestStep{
			{
				// A base volume the pool does not hold fails the plan, naming it.
				Config:      c.provider() + c.image("kiln-no-such-base.qcow2", false),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`(?s)Could not read the base volume.*kiln-no-such-base.qcow2.*not\s+found`),
			},
			{
				Config: c.imageConfig(),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(imageAddr, tfjsonpath.New("format"), knownvalue.StringExact("qcow2")),
					statecheck.ExpectKnownValue(imageAddr, tfjsonpath.New("libvirt"), knownvalue.ObjectExact(map[string]knownvalue.Check{
						"pool": knownvalue.StringExact(bed.Pool), "flatten": knownvalue.Bool(true), "compress": knownvalue.StringExact("zstd"),
					})),
					statecheck.ExpectKnownValue(imageAddr, tfjsonpath.New("source").AtMapKey("go").AtMapKey("resolved_versions"),
						knownvalue.ListExact([]knownvalue.Check{knownvalue.StringExact(imageGoVersion)})),
					statecheck.ExpectKnownValue(imageAddr, tfjsonpath.New("backing_volume"), knownvalue.StringExact("")),
					statecheck.ExpectKnownValue(imageAddr, tfjsonpath.New("volume"), knownvalue.StringRegexp(volumeNamePrefix)),
					statecheck.ExpectKnownValue(imageAddr, tfjsonpath.New("fingerprint"), knownvalue.StringRegexp(regexp.MustCompile(`^[0-9a-f]{64}$`))),
					statecheck.ExpectKnownValue("kiln_go_host.clone", tfjsonpath.New("installed"), knownvalue.ListSizeExact(1)),
				},
				Check: resource.ComposeTestCheckFunc(
					checkImageVolume(bed, imageAddr, "", &imagePath),
					checkImageRecord(bed, imageAddr),
					checkCompressed(t, &imagePath),
					checkImageManifest(mirror),
					checkBakeVMGone(bed),
					checkHostOf("kiln_libvirt_vm.clone", signer, "go version", "go version go"+imageGoVersion+" linux/amd64"),
					checkClone(signer, goBinary),
					func(s *terraform.State) error {
						a := s.RootModule().Resources[imageAddr].Primary.Attributes
						t.Logf("baked %s in %s s: %s bytes allocated of %s", a["volume"], a["bake_seconds"], a["allocation"], a["virtual_size"])
						var err error
						if imageVolume, err = json.Marshal(a["volume"]); err != nil {
							return err
						}
						// The overlay image's source, the clone, holds what the manifest lists.
						var m image.Manifest
						if err := json.Unmarshal([]byte(a["manifest"]), &m); err != nil {
							return err
						}
						toolchains, err = json.Marshal(m.Toolchains)
						return err
					},
				),
			},
			{
				Config:            c.imageConfig(),
				ConfigPlanChecks:  resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
				ConfigStateChecks: []statecheck.StateCheck{statecheck.ExpectKnownValue(imageAddr, tfjsonpath.New("bake_seconds"), knownvalue.NotNull())},
			},
			{
				ResourceName:      imageAddr,
				ImportState:       true,
				ImportStateIdFunc: func(s *terraform.State) (string, error) { return s.RootModule().Resources[imageAddr].Primary.ID, nil },
				ImportStateVerify: true,
				ImportStateVerifyIgnore: []string{"bake_seconds", "source", "inputs", "generalize",
					"source_after_bake", "force_destroy", "timeouts"},
			},
			{
				// The image tainted and replaced create_before_destroy: the
				// replacement adopts the volume, no bake, and the image it
				// replaces leaves the volume to it (destroying it would be
				// refused while the clone uses it, or would take the
				// replacement's volume with force_destroy).
				Config: c.createFirstConfig(),
				Taint:  []string{imageAddr},
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(imageAddr, plancheck.ResourceActionCreateBeforeDestroy),
					plancheck.ExpectResourceAction("kiln_libvirt_vm.clone", plancheck.ResourceActionNoop),
				}},
				Check: resource.ComposeTestCheckFunc(
					checkImageVolume(bed, imageAddr, "", nil),
					checkImageRecord(bed, imageAddr),
					func(s *terraform.State) error {
						a := s.RootModule().Resources[imageAddr].Primary.Attributes
						t.Logf("replacement adopted %s in %s s", a["volume"], a["bake_seconds"])
						return nil
					},
				),
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
				// again from its base volume. Planned only: applying it would
				// boot another transient VM.
				PreConfig:          func() { deleteImageVolume(t, bed, c.imageName) },
				Config:             c.thinConfig(true, false),
				ConfigVariables:    variables,
				PlanOnly:           true,
				ExpectNonEmptyPlan: true,
				ConfigPlanChecks: resource.ConfigPlanChecks{PostApplyPostRefresh: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(imageAddr, plancheck.ResourceActionReplace),
					plancheck.ExpectUnknownValue(imageAddr, tfjsonpath.New("sha256")),
				}},
			},
			{
				// The overlay image lost its base with it: it is to be baked
				// again, but its source, the clone, lost its base too, and the
				// plan fails, naming it.
				Config:          c.thinConfig(true, true),
				ConfigVariables: variables,
				PlanOnly:        true,
				ExpectError:     regexp.MustCompile(`(?s)Could not read the source VM.*` + c.clone + `.*not\s+found`),
			},
		},
	})
}

// checkBakeVMGone asserts the transient VM the image was baked in, and its
// volumes, are gone.
func checkBakeVMGone(bed testenv.LibvirtBed) resource.TestCheckFunc {
	return func(s *terraform.State) error {
		a := s.RootModule().Resources[imageAddr].Primary.Attributes
		vm := image.TransientVMName(a["name"], a["fingerprint"])
		return withLibvirt(bed, func(l *golibvirt.Libvirt) error {
			if _, err := l.DomainLookupByName(vm); !golibvirt.IsNotFound(err) {
				return fmt.Errorf("transient domain %q still exists (lookup error: %v)", vm, err)
			}
			pool, err := l.StoragePoolLookupByName(bed.Pool)
			if err != nil {
				return err
			}
			for _, name := range []string{vm + "-root.qcow2", vm + "-cidata.iso"} {
				if _, err := l.StorageVolLookupByName(pool, name); err == nil {
					return fmt.Errorf("the transient VM's volume %q is still there", name)
				}
			}
			return nil
		})
	}
}

// removeBakeVMs removes the transient VMs of the test's image that a crashed
// provider left.
func removeBakeVMs(t *testing.T, bed testenv.LibvirtBed, name string) {
	err := withLibvirt(bed, func(l *golibvirt.Libvirt) error {
		doms, _, err := l.ConnectListAllDomains(1, 0)
		for _, d := range doms {
			if strings.HasPrefix(d.Name, name+"-") && strings.HasSuffix(d.Name, "-bake") {
				t.Logf("removing transient VM %s, left behind by the test", d.Name)
				_ = l.DomainDestroy(d)
				_ = l.DomainUndefineFlags(d, golibvirt.DomainUndefineNvram)
			}
		}
		return err
	})
	if err != nil {
		t.Logf("transient VMs of %s: %v", name, err)
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

// checkImageManifest asserts the manifest output names the image, Debian 12
// and a kernel, and the one toolchain: from the mirror's archive, with the
// bin/go the clone's go_host found intact there.
func checkImageManifest(mirror testenv.GoMirror) resource.TestCheckFunc {
	return func(s *terraform.State) error {
		a := s.RootModule().Resources[imageAddr].Primary.Attributes
		var m image.Manifest
		if err := json.Unmarshal([]byte(a["manifest"]), &m); err != nil {
			return fmt.Errorf("manifest %q: %w", a["manifest"], err)
		}
		archive, err := mirrorSHA256(mirror, imageGoVersion)
		if err != nil {
			return err
		}
		h := s.RootModule().Resources["kiln_go_host.clone"].Primary.Attributes
		want := []image.ManifestToolchain{{Version: imageGoVersion, ArchiveSHA256: archive, GoBinarySHA256: h["installed.0.go_binary_sha256"]}}
		if h["installed.0.version"] != imageGoVersion || h["installed.0.archive_sha256"] != archive {
			return fmt.Errorf("the clone's go_host found go%s from archive %s, want go%s from %s",
				h["installed.0.version"], h["installed.0.archive_sha256"], imageGoVersion, archive)
		}
		if m.Fingerprint != a["fingerprint"] || !strings.HasPrefix(a["volume"], m.Name+".") ||
			!strings.HasPrefix(m.OS, "Debian GNU/Linux 12") || m.Kernel == "" || !reflect.DeepEqual(m.Toolchains, want) {
			return fmt.Errorf("manifest = %+v, want the image's name and fingerprint, Debian 12, a kernel, and toolchains %+v", m, want)
		}
		return nil
	}
}

// mirrorSHA256 is the SHA-256 of the mirror's linux/amd64 tarball of go<version>.
func mirrorSHA256(mirror testenv.GoMirror, version string) (string, error) {
	releases, err := gotoolchain.FetchIndex(context.Background(), http.DefaultClient, mirror.IndexURL)
	if err != nil {
		return "", err
	}
	for _, r := range releases {
		if f, ok := r.Archive("linux", "amd64"); ok && r.Version == "go"+version {
			return f.SHA256, nil
		}
	}
	return "", fmt.Errorf("the mirror's index lists no linux/amd64 archive of go%s", version)
}

// firstBootScript is the test bed image's own cloud-init script (scripts/guest-image.sh).
const firstBootScript = "/var/lib/cloud/scripts/per-instance/kiln-first-boot-only"

// checkClone asserts the clone is a clone of the image, not of the VM it was
// baked in: its machine-id and SSH host key were written at its own first
// boot, the bake's login is gone, the manifest inside is the output, and
// bin/go is the baked one, hashing as the manifest says and changed before
// the clone booted (the go_host on it installed nothing). The test bed
// image's own cloud-init script is still there.
func checkClone(signer ssh.Signer, goBinary string) resource.TestCheckFunc {
	return func(s *terraform.State) error {
		const clone = "kiln_libvirt_vm.clone"
		cmd := "awk '/^btime/ {print $2}' /proc/stat; stat -c %Y /etc/machine-id /etc/ssh/ssh_host_ed25519_key.pub; " +
			"cat /etc/machine-id; stat -c %Z " + goBinary + "; sha256sum " + goBinary + " | cut -d' ' -f1; " +
			"getent passwd " + image.BakeUser + " || echo none; test -x " + firstBootScript + " && echo kept || echo removed; " +
			"cat " + image.ManifestPath
		out, err := hostOutput(s, clone, signer, cmd)
		if err != nil {
			return err
		}
		f := strings.SplitN(out, "\n", 9)
		if len(f) != 9 {
			return fmt.Errorf("clone printed %q", out)
		}
		n := make([]int64, 4)
		for i, field := range []string{f[0], f[1], f[2], f[4]} {
			if n[i], err = strconv.ParseInt(field, 10, 64); err != nil {
				return fmt.Errorf("clone printed %q: %w", out, err)
			}
		}
		boot, machineIDTime, hostKeyTime, goTime := n[0], n[1], n[2], n[3]
		machineID, goSHA256, bakeUser, script, manifest := f[3], f[5], f[6], f[7], f[8]
		if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(machineID) || machineIDTime < boot {
			return fmt.Errorf("clone machine-id %q written at %d, the clone booted at %d: want one of its own", machineID, machineIDTime, boot)
		}
		if hostKeyTime < boot {
			return fmt.Errorf("clone's SSH host key written at %d, before it booted at %d", hostKeyTime, boot)
		}
		if bakeUser != "none" {
			return fmt.Errorf("the bake's login is still on the clone: %q", bakeUser)
		}
		if script != "kept" {
			return fmt.Errorf("the base image's cloud-init script %s is %s in the clone: generalizing must keep the image's own scripts", firstBootScript, script)
		}
		if goTime >= boot {
			return fmt.Errorf("clone's bin/go changed at %d, after it booted at %d: it was installed again", goTime, boot)
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
		if len(output.Toolchains) != 1 || output.Toolchains[0].GoBinarySHA256 != goSHA256 {
			return fmt.Errorf("clone's bin/go hashes to %s, the manifest lists %+v", goSHA256, output.Toolchains)
		}
		return nil
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
				// Neither source form.
				Config: provider + `
resource "kiln_image" "go" {
  name = "go"
  libvirt {}
}
`,
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`(?s)Missing Attribute Configuration.*\[source.vm_id,source.base_volume\]`),
			},
			{
				// Both source forms.
				Config: provider + `
resource "kiln_image" "go" {
  name = "go"
  source {
    vm_id       = "builder"
    toolchains  = []
    base_volume = "debian12.qcow2"
  }
  libvirt {}
}
`,
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`(?s)Invalid Attribute Combination.*\[source.vm_id,source.base_volume\]`),
			},
			{
				// Tools the image does not install.
				Config: provider + `
resource "kiln_image" "go" {
  name = "go"
  source {
    base_volume = "debian12.qcow2"
    go {
      versions = ["1.24.4"]
      tools    = ["golang.org/x/tools/cmd/stringer@v0.30.0"]
    }
  }
  libvirt {}
}
`,
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`(?s)Go tools are not baked into images.*source.go.tools`),
			},
			{
				// A base volume with no pool to find it in.
				Config: provider + `
resource "kiln_image" "go" {
  name = "go"
  source {
    base_volume = "debian12.qcow2"
    go {
      versions = ["1.24.4"]
    }
  }
  libvirt {}
}
`,
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`(?s)Missing base pool.*source.base_pool`),
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
