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
// FullName in folder, with snapshot vsphere.ImageSnapshot. A template already
// there is left alone and fails the bake.
func (b *VsphereBaker) Bake(ctx context.Context, spec Spec, datacenter, folder string) (Template, error) {
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
	if err := b.Vsphere.CheckFree(ctx, datacenter, folder, name); err != nil {
		return Template{}, err
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
// of it remain unless force.
func (b *VsphereBaker) Delete(ctx context.Context, datacenter string, known Template, force bool) error {
	t, err := b.Vsphere.ReadImageTemplate(ctx, datacenter, known.UUID)
	if errors.Is(err, vsphere.ErrNotFound) {
		return nil
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
	return b.Vsphere.DeleteImageTemplate(ctx, datacenter, known.UUID, func(got vsphere.ImageTemplate) error {
		var record templateRecord
		if got.Record == "" || json.Unmarshal([]byte(got.Record), &record) != nil || record.Fingerprint != known.Fingerprint {
			return fmt.Errorf("it no longer carries the record of image %s", known.Fingerprint)
		}
		return nil
	})
}
