package image

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/kilnhq/terraform-provider-kiln/internal/remote"
	"github.com/kilnhq/terraform-provider-kiln/internal/testenv"
	"github.com/kilnhq/terraform-provider-kiln/internal/vsphere"
)

// recordingGeneralizer stands in for the SSH step, which the simulator's VMs
// (no guest OS) cannot answer: it records where the bake would have dialled.
type recordingGeneralizer struct {
	calls []remote.Config
	err   error
}

func (g *recordingGeneralizer) Generalize(_ context.Context, _ string, cfg remote.Config, spec Spec) (Manifest, error) {
	g.calls = append(g.calls, cfg)
	m := Manifest{Name: FullName(spec.Name, spec.Fingerprint), Fingerprint: spec.Fingerprint, OS: "Debian GNU/Linux 12", Kernel: "6.1.0"}
	for _, tc := range spec.Toolchains {
		m.Toolchains = append(m.Toolchains, ManifestToolchain(tc))
	}
	return m, g.err
}

// vsphereSource clones the bed's template into a running VM with a guest IP,
// as kiln_vsphere_vm leaves it.
func vsphereSource(t *testing.T, ctx context.Context, c *vsphere.Client, bed testenv.VsphereBed, name string) vsphere.VM {
	t.Helper()
	vm, err := c.CreateVM(ctx, vsphere.VM{
		Name: name, Source: bed.Template, Cluster: bed.Cluster, PowerOn: true, NumCPUs: 1, MemoryMiB: 512,
		Customization: &vsphere.Customization{Hostname: name, IPv4Address: "10.0.0.7/24", IPv4Gateway: "10.0.0.1"},
		IPWait:        time.Minute,
	})
	if err != nil {
		t.Fatalf("source VM: %v", err)
	}
	return vm
}

func vsphereBaker(t *testing.T) (*VsphereBaker, *recordingGeneralizer, testenv.VsphereBed, context.Context) {
	bed := testenv.Vsphere(t)
	c := vsphere.NewClient(vsphere.Config{Server: bed.Server, User: bed.User, Password: bed.Password, AllowUnverifiedSSL: true, Datacenter: bed.Datacenter})
	t.Cleanup(func() { c.Close(context.Background()) })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	g := &recordingGeneralizer{}
	return &VsphereBaker{Vsphere: c, Generalizer: g}, g, bed, ctx
}

func bakeSpec(vm vsphere.VM) Spec {
	in := sampleInputs()
	return Spec{Name: "go", Fingerprint: Fingerprint(in), SourceVM: vm.UUID, Toolchains: in.Toolchains,
		Generalize: in.Generalize, SourceAfterBake: SourceStopped,
		Defaults: remote.Defaults{User: "kiln"}}
}

// A bake generalizes the source at its guest IP, shuts it down, and leaves a
// template in the folder with snapshot kiln-base and Kiln's record; read,
// drift and delete see that template and no other.
func TestVsphereBake(t *testing.T) {
	b, g, bed, ctx := vsphereBaker(t)
	src := vsphereSource(t, ctx, b.Vsphere, bed, "go-src")
	spec := bakeSpec(src)

	base, err := b.BaseIdentity(ctx, "", src.UUID)
	if err != nil {
		t.Fatal(err)
	}
	tpl, err := b.Vsphere.FindTemplate(ctx, "", bed.Template)
	if err != nil {
		t.Fatal(err)
	}
	if base != "vsphere-template:"+tpl.UUID {
		t.Errorf("base identity = %q, want the UUID of the template the source was cloned from (%s)", base, tpl.UUID)
	}

	img, err := b.Bake(ctx, spec, "", bed.TemplateFolder, "")
	if err != nil {
		t.Fatalf("bake: %v", err)
	}
	if len(g.calls) != 1 || g.calls[0].Host != "10.0.0.7" {
		t.Errorf("generalize dialled %+v, want once at the guest IP 10.0.0.7", g.calls)
	}
	wantPath := "/DC0/vm/" + bed.TemplateFolder + "/" + FullName("go", spec.Fingerprint)
	if img.Path != wantPath || !img.Template || img.Snapshot != vsphere.ImageSnapshot || img.UUID == "" || img.MOID == "" {
		t.Errorf("baked %+v, want template %s with snapshot %s", img.ImageTemplate, wantPath, vsphere.ImageSnapshot)
	}
	after, err := b.Vsphere.ReadVM(ctx, "", src.UUID)
	if err != nil || after.PowerOn {
		t.Errorf("source after a bake with source_after_bake=stopped: %+v, %v; want it kept, powered off", after, err)
	}

	got, err := b.Read(ctx, "", img.UUID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Fingerprint != spec.Fingerprint || len(got.Manifest.Toolchains) != 2 || got.Path != wantPath {
		t.Errorf("read back %+v, want fingerprint %s, 2 toolchains", got, spec.Fingerprint)
	}
	if byPath, err := b.Read(ctx, "", wantPath); err != nil || byPath.UUID != img.UUID {
		t.Errorf("read by path: %+v, %v", byPath, err)
	}

	// The name is the image's own: the plan lets a replacement through, but
	// the same image again is refused, and nothing is generalized.
	name := FullName("go", spec.Fingerprint)
	if err := b.CheckTemplateName(ctx, "", bed.TemplateFolder, name, spec.Fingerprint); !errors.Is(err, ErrImageThere) {
		t.Errorf("name check against the image's own template: %v, want ErrImageThere", err)
	}
	other := strings.Repeat("f", len(spec.Fingerprint))
	if err := b.CheckTemplateName(ctx, "", bed.TemplateFolder, name, other); !errors.Is(err, vsphere.ErrTaken) {
		t.Errorf("name check of another fingerprint: %v, want ErrTaken", err)
	}
	if err := b.CheckTemplateName(ctx, "", bed.OtherFolder, name, spec.Fingerprint); err != nil {
		t.Errorf("name check in a folder without it: %v", err)
	}
	if err := b.CheckTemplateName(ctx, "", "no-such-folder", name, spec.Fingerprint); !errors.Is(err, vsphere.ErrNotFound) {
		t.Errorf("name check in a missing folder: %v, want ErrNotFound", err)
	}
	if err := b.CheckTemplateName(ctx, "", bed.TemplateFolder, bed.TemplateName, spec.Fingerprint); !errors.Is(err, vsphere.ErrTaken) {
		t.Errorf("name check against the bed's own template: %v, want ErrTaken", err)
	}
	src2 := vsphereSource(t, ctx, b.Vsphere, bed, "go-src-2")
	spec2 := bakeSpec(src2)
	if _, err := b.Bake(ctx, spec2, "", bed.TemplateFolder, ""); !errors.Is(err, ErrImageThere) || !strings.Contains(err.Error(), "create_before_destroy") {
		t.Errorf("second bake under the same name: %v, want it refused as this image's template", err)
	}
	if len(g.calls) != 1 {
		t.Errorf("the refused bake generalized its source (%d calls)", len(g.calls))
	}

	// A template without Kiln's record is not read as an image, nor deleted.
	if _, err := b.Read(ctx, "", bed.Template); !errors.Is(err, ErrNoRecord) {
		t.Errorf("read of the bed's own template: %v, want ErrNoRecord", err)
	}
	foreign := img
	foreign.UUID = tpl.UUID
	if err := b.Delete(ctx, "", foreign, false); !errors.Is(err, vsphere.ErrLeftAlone) {
		t.Errorf("delete of a template Kiln did not bake: %v, want ErrLeftAlone", err)
	}
	if _, err := b.Vsphere.FindTemplate(ctx, "", bed.Template); err != nil {
		t.Errorf("the bed's template after the refused delete: %v", err)
	}

	// Turned back into a VM out of band: read shows it, and Kiln leaves it to
	// whoever did that.
	if err := b.Vsphere.MarkAsVirtualMachine(ctx, "", img.UUID, bed.Cluster, ""); err != nil {
		t.Fatal(err)
	}
	if got, err := b.Read(ctx, "", img.UUID); err != nil || got.Template {
		t.Errorf("read of the template turned into a VM: %+v, %v", got.ImageTemplate, err)
	}
	if err := b.Delete(ctx, "", img, false); !errors.Is(err, vsphere.ErrLeftAlone) {
		t.Errorf("delete of the template turned into a VM: %v, want ErrLeftAlone", err)
	}
	if err := b.CheckTemplateName(ctx, "", bed.TemplateFolder, name, spec.Fingerprint); !errors.Is(err, vsphere.ErrTaken) {
		t.Errorf("name check against the template turned into a VM: %v, want ErrTaken", err)
	}
	if err := b.Vsphere.MarkAsTemplate(ctx, "", img.UUID); err != nil {
		t.Fatal(err)
	}

	// A linked clone of the template holds it, unless forced.
	if _, err := b.Vsphere.CreateVM(ctx, vsphere.VM{Name: "go-linked", Source: FullName("go", spec.Fingerprint), LinkedClone: true,
		Snapshot: vsphere.ImageSnapshot, Cluster: bed.Cluster, NumCPUs: 1, MemoryMiB: 512}); err != nil {
		t.Fatal(err)
	}
	if err := b.Delete(ctx, "", img, false); err == nil || !strings.Contains(err.Error(), "linked clones go-linked") {
		t.Errorf("delete with a linked clone left: %v, want it refused, naming the clone", err)
	}
	if err := b.Delete(ctx, "", img, true); err != nil {
		t.Fatalf("forced delete: %v", err)
	}
	if _, err := b.Read(ctx, "", img.UUID); !errors.Is(err, vsphere.ErrNotFound) {
		t.Errorf("read after delete: %v, want ErrNotFound", err)
	}
	if err := b.Delete(ctx, "", img, false); err != nil {
		t.Errorf("delete of a template already gone: %v", err)
	}
}

// source_after_bake = "deleted" removes the source; a failed generalize leaves
// it running and makes no template; an unprovisioned source bakes nothing.
func TestVsphereBakeSource(t *testing.T) {
	b, g, bed, ctx := vsphereBaker(t)
	src := vsphereSource(t, ctx, b.Vsphere, bed, "go-src")
	spec := bakeSpec(src)

	unprovisioned := spec
	unprovisioned.Toolchains = nil
	if _, err := b.Bake(ctx, unprovisioned, "", "", ""); !errors.Is(err, ErrNotProvisioned) {
		t.Errorf("unprovisioned source: %v, want ErrNotProvisioned", err)
	}

	g.err = errors.New("sudo: a password is required")
	if _, err := b.Bake(ctx, spec, "", "", ""); err == nil || !strings.Contains(err.Error(), "sudo") {
		t.Errorf("failed generalize: %v", err)
	}
	if vm, err := b.Vsphere.ReadVM(ctx, "", src.UUID); err != nil || !vm.PowerOn {
		t.Errorf("source after a failed generalize: %+v, %v; want it running", vm, err)
	}
	if err := b.Vsphere.CheckFree(ctx, "", "", FullName("go", spec.Fingerprint)); err != nil {
		t.Errorf("a failed generalize left a template: %v", err)
	}

	g.err = nil
	spec.SourceAfterBake = SourceDeleted
	img, err := b.Bake(ctx, spec, "", "", "")
	if err != nil {
		t.Fatalf("bake: %v", err)
	}
	if img.Path != "/DC0/vm/"+FullName("go", spec.Fingerprint) {
		t.Errorf("template path %q, want it in the datacenter's VM folder", img.Path)
	}
	if _, err := b.Vsphere.ReadVM(ctx, "", src.UUID); !errors.Is(err, vsphere.ErrNotFound) {
		t.Errorf("source after source_after_bake=deleted: %v, want it gone", err)
	}
}

// With a content library, the bake publishes the template as a VM-template
// item of the same name; delete removes that item (the one Kiln recorded)
// with the template, and an item Kiln did not publish blocks a bake.
func TestVsphereBakeLibrary(t *testing.T) {
	b, _, bed, ctx := vsphereBaker(t)
	src := vsphereSource(t, ctx, b.Vsphere, bed, "go-src")
	spec := bakeSpec(src)
	name := FullName("go", spec.Fingerprint)

	if _, err := b.Bake(ctx, spec, "", "", bed.Library); !errors.Is(err, ErrLibraryFolder) {
		t.Errorf("bake to a library with the template in the VM folder: %v, want ErrLibraryFolder", err)
	}
	if _, err := b.Bake(ctx, spec, "", bed.TemplateFolder, "no-such-library"); !errors.Is(err, vsphere.ErrNotFound) ||
		!strings.Contains(err.Error(), `content library "no-such-library"`) {
		t.Errorf("bake to an unknown library: %v, want not found, naming it", err)
	}

	img, err := b.Bake(ctx, spec, "", bed.TemplateFolder, bed.Library)
	if err != nil {
		t.Fatalf("bake: %v", err)
	}
	lib, err := b.Vsphere.FindLibrary(ctx, bed.Library)
	if err != nil {
		t.Fatal(err)
	}
	item := img.LibraryItem
	if item.ID == "" || item.Name != name || item.LibraryID != lib.ID || item.Type != "vm-template" {
		t.Errorf("library item %+v, want a vm-template named %s in library %s", item, name, lib.ID)
	}
	if byID, err := b.Vsphere.FindLibrary(ctx, lib.ID); err != nil || byID.ID != lib.ID {
		t.Errorf("library by ID: %+v, %v", byID, err)
	}
	if found, err := b.Vsphere.FindLibraryItem(ctx, lib.ID, name); err != nil || found.ID != item.ID {
		t.Errorf("item by name: %+v, %v; want %s", found, err, item.ID)
	}
	// The template was a VM for the copy (vCenter copies no template to a
	// library), and is the image's template again, snapshot and record kept.
	if got, err := b.Read(ctx, "", img.UUID); err != nil || !got.Template || got.Snapshot != vsphere.ImageSnapshot || got.Fingerprint != spec.Fingerprint {
		t.Errorf("template after the publish: %+v, %v; want a template with its snapshot and record", got, err)
	}
	// vCenter's copy of the item's template is in the inventory, in the VM folder.
	if copied, err := b.Vsphere.FindTemplate(ctx, "", "/DC0/vm/"+name); err != nil || !copied.IsTemplate {
		t.Errorf("the library's copy of the template: %+v, %v", copied, err)
	}

	// The same name again, in another folder: the library already holds it.
	src2 := vsphereSource(t, ctx, b.Vsphere, bed, "go-src-2")
	if _, err := b.Bake(ctx, bakeSpec(src2), "", bed.OtherFolder, bed.Library); err == nil || !strings.Contains(err.Error(), "already holds an item") {
		t.Errorf("second bake to the library: %v, want it refused", err)
	}

	// Publishing again (the item deleted out of band) makes a new item.
	if err := b.Vsphere.DeleteLibraryItem(ctx, item.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Vsphere.ReadLibraryItem(ctx, item.ID); !errors.Is(err, vsphere.ErrNotFound) {
		t.Errorf("item after delete: %v, want ErrNotFound", err)
	}
	again, err := b.Publish(ctx, "", img, lib.ID)
	if err != nil || again.ID == "" || again.ID == item.ID || again.Name != name {
		t.Fatalf("publish again: %+v, %v", again, err)
	}

	// Delete with the old item's ID: the template goes, the new item (not
	// the recorded one) stays.
	if err := b.Delete(ctx, "", img, false); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if _, err := b.Vsphere.ReadLibraryItem(ctx, again.ID); err != nil {
		t.Errorf("an item Kiln did not record was deleted: %v", err)
	}
	img.LibraryItem = again
	if err := b.Delete(ctx, "", img, false); err != nil {
		t.Fatalf("delete with the template gone: %v", err)
	}
	if _, err := b.Vsphere.ReadLibraryItem(ctx, again.ID); !errors.Is(err, vsphere.ErrNotFound) {
		t.Errorf("recorded item after delete: %v, want it gone", err)
	}
	if err := b.Vsphere.CheckFree(ctx, "", "", name); err != nil {
		t.Errorf("the library's copy of the template after the item's delete: %v", err)
	}
}

// A template is this image's when it is still a template and carries Kiln's
// record of the same fingerprint, with or without its snapshot.
func TestIsImage(t *testing.T) {
	fp := Fingerprint(sampleInputs())
	record := Template{Fingerprint: fp}.Record()
	for _, c := range []struct {
		name string
		t    vsphere.ImageTemplate
		fp   string
		want bool
	}{
		{"this image's", vsphere.ImageTemplate{Template: true, Snapshot: vsphere.ImageSnapshot, Record: record}, fp, true},
		{"snapshot lost", vsphere.ImageTemplate{Template: true, Record: record}, fp, true},
		{"another fingerprint", vsphere.ImageTemplate{Template: true, Record: record}, strings.Repeat("f", len(fp)), false},
		{"no fingerprint asked", vsphere.ImageTemplate{Template: true, Record: Template{}.Record()}, "", false},
		{"turned into a VM", vsphere.ImageTemplate{Record: record}, fp, false},
		{"no record", vsphere.ImageTemplate{Template: true}, fp, false},
		{"a record Kiln did not write", vsphere.ImageTemplate{Template: true, Record: "fingerprint=" + fp}, fp, false},
	} {
		if got := isImage(c.t, c.fp); got != c.want {
			t.Errorf("%s: isImage = %v, want %v", c.name, got, c.want)
		}
	}
}
