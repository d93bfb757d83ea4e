package provider

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/config"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"
	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/vapi/library"
	"github.com/vmware/govmomi/vim25/mo"

	"github.com/kilnhq/terraform-provider-kiln/internal/image"
	"github.com/kilnhq/terraform-provider-kiln/internal/testenv"
	"github.com/kilnhq/terraform-provider-kiln/internal/vsphere"
)

// imageVsphereConfig renders a source kiln_vsphere_vm, and optionally a
// kiln_image baking it and a linked clone of that image.
type imageVsphereConfig struct {
	bed     testenv.VsphereBed
	keyFile string
	folder  string
	library string
	image   bool
	clone   bool
	// inUse gives the clone the template by a variable, not by the image.
	inUse bool
	// createFirst replaces the image with create_before_destroy.
	createFirst bool
}

const imageVsphereToolchain = `{ version = "1.24.4", archive_sha256 = "%s", go_binary_sha256 = "%s" }`

func (c imageVsphereConfig) String() string {
	b := c.bed
	out := fmt.Sprintf(`
provider "kiln" {
  vsphere {
    server               = %q
    user                 = %q
    password             = %q
    allow_unverified_ssl = true
    datacenter           = %q
  }
  ssh {
    user        = "kiln"
    private_key = file(%q)
  }
}

resource "kiln_vsphere_vm" "src" {
  name       = "go-image-src"
  source     = %q
  cluster    = %q
  num_cpus   = 1
  memory_mib = 512

  customize {
    hostname     = "go-image-src"
    ipv4_address = "10.0.0.5/24"
    ipv4_gateway = "10.0.0.1"
  }
}
`, b.Server, b.User, b.Password, b.Datacenter, c.keyFile, b.Template, b.Cluster)
	if c.image {
		out += fmt.Sprintf(`
resource "kiln_image" "go" {
  name = "go"
  source {
    vm_id      = kiln_vsphere_vm.src.id
    toolchains = [`+imageVsphereToolchain+`]
  }
  vsphere {
    folder = %q
%s  }
%s}
`, strings.Repeat("a", 64), strings.Repeat("b", 64), c.folder, c.libraryLine(), c.lifecycle())
	}
	if c.clone {
		source, snapshot := "kiln_image.go.template_path", "kiln_image.go.snapshot"
		if c.inUse {
			source, snapshot = "var.template_path", `"`+vsphere.ImageSnapshot+`"`
			out += `
variable "template_path" {
  type = string
}
`
		}
		out += fmt.Sprintf(`
resource "kiln_vsphere_vm" "clone" {
  name         = "go-image-clone"
  source       = %s
  linked_clone = true
  snapshot     = %s
  cluster      = %q
  num_cpus     = 1
  memory_mib   = 512

  # The simulator's clone has no guest to report an address.
  wait_for_ip_timeout = "0s"
}
`, source, snapshot, b.Cluster)
	}
	return out
}

func (c imageVsphereConfig) lifecycle() string {
	if !c.createFirst {
		return ""
	}
	return "  lifecycle {\n    create_before_destroy = true\n  }\n"
}

func (c imageVsphereConfig) libraryLine() string {
	if c.library == "" {
		return ""
	}
	return fmt.Sprintf("    content_library = %q\n", c.library)
}

// TestAccImage_vsphere runs kiln_image's vSphere side on govmomi's simulator.
// The simulator has no guest OS, so the bake's generalize step (SSH into the
// guest, the same step TestAccImage_libvirt runs on a real guest) cannot run
// here: the test shows the bake stops at that step, having touched nothing,
// and then takes over a template made by the engine's own template step (what
// a bake does after generalizing: clone, snapshot kiln-base, mark as template,
// record) by import. From there it covers what needs no guest: plan-time
// fingerprint and template path, the template published to a content library,
// read-back, an empty plan, a linked clone from the image's snapshot, a
// destroy refused while that clone remains, the library item deleted out of
// band and published again, a rename out of band planning a replacement, the
// snapshot removed out of band planning a replacement (which the old template,
// still holding the name, does not block at plan time; the bake refuses it
// while it is there, as with create_before_destroy), a template Kiln did not
// bake failing a new image's plan, and destroy, which takes the library item
// with the template.
func TestAccImage_vsphere(t *testing.T) {
	testAccPreCheck(t)
	bed := testenv.Vsphere(t)
	keyFile, _ := writeLoginKey(t, t.TempDir())
	src := imageVsphereConfig{bed: bed, keyFile: keyFile, folder: bed.TemplateFolder}
	img := src
	img.image, img.library = true, bed.Library
	clone := img
	clone.clone = true
	missing := img
	missing.folder = "no-such-folder"
	noLibrary := img
	noLibrary.library = "no-such-library"
	rootFolder := img
	rootFolder.folder = ""
	inUse := src
	inUse.clone, inUse.inUse = true, true
	createFirst := img
	createFirst.createFirst = true

	var fingerprint, templatePath, replanned, itemID, republished string
	pathPattern := regexp.MustCompile(`^/DC0/vm/` + bed.TemplateFolder + `/go-[0-9a-f]{12}$`)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		CheckDestroy:             resource.ComposeTestCheckFunc(checkImageTemplatesGone(bed), checkLibraryEmpty(bed)),
		Steps: []resource.TestStep{
			{Config: src.String()},
			{
				Config:      missing.String(),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`(?s)Cannot bake the template here.*folder = "no-such-folder".*not found`),
			},
			{
				Config:      noLibrary.String(),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`(?s)Cannot publish to the content library.*content_library.*"no-such-library".*not found`),
			},
			{
				// The library's copy of the template goes in the VM folder, under
				// the template's name: the template needs a folder of its own.
				Config:      rootFolder.String(),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`(?s)Content library needs a template folder.*Set vsphere.folder`),
			},
			{
				// The plan knows the template's path; the bake goes to the guest
				// over SSH at its VMware Tools address and stops there (no pinned
				// host key for it), before it shuts anything down.
				Config: img.String(),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(imageAddr, plancheck.ResourceActionCreate),
					plancheck.ExpectKnownValue(imageAddr, tfjsonpath.New("template_path"), knownvalue.StringRegexp(pathPattern)),
					plancheck.ExpectKnownValue(imageAddr, tfjsonpath.New("volume"), knownvalue.Null()),
					plancheck.ExpectUnknownValue(imageAddr, tfjsonpath.New("library_item_id")),
					capturePlanned(imageAddr, map[string]*string{"fingerprint": &fingerprint, "template_path": &templatePath}),
				}},
				ExpectError: regexp.MustCompile(`(?s)Could not bake the image.*host key of 10\.0\.0\.5:22 is not pinned`),
			},
			{
				// Nothing was touched: the source still runs, and no template exists.
				Config: src.String(),
				Check: resource.ComposeTestCheckFunc(
					checkVsphereVM(bed, "/DC0/vm/go-image-src", vmWant{poweredOn: true, cpus: 1, memoryMiB: 512, diskGiB: testenv.TemplateDiskGiB}),
					checkImageTemplatesGone(bed),
				),
			},
			{
				PreConfig:          func() { bakeTemplateStep(t, bed, fingerprint) },
				Config:             img.String(),
				ResourceName:       imageAddr,
				ImportState:        true,
				ImportStateIdFunc:  func(*terraform.State) (string, error) { return templatePath, nil },
				ImportStatePersist: true,
				ImportStateCheck: func(states []*terraform.InstanceState) error {
					// With ImportStatePersist the source VM's state comes too, in
					// no set order: the image is the one with a fingerprint.
					var a map[string]string
					for _, s := range states {
						if _, ok := s.Attributes["fingerprint"]; ok {
							a = s.Attributes
						}
					}
					if a["fingerprint"] != fingerprint || a["snapshot"] != vsphere.ImageSnapshot || a["name"] != "go" || a["vsphere.folder"] != bed.TemplateFolder {
						return fmt.Errorf("imported %v; want fingerprint %s, snapshot %s, name go, folder %s", a, fingerprint, vsphere.ImageSnapshot, bed.TemplateFolder)
					}
					return nil
				},
			},
			{
				// The imported template is the image the configuration names: what
				// import cannot know (the source, the generalize options) is
				// recorded in place, the template is published to the library (import
				// adopts no item), and the plan is empty after.
				Config: img.String(),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(imageAddr, plancheck.ResourceActionUpdate),
					plancheck.ExpectUnknownValue(imageAddr, tfjsonpath.New("library_item_id")),
				}},
				Check: resource.ComposeTestCheckFunc(
					captureAttr(imageAddr, "library_item_id", &itemID),
					checkLibraryItem(bed, &itemID, &templatePath),
				),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(imageAddr, tfjsonpath.New("template_moid"), knownvalue.StringRegexp(regexp.MustCompile(`^vm-[0-9]+$`))),
					statecheck.ExpectKnownValue(imageAddr, tfjsonpath.New("template_uuid"), knownvalue.StringRegexp(regexp.MustCompile(`^[0-9a-f-]{36}$`))),
					statecheck.ExpectKnownValue(imageAddr, tfjsonpath.New("manifest"), knownvalue.StringRegexp(regexp.MustCompile(`"version":"1.24.4"`))),
				},
			},
			{
				// A VM boots from the image as a linked clone of its kiln-base snapshot.
				Config: clone.String(),
				Check: resource.ComposeTestCheckFunc(
					resource.TestCheckResourceAttrPtr("kiln_vsphere_vm.clone", "source", &templatePath),
					resource.TestCheckResourceAttr("kiln_vsphere_vm.clone", "linked_clone", "true"),
					checkVsphereVM(bed, "/DC0/vm/go-image-clone", vmWant{poweredOn: true, cpus: 1, memoryMiB: 512, diskGiB: testenv.TemplateDiskGiB}),
				),
			},
			{
				// The clone still starts from the template's snapshot: destroying
				// the image is refused, naming it.
				Config:          inUse.String(),
				ConfigVariables: config.Variables{"template_path": lateString{&templatePath}},
				ExpectError:     regexp.MustCompile(`(?s)Could not delete the image.*still the base of linked\s+clones\s+go-image-clone`),
			},
			{
				// The clone goes; the refused destroy left the library item alone.
				Config: img.String(),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(imageAddr, plancheck.ResourceActionNoop),
				}},
				Check: checkLibraryItem(bed, &itemID, &templatePath),
			},
			{
				// Turned back into a VM out of band: Kiln will neither destroy
				// that VM nor bake over it, and the plan says so.
				PreConfig:   func() { markTemplate(t, bed, templatePath, false) },
				Config:      img.String(),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`(?s)Cannot bake the template here.*already exists and is not this\s+image's`),
			},
			{
				// Made a template again: nothing to do.
				PreConfig:        func() { markTemplate(t, bed, templatePath, true) },
				Config:           img.String(),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
			},
			{
				// The library item deleted out of band: the template is intact,
				// so the plan publishes it again in place, baking nothing.
				PreConfig: func() { deleteLibraryItem(t, bed, itemID) },
				Config:    img.String(),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(imageAddr, plancheck.ResourceActionUpdate),
					plancheck.ExpectUnknownValue(imageAddr, tfjsonpath.New("library_item_id")),
					plancheck.ExpectKnownValue(imageAddr, tfjsonpath.New("template_path"), knownvalue.StringFunc(func(v string) error {
						if v != templatePath {
							return fmt.Errorf("template_path %q, want %q kept", v, templatePath)
						}
						return nil
					})),
				}},
				Check: resource.ComposeTestCheckFunc(
					captureAttr(imageAddr, "library_item_id", &republished),
					checkLibraryItem(bed, &republished, &templatePath),
					func(*terraform.State) error {
						if republished == itemID {
							return fmt.Errorf("library_item_id still %s, the deleted item", itemID)
						}
						return nil
					},
				),
			},
			{
				Config:           img.String(),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
			},
			{
				// Renamed out of band: the plan replaces it. The renamed template,
				// still Kiln's, goes; the new bake stops at SSH as before.
				PreConfig: func() { renameVM(t, bed, templatePath, "go-renamed") },
				Config:    img.String(),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(imageAddr, plancheck.ResourceActionReplace),
					capturePlanned(imageAddr, map[string]*string{"template_path": &replanned}),
				}},
				ExpectError: regexp.MustCompile(`(?s)Could not bake the image.*is not pinned`),
			},
			{
				// The template again, imported as before, then published.
				PreConfig:          func() { bakeTemplateStep(t, bed, fingerprint) },
				Config:             img.String(),
				ResourceName:       imageAddr,
				ImportState:        true,
				ImportStateIdFunc:  func(*terraform.State) (string, error) { return templatePath, nil },
				ImportStatePersist: true,
			},
			{
				Config: img.String(),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(imageAddr, plancheck.ResourceActionUpdate),
				}},
			},
			{
				// Stripped of its snapshot out of band: the plan replaces the
				// image. The replacement's bake is planned while the old template
				// still holds its name, which is no error: that template carries
				// this image's record. With create_before_destroy the bake runs
				// first and refuses it, before it touches the source.
				PreConfig: func() { stripSnapshot(t, bed, templatePath) },
				Config:    createFirst.String(),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(imageAddr, plancheck.ResourceActionCreateBeforeDestroy),
					plancheck.ExpectKnownValue(imageAddr, tfjsonpath.New("template_path"), knownvalue.StringFunc(func(v string) error {
						if v != templatePath {
							return fmt.Errorf("template_path %q, want %q", v, templatePath)
						}
						return nil
					})),
				}},
				ExpectError: regexp.MustCompile(`(?s)Could not bake the image.*this image's template is still there`),
			},
			{
				// By default the old template goes first, and the bake stops at SSH.
				Config: img.String(),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(imageAddr, plancheck.ResourceActionDestroyBeforeCreate),
				}},
				ExpectError: regexp.MustCompile(`(?s)Could not bake the image.*is not pinned`),
			},
			{
				Config: src.String(),
				Check:  resource.ComposeTestCheckFunc(checkImageTemplatesGone(bed), checkLibraryEmpty(bed)),
			},
			{
				// A template Kiln did not bake holds the image's name: a new
				// image's plan fails, naming the folder.
				PreConfig:   func() { foreignTemplate(t, bed, templatePath) },
				Config:      img.String(),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`(?s)Cannot bake the template here.*folder = .*already exists and is not this\s+image's`),
			},
			{
				PreConfig: func() { destroyVM(t, bed, templatePath) },
				Config:    src.String(),
			},
		},
	})
	if replanned != templatePath {
		t.Errorf("after the rename the plan bakes %q, want the configured path %q back", replanned, templatePath)
	}
}

// capturePlanned records planned string attributes of addr.
func capturePlanned(addr string, into map[string]*string) plancheck.PlanCheck {
	return planCheckFunc(func(_ context.Context, req plancheck.CheckPlanRequest, resp *plancheck.CheckPlanResponse) {
		for _, rc := range req.Plan.ResourceChanges {
			if rc.Address != addr {
				continue
			}
			after, _ := rc.Change.After.(map[string]any)
			for name, dst := range into {
				s, ok := after[name].(string)
				if !ok {
					resp.Error = fmt.Errorf("%s.%s is not planned as a known string: %v", addr, name, after[name])
					return
				}
				*dst = s
			}
			return
		}
		resp.Error = fmt.Errorf("%s is not in the plan", addr)
	})
}

// lateString is a configuration variable whose value a previous step captured.
type lateString struct{ value *string }

func (v lateString) MarshalJSON() ([]byte, error) { return json.Marshal(*v.value) }

type planCheckFunc func(context.Context, plancheck.CheckPlanRequest, *plancheck.CheckPlanResponse)

func (f planCheckFunc) CheckPlan(ctx context.Context, req plancheck.CheckPlanRequest, resp *plancheck.CheckPlanResponse) {
	f(ctx, req, resp)
}

// bakeTemplateStep does what a bake does once the guest is generalized, with
// the engine's own calls: shuts the source down and makes the template.
func bakeTemplateStep(t *testing.T, bed testenv.VsphereBed, fingerprint string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := vsphere.NewClient(vsphere.Config{Server: bed.Server, User: bed.User, Password: bed.Password, AllowUnverifiedSSL: true})
	defer c.Close(ctx)
	if err := c.ShutdownGuest(ctx, "", "/DC0/vm/go-image-src", image.ShutdownGrace); err != nil {
		t.Fatal(err)
	}
	baked := image.Template{Fingerprint: fingerprint, Manifest: image.Manifest{
		Name: image.FullName("go", fingerprint), Fingerprint: fingerprint, OS: "Debian GNU/Linux 12 (bookworm)", Kernel: "6.1.0",
		Toolchains: []image.ManifestToolchain{{Version: "1.24.4", ArchiveSHA256: strings.Repeat("a", 64), GoBinarySHA256: strings.Repeat("b", 64)}},
	}}
	if _, err := c.BakeTemplate(ctx, "", "/DC0/vm/go-image-src", bed.TemplateFolder, image.FullName("go", fingerprint), baked.Record()); err != nil {
		t.Fatal(err)
	}
}

// markTemplate turns the template at path into a VM, or back, as an operator would.
func markTemplate(t *testing.T, bed testenv.VsphereBed, path string, template bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := vsphere.NewClient(vsphere.Config{Server: bed.Server, User: bed.User, Password: bed.Password, AllowUnverifiedSSL: true})
	defer c.Close(ctx)
	err := c.MarkAsTemplate(ctx, "", path)
	if !template {
		err = c.MarkAsVirtualMachine(ctx, "", path, bed.Cluster, "")
	}
	if err != nil {
		t.Fatal(err)
	}
}

// stripSnapshot removes the template's kiln-base snapshot as an operator
// would: vCenter changes no template, so it is a VM for the removal.
func stripSnapshot(t *testing.T, bed testenv.VsphereBed, path string) {
	t.Helper()
	markTemplate(t, bed, path, false)
	withVsphere(t, bed, func(ctx context.Context, f *find.Finder) error {
		vm, err := f.VirtualMachine(ctx, path)
		if err != nil {
			return err
		}
		task, err := vm.RemoveSnapshot(ctx, vsphere.ImageSnapshot, false, nil)
		if err != nil {
			return err
		}
		return task.Wait(ctx)
	})
	markTemplate(t, bed, path, true)
}

// foreignTemplate makes a template at path that Kiln did not bake (a clone
// of the bed's template, with no image record), as another team would.
func foreignTemplate(t *testing.T, bed testenv.VsphereBed, path string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := vsphere.NewClient(vsphere.Config{Server: bed.Server, User: bed.User, Password: bed.Password, AllowUnverifiedSSL: true})
	defer c.Close(ctx)
	if _, err := c.CreateVM(ctx, vsphere.VM{Name: filepath.Base(path), Source: bed.Template, Cluster: bed.Cluster,
		Folder: bed.TemplateFolder, NumCPUs: 1, MemoryMiB: 512}); err != nil {
		t.Fatal(err)
	}
	if err := c.MarkAsTemplate(ctx, "", path); err != nil {
		t.Fatal(err)
	}
}

// destroyVM destroys the VM or template at path, as an operator would.
func destroyVM(t *testing.T, bed testenv.VsphereBed, path string) {
	withVsphere(t, bed, func(ctx context.Context, f *find.Finder) error {
		vm, err := f.VirtualMachine(ctx, path)
		if err != nil {
			return err
		}
		task, err := vm.Destroy(ctx)
		if err != nil {
			return err
		}
		return task.Wait(ctx)
	})
}

// renameVM renames the VM or template at path, as an operator would.
func renameVM(t *testing.T, bed testenv.VsphereBed, path, name string) {
	withVsphere(t, bed, func(ctx context.Context, f *find.Finder) error {
		vm, err := f.VirtualMachine(ctx, path)
		if err != nil {
			return err
		}
		task, err := vm.Rename(ctx, name)
		if err != nil {
			return err
		}
		return task.Wait(ctx)
	})
}

// captureAttr records a string attribute of addr from state.
func captureAttr(addr, name string, into *string) resource.TestCheckFunc {
	return func(s *terraform.State) error {
		rs, ok := s.RootModule().Resources[addr]
		if !ok {
			return fmt.Errorf("%s is not in state", addr)
		}
		*into = rs.Primary.Attributes[name]
		return nil
	}
}

// checkLibraryItem finds the library item *id in the bed's library: a VM
// template named like the template at *templatePath.
func checkLibraryItem(bed testenv.VsphereBed, id, templatePath *string) resource.TestCheckFunc {
	return func(*terraform.State) error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		m, err := bed.Libraries(ctx)
		if err != nil {
			return err
		}
		item, err := m.GetLibraryItem(ctx, *id)
		if err != nil {
			return fmt.Errorf("library item %q: %w", *id, err)
		}
		lib, err := m.GetLibraryByID(ctx, item.LibraryID)
		if err != nil {
			return err
		}
		if want := filepath.Base(*templatePath); item.Name != want || item.Type != library.ItemTypeVMTX || lib.Name != bed.Library {
			return fmt.Errorf("library item %s: %q of type %q in library %q; want %q of type %q in %q",
				*id, item.Name, item.Type, lib.Name, want, library.ItemTypeVMTX, bed.Library)
		}
		return nil
	}
}

// deleteLibraryItem deletes a library item, as an operator would.
func deleteLibraryItem(t *testing.T, bed testenv.VsphereBed, id string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	m, err := bed.Libraries(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.DeleteLibraryItem(ctx, &library.Item{ID: id}); err != nil {
		t.Fatal(err)
	}
}

// checkLibraryEmpty finds no item left in the bed's library.
func checkLibraryEmpty(bed testenv.VsphereBed) resource.TestCheckFunc {
	return func(*terraform.State) error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		m, err := bed.Libraries(ctx)
		if err != nil {
			return err
		}
		lib, err := m.GetLibraryByName(ctx, bed.Library)
		if err != nil {
			return err
		}
		items, err := m.ListLibraryItems(ctx, lib.ID)
		if err != nil {
			return err
		}
		if len(items) > 0 {
			return fmt.Errorf("library %q still holds items %v", bed.Library, items)
		}
		return nil
	}
}

// checkImageTemplatesGone finds no VM or template named go-… left in the bed
// but the test's own source and clone.
func checkImageTemplatesGone(bed testenv.VsphereBed) resource.TestCheckFunc {
	return func(*terraform.State) error {
		return withVsphereErr(bed, func(ctx context.Context, f *find.Finder) error {
			vms, err := f.VirtualMachineList(ctx, "/"+bed.Datacenter+"/vm/...")
			if err != nil {
				return err
			}
			for _, vm := range vms {
				var m mo.VirtualMachine
				if err := vm.Properties(ctx, vm.Reference(), []string{"config.template"}, &m); err != nil {
					return err
				}
				if m.Config.Template && strings.HasPrefix(filepath.Base(vm.InventoryPath), "go-") {
					return fmt.Errorf("template %s still exists", vm.InventoryPath)
				}
			}
			return nil
		})
	}
}
