package image

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"strings"
	"time"

	"github.com/kilnhq/terraform-provider-kiln/internal/vsphere"
)

// VsphereBaker bakes images into templates on one vCenter.
type VsphereBaker struct {
	Vsphere     *vsphere.Client
	Generalizer Generalizer
	// Log receives progress messages; nil discards them.
	Log *slog.Logger
}

// Template is an image baked into a vSphere template.
type Template struct {
	vsphere.ImageTemplate
	// Fingerprint and Manifest are the record Kiln wrote on the template.
	Fingerprint string
	Manifest    Manifest
	BakeSeconds float64
	// LibraryItem is the content library copy Kiln published; its ID is empty
	// when there is none.
	LibraryItem vsphere.LibraryItem
}

// templateRecord is what a baked template carries (vsphere.ImageTemplate.Record):
// the image it was baked as.
type templateRecord struct {
	Fingerprint string   `json:"fingerprint"`
	Manifest    Manifest `json:"manifest"`
}

// Record is the record t carries, as Kiln wrote it.
func (t Template) Record() string {
	doc, err := json.Marshal(templateRecord{Fingerprint: t.Fingerprint, Manifest: t.Manifest})
	if err != nil {
		panic(err) // strings only
	}
	return string(doc)
}

// ErrNoRecord is a template without the record Kiln writes on the templates it bakes.
var ErrNoRecord = errors.New("it carries no image record: it is not a template kiln_image baked")

// carries reports whether t carries Kiln's record of image fingerprint.
func carries(t vsphere.ImageTemplate, fingerprint string) bool {
	var record templateRecord
	return fingerprint != "" && json.Unmarshal([]byte(t.Record), &record) == nil && record.Fingerprint == fingerprint
}

// isImage reports whether t is a template of image fingerprint: still a
// template, and carrying Kiln's record of that fingerprint. Its snapshot is
// not asked for: a template that lost it is still the image, being replaced.
func isImage(t vsphere.ImageTemplate, fingerprint string) bool {
	return t.Template && carries(t, fingerprint)
}

// ErrImageThere is a template of the image in the way of its bake: the
// image's name in the folder is held by a template carrying Kiln's record of
// the same fingerprint.
var ErrImageThere = errors.New("this image's template is still there (it carries Kiln's record of this fingerprint)")

// CheckTemplateName checks that folder exists and can take the template of
// image fingerprint as name. A template of that image there (see isImage)
// fails wrapping ErrImageThere: the caller tells it from anything else of
// that name, which fails wrapping vsphere.ErrTaken.
func (b *VsphereBaker) CheckTemplateName(ctx context.Context, datacenter, folder, name, fingerprint string) error {
	t, found, err := b.Vsphere.Occupant(ctx, datacenter, folder, name)
	switch {
	case err != nil || !found:
		return err
	case isImage(t, fingerprint):
		return fmt.Errorf("%q: %w", t.Path, ErrImageThere)
	}
	return fmt.Errorf("%q %w", t.Path, vsphere.ErrTaken)
}

func (b *VsphereBaker) log(ctx context.Context, msg string, args ...any) {
	if b.Log != nil {
		b.Log.InfoContext(ctx, msg, args...)
	}
}

// BaseIdentity identifies the template the source VM was cloned from (by its
// UUID), or the VM itself when nothing records a template.
func (b *VsphereBaker) BaseIdentity(ctx context.Context, datacenter, vmID string) (string, error) {
	vm, err := b.Vsphere.ReadVM(ctx, datacenter, vmID)
	if err != nil {
		return "", err
	}
	if vm.Source == "" {
		return "vsphere-vm:" + vm.UUID, nil
	}
	src, err := b.Vsphere.FindTemplate(ctx, datacenter, vm.Source)
	if errors.Is(err, vsphere.ErrNotFound) {
		return "vsphere-template-path:" + vm.Source, nil
	}
	if err != nil {
		return "", fmt.Errorf("template VM %q was cloned from: %w", vm.Name, err)
	}
	return "vsphere-template:" + src.UUID, nil
}

// Bake generalizes the running source VM over SSH (at its guest IP address),
// shuts it down through VMware Tools, and clones it into a template named
// FullName in folder, with snapshot vsphere.ImageSnapshot; with a library,
// the template is then published to it (see Publish). Anything already of
// that name in folder is left alone and fails the bake, a template of this
// same image too (ErrImageThere). A publish that fails returns the template
// made with the error.
func (b *VsphereBaker) Bake(ctx context.Context, spec Spec, datacenter, folder, library string) (Template, error) {
	start := time.Now()
	if len(spec.Toolchains) == 0 {
		return Template{}, ErrNotProvisioned
	}
	vm, err := b.Vsphere.ReadVM(ctx, datacenter, spec.SourceVM)
	if err != nil {
		return Template{}, fmt.Errorf("source VM: %w", err)
	}
	if !vm.PowerOn {
		return Template{}, fmt.Errorf("source VM %q is powered off: the image is baked from a running, provisioned host", vm.Name)
	}
	name := FullName(spec.Name, spec.Fingerprint)
	if err := b.CheckTemplateName(ctx, datacenter, folder, name, spec.Fingerprint); errors.Is(err, ErrImageThere) {
		// Not adopted: with create_before_destroy it is the template of the
		// image being replaced (same UUID, same record), which that image's
		// destroy deletes right after this bake.
		return Template{}, fmt.Errorf("%w: Kiln neither bakes over it nor adopts it. A replacement destroys it before the bake, "+
			"unless create_before_destroy is set (remove that setting from this image); a template no state records can be imported", err)
	} else if err != nil {
		return Template{}, err
	}
	if library != "" {
		if strings.Trim(folder, "/") == LibraryFolder {
			return Template{}, ErrLibraryFolder
		}
		if _, err := b.CheckPublish(ctx, datacenter, library, name, ""); err != nil {
			return Template{}, err
		}
	}
	cfg := sshConfig(spec, vm.DefaultIP, 0, "")
	if cfg.Host == "" {
		return Template{}, fmt.Errorf("source VM %q has no IP address reported by VMware Tools: the bake generalizes it over SSH", vm.Name)
	}
	manifest, err := b.Generalizer.Generalize(ctx, vm.Name, cfg, spec)
	if err != nil {
		return Template{}, err
	}
	if err := b.Vsphere.ShutdownGuest(ctx, datacenter, vm.UUID, ShutdownGrace); err != nil {
		return Template{}, err
	}
	img := Template{Fingerprint: spec.Fingerprint, Manifest: manifest}
	if img.ImageTemplate, err = b.Vsphere.BakeTemplate(ctx, datacenter, vm.UUID, folder, name, img.Record()); err != nil {
		return Template{}, err
	}
	if library != "" {
		if img.LibraryItem, err = b.Publish(ctx, datacenter, img, library); err != nil {
			return img, fmt.Errorf("template %q baked, but: %w", img.Path, err)
		}
	}
	if spec.SourceAfterBake == SourceDeleted {
		b.log(ctx, "deleting the source VM", "vm", vm.Name)
		if err := b.Vsphere.DeleteVM(ctx, datacenter, vm.UUID); err != nil {
			return img, fmt.Errorf("template %q baked, but deleting source VM %q failed: %w", img.Path, vm.Name, err)
		}
	}
	img.BakeSeconds = time.Since(start).Seconds()
	b.log(ctx, "template baked", "template", img.Path, "seconds", img.BakeSeconds)
	return img, nil
}

// LibraryFolder is where vCenter's copy of a library item's template goes in
// the inventory: the datacenter's VM folder. vCenter shows that copy there
// under the item's name, the name of the image's template, and two VMs of one
// name cannot share a folder: the image's template must be in another folder.
const LibraryFolder = ""

// ErrLibraryFolder is a bake to a library with the template in LibraryFolder.
var ErrLibraryFolder = errors.New("a template published to a content library needs a folder of its own: vCenter keeps the library's copy, " +
	"named as the template, in the datacenter's VM folder")

// CheckPublish finds the content library (by name or ID) and checks that
// neither it nor LibraryFolder holds anything named name yet, but the item
// replaced (an ID, or "") and its copy, which are deleted before a publish.
func (b *VsphereBaker) CheckPublish(ctx context.Context, datacenter, library, name, replaced string) (vsphere.Library, error) {
	lib, err := b.Vsphere.FindLibrary(ctx, library)
	if err != nil {
		return vsphere.Library{}, err
	}
	if item, err := b.Vsphere.FindLibraryItem(ctx, lib.ID, name); err == nil && item.ID != replaced {
		return vsphere.Library{}, fmt.Errorf("content library %q already holds an item %q (%s), which is not this image's: delete it", lib.Name, name, item.ID)
	} else if err != nil && !errors.Is(err, vsphere.ErrNotFound) {
		return vsphere.Library{}, err
	}
	if replaced != "" {
		return lib, nil
	}
	if err := b.Vsphere.CheckFree(ctx, datacenter, LibraryFolder, name); err != nil {
		return vsphere.Library{}, fmt.Errorf("the library's copy of the template goes in the datacenter's VM folder: %w", err)
	}
	return lib, nil
}

// Publish copies the image's template t into the content library (by name
// or ID) as a VM-template item of the template's name.
func (b *VsphereBaker) Publish(ctx context.Context, datacenter string, t Template, library string) (vsphere.LibraryItem, error) {
	name := path.Base(t.Path)
	lib, err := b.CheckPublish(ctx, datacenter, library, name, "")
	if err != nil {
		return vsphere.LibraryItem{}, err
	}
	item, err := b.Vsphere.PublishTemplate(ctx, datacenter, t.UUID, lib.ID, LibraryFolder, name,
		"Golden image "+t.Fingerprint+", baked by Kiln's kiln_image.")
	if err != nil {
		return vsphere.LibraryItem{}, err
	}
	b.log(ctx, "template published", "template", t.Path, "library", lib.Name, "item", item.ID)
	return item, nil
}

// TemplatePath is where Bake puts the image's template: in folder (a path
// below the VM folder of the datacenter at datacenterPath).
func TemplatePath(datacenterPath, folder, name, fingerprint string) string {
	return path.Join(datacenterPath, "vm", folder, FullName(name, fingerprint))
}

// Read reads the template id (UUID or inventory path) back with its record;
// vsphere.ErrNotFound when it is gone, ErrNoRecord when it is not Kiln's.
func (b *VsphereBaker) Read(ctx context.Context, datacenter, id string) (Template, error) {
	t, err := b.Vsphere.ReadImageTemplate(ctx, datacenter, id)
	if err != nil {
		return Template{}, err
	}
	if t.Record == "" {
		return Template{}, fmt.Errorf("%q: %w", t.Path, ErrNoRecord)
	}
	var record templateRecord
	if err := json.Unmarshal([]byte(t.Record), &record); err != nil {
		return Template{}, fmt.Errorf("%q: its image record: %w", t.Path, err)
	}
	return Template{ImageTemplate: t, Fingerprint: record.Fingerprint, Manifest: record.Manifest}, nil
}

// Delete destroys the template while it is still the one Kiln baked (a
// template carrying known's fingerprint), refusing while Kiln's linked clones
// of it remain unless force. Before the template goes, the library item
// known.LibraryItem.ID is deleted: Kiln records the ID of the item it
// published, and no other.
func (b *VsphereBaker) Delete(ctx context.Context, datacenter string, known Template, force bool) error {
	deleteItem := func() error {
		if known.LibraryItem.ID == "" {
			return nil
		}
		return b.Vsphere.DeleteLibraryItem(ctx, known.LibraryItem.ID)
	}
	t, err := b.Vsphere.ReadImageTemplate(ctx, datacenter, known.UUID)
	if errors.Is(err, vsphere.ErrNotFound) {
		return deleteItem()
	}
	if err != nil {
		return err
	}
	clones, err := b.Vsphere.LinkedClonesOf(ctx, datacenter, t)
	if err != nil {
		return err
	}
	if len(clones) > 0 && !force {
		return fmt.Errorf("template %q is still the base of linked clones %s: destroy those first, or set force_destroy", t.Path, strings.Join(clones, ", "))
	}
	if err := deleteItem(); err != nil {
		return err
	}
	return b.Vsphere.DeleteImageTemplate(ctx, datacenter, known.UUID, func(got vsphere.ImageTemplate) error {
		if !carries(got, known.Fingerprint) {
			return fmt.Errorf("it no longer carries the record of image %s", known.Fingerprint)
		}
		return nil
	})
}
