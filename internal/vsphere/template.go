package vsphere

import (
	"context"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/vmware/govmomi/fault"
	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/view"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// ImageSnapshot is the snapshot a baked template carries, for linked clones.
const ImageSnapshot = "kiln-base"

// keyImage holds the record of the image a template was baked as: written by
// Kiln when it makes the template, it is what tells Kiln's templates apart.
const keyImage = "kiln.image"

// ImageTemplate is a template baked from a VM, as read back.
type ImageTemplate struct {
	// Path is the template's inventory path.
	Path, MOID, UUID string
	// Template is false when the template was turned back into a VM.
	Template bool
	// Snapshot is ImageSnapshot when the template still has it, else "".
	Snapshot string
	// Record is what Kiln wrote under keyImage; "" on a template Kiln did not make.
	Record string
}

// ShutdownGuest shuts the guest down through VMware Tools and waits, at most
// grace, for the VM to power off. Unlike a delete, it never powers the VM off
// hard: a disk cut off mid-write must not become an image.
func (c *Client) ShutdownGuest(ctx context.Context, datacenter, id string, grace time.Duration) error {
	i, err := c.inventory(ctx, datacenter)
	if err != nil {
		return err
	}
	vm, err := i.findVM(ctx, id)
	if err != nil {
		return err
	}
	current, err := c.read(ctx, i, vm)
	if err != nil {
		return err
	}
	if !current.PowerOn {
		return nil
	}
	c.log(ctx, "shutting guest down", "vm", current.Name)
	if err := vm.ShutdownGuest(ctx); err != nil {
		return fmt.Errorf("shut VM %q down through VMware Tools (Kiln does not power a source off hard: a write cut short would be baked): %w", current.Name, err)
	}
	graceCtx, cancel := context.WithTimeout(ctx, grace)
	defer cancel()
	if err := vm.WaitForPowerState(graceCtx, types.VirtualMachinePowerStatePoweredOff); err != nil {
		return fmt.Errorf("VM %q did not power off within %s of the guest shutdown: %w", current.Name, grace, err)
	}
	return nil
}

// BakeTemplate clones the powered-off VM source into folder (a path below the
// datacenter's VM folder, "" for that folder) as name, takes ImageSnapshot of
// the clone, marks it as a template, and records record on it. A clone left
// half made is destroyed.
func (c *Client) BakeTemplate(ctx context.Context, datacenter, source, folder, name, record string) (ImageTemplate, error) {
	i, err := c.inventory(ctx, datacenter)
	if err != nil {
		return ImageTemplate{}, err
	}
	dest, err := i.folder(ctx, folder)
	if err != nil {
		return ImageTemplate{}, err
	}
	target := dest.InventoryPath + "/" + name
	if _, err := i.f.VirtualMachine(ctx, target); err == nil {
		return ImageTemplate{}, fmt.Errorf("%q %w", target, ErrTaken)
	}
	src, err := i.findVM(ctx, source)
	if err != nil {
		return ImageTemplate{}, fmt.Errorf("source VM: %w", err)
	}
	spec := types.VirtualMachineCloneSpec{
		Config: &types.VirtualMachineConfigSpec{ExtraConfig: []types.BaseOptionValue{&types.OptionValue{Key: keyImage, Value: record}}},
	}
	c.log(ctx, "cloning the source VM to a template", "source", source, "template", target)
	task, err := src.Clone(ctx, dest, name, spec)
	if err != nil {
		return ImageTemplate{}, fmt.Errorf("clone %q to %q: %w", source, target, err)
	}
	info, err := task.WaitForResult(ctx)
	if err != nil {
		return ImageTemplate{}, fmt.Errorf("clone %q to %q: %w", source, target, err)
	}
	ref, ok := info.Result.(types.ManagedObjectReference)
	if !ok {
		return ImageTemplate{}, fmt.Errorf("clone %q to %q: the task returned no VM", source, target)
	}
	clone := object.NewVirtualMachine(i.vc, ref)
	clone.InventoryPath = target
	if err := finishTemplate(ctx, clone); err != nil {
		cleanup, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		if task, derr := clone.Destroy(cleanup); derr != nil {
			return ImageTemplate{}, fmt.Errorf("%w (destroying the half-made clone failed too: %v)", err, derr)
		} else if derr := waitTask(cleanup, task, "destroy the half-made clone"); derr != nil {
			return ImageTemplate{}, fmt.Errorf("%w (%v)", err, derr)
		}
		return ImageTemplate{}, err
	}
	return readTemplate(ctx, i, clone)
}

// finishTemplate snapshots the clone and marks it as a template.
func finishTemplate(ctx context.Context, clone *object.VirtualMachine) error {
	task, err := clone.CreateSnapshot(ctx, ImageSnapshot, "The image as Kiln baked it; linked clones start here.", false, false)
	if err != nil {
		return fmt.Errorf("snapshot %q of %q: %w", ImageSnapshot, clone.InventoryPath, err)
	}
	if err := waitTask(ctx, task, fmt.Sprintf("snapshot %q of %q", ImageSnapshot, clone.InventoryPath)); err != nil {
		return err
	}
	if err := clone.MarkAsTemplate(ctx); err != nil {
		return fmt.Errorf("mark %q as a template: %w", clone.InventoryPath, err)
	}
	return nil
}

// ReadImageTemplate reads a template back by UUID or inventory path; an error
// wrapping ErrNotFound when there is none.
func (c *Client) ReadImageTemplate(ctx context.Context, datacenter, id string) (ImageTemplate, error) {
	i, err := c.inventory(ctx, datacenter)
	if err != nil {
		return ImageTemplate{}, err
	}
	vm, err := i.findVM(ctx, id)
	if err != nil {
		return ImageTemplate{}, err
	}
	return readTemplate(ctx, i, vm)
}

func readTemplate(ctx context.Context, i inv, vm *object.VirtualMachine) (ImageTemplate, error) {
	var m mo.VirtualMachine
	if err := vm.Properties(ctx, vm.Reference(), []string{"name", "config", "snapshot", "parent"}, &m); err != nil {
		if fault.Is(err, &types.ManagedObjectNotFound{}) {
			return ImageTemplate{}, fmt.Errorf("read template %s: %w", vm.Reference().Value, ErrNotFound)
		}
		return ImageTemplate{}, fmt.Errorf("read template %s: %w", vm.Reference().Value, err)
	}
	if m.Config == nil {
		return ImageTemplate{}, fmt.Errorf("read template %q: it has no configuration (inaccessible?)", m.Name)
	}
	out := ImageTemplate{MOID: m.Self.Value, UUID: m.Config.Uuid, Template: m.Config.Template}
	for _, o := range m.Config.ExtraConfig {
		if ov := o.GetOptionValue(); ov != nil && ov.Key == keyImage {
			out.Record, _ = ov.Value.(string)
		}
	}
	if m.Parent != nil {
		folder, err := find.InventoryPath(ctx, i.vc, *m.Parent)
		if err != nil {
			return ImageTemplate{}, fmt.Errorf("read folder of template %q: %w", m.Name, err)
		}
		out.Path = path.Join(folder, m.Name)
	}
	if m.Snapshot != nil && hasSnapshot(m.Snapshot.RootSnapshotList, ImageSnapshot) {
		out.Snapshot = ImageSnapshot
	}
	return out, nil
}

func hasSnapshot(tree []types.VirtualMachineSnapshotTree, name string) bool {
	for _, s := range tree {
		if s.Name == name || hasSnapshot(s.ChildSnapshotList, name) {
			return true
		}
	}
	return false
}

// ErrLeftAlone is a template DeleteImageTemplate did not destroy because it is
// no longer Kiln's to destroy.
var ErrLeftAlone = errors.New("left in place")

// DeleteImageTemplate destroys the template uuid when ours accepts it as read
// back (ours names why not otherwise): Kiln never deletes a template it did
// not bake. Nor one somebody turned back into a VM: that is left to them. A
// template that is gone is not an error.
func (c *Client) DeleteImageTemplate(ctx context.Context, datacenter, uuid string, ours func(ImageTemplate) error) error {
	i, err := c.inventory(ctx, datacenter)
	if err != nil {
		return err
	}
	vm, err := i.findVM(ctx, uuid)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	got, err := readTemplate(ctx, i, vm)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := ours(got); err != nil {
		return fmt.Errorf("%w: template %q: %w", ErrLeftAlone, got.Path, err)
	}
	if !got.Template {
		return fmt.Errorf("%w: %q was turned back into a VM, which Kiln leaves to whoever did that", ErrLeftAlone, got.Path)
	}
	c.log(ctx, "destroying template", "template", got.Path)
	task, err := vm.Destroy(ctx)
	if err != nil {
		return fmt.Errorf("destroy template %q: %w", got.Path, err)
	}
	return waitTask(ctx, task, fmt.Sprintf("destroy template %q", got.Path))
}

// ErrTaken is a name already held by an object that is not the image's.
var ErrTaken = errors.New("already exists and is not this image's: delete it, or import it")

// CheckFree fails when folder (below the datacenter's VM folder) already holds
// an object named name, wrapping ErrTaken.
func (c *Client) CheckFree(ctx context.Context, datacenter, folder, name string) error {
	t, found, err := c.Occupant(ctx, datacenter, folder, name)
	if err != nil {
		return err
	}
	if found {
		return fmt.Errorf("%q %w", t.Path, ErrTaken)
	}
	return nil
}

// Occupant reads back the VM or template that folder (below the datacenter's
// VM folder) holds under name; found is false when there is none. A folder
// that does not exist is an error wrapping ErrNotFound.
func (c *Client) Occupant(ctx context.Context, datacenter, folder, name string) (t ImageTemplate, found bool, err error) {
	i, err := c.inventory(ctx, datacenter)
	if err != nil {
		return ImageTemplate{}, false, err
	}
	dest, err := i.folder(ctx, folder)
	if err != nil {
		return ImageTemplate{}, false, err
	}
	target := dest.InventoryPath + "/" + name
	vm, err := i.f.VirtualMachine(ctx, target)
	if err != nil {
		if err := notFound(err); !errors.Is(err, ErrNotFound) {
			return ImageTemplate{}, false, fmt.Errorf("find VM %q: %w", target, err)
		}
		return ImageTemplate{}, false, nil
	}
	t, err = readTemplate(ctx, i, vm)
	if errors.Is(err, ErrNotFound) {
		return ImageTemplate{}, false, nil // gone since it was found
	}
	return t, err == nil, err
}

// LinkedClonesOf names the VMs Kiln cloned as linked clones of the template
// t: their disks are children of its snapshot's, so they stop booting when it
// goes. A VM's clone source is matched as it was given: the template's path
// (absolute or below the VM folder), name or UUID.
func (c *Client) LinkedClonesOf(ctx context.Context, datacenter string, t ImageTemplate) ([]string, error) {
	i, err := c.inventory(ctx, datacenter)
	if err != nil {
		return nil, err
	}
	v, err := view.NewManager(i.vc).CreateContainerView(ctx, i.dc.Reference(), []string{"VirtualMachine"}, true)
	if err != nil {
		return nil, fmt.Errorf("list VMs: %w", err)
	}
	defer func() { _ = v.Destroy(context.WithoutCancel(ctx)) }()
	var vms []mo.VirtualMachine
	if err := v.Retrieve(ctx, []string{"VirtualMachine"}, []string{"name", "config.extraConfig"}, &vms); err != nil {
		return nil, fmt.Errorf("list VMs: %w", err)
	}
	names := map[string]bool{t.Path: true, t.UUID: true, path.Base(t.Path): true,
		strings.TrimPrefix(t.Path, i.vmFolderPath()+"/"): true}
	var clones []string
	for _, vm := range vms {
		if vm.Config == nil {
			continue
		}
		extra := map[string]string{}
		for _, o := range vm.Config.ExtraConfig {
			if ov := o.GetOptionValue(); ov != nil {
				if s, ok := ov.Value.(string); ok {
					extra[ov.Key] = s
				}
			}
		}
		if extra[keyLinkedClone] == "true" && names[extra[keySource]] {
			clones = append(clones, vm.Name)
		}
	}
	slices.Sort(clones)
	return clones, nil
}
