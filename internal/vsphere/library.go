package vsphere

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/vapi/library"
	"github.com/vmware/govmomi/vapi/rest"
	"github.com/vmware/govmomi/vapi/vcenter"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// Library is a content library, found by name or ID.
type Library struct {
	ID, Name string
}

// LibraryItem is an item of a content library.
type LibraryItem struct {
	ID, Name, LibraryID string
	// Type is library.ItemTypeVMTX for a VM template.
	Type string
}

// FindLibrary looks a content library up by ID, or else by name.
func (c *Client) FindLibrary(ctx context.Context, nameOrID string) (Library, error) {
	rc, err := c.restClient(ctx)
	if err != nil {
		return Library{}, err
	}
	m := library.NewManager(rc)
	if uuidPattern.MatchString(nameOrID) {
		l, err := m.GetLibraryByID(ctx, nameOrID)
		if err == nil {
			return Library{ID: l.ID, Name: l.Name}, nil
		}
		if !rest.IsStatusError(err, http.StatusNotFound) {
			return Library{}, fmt.Errorf("read content library %s: %w", nameOrID, err)
		}
	}
	ids, err := m.FindLibrary(ctx, library.Find{Name: nameOrID})
	if err != nil {
		return Library{}, fmt.Errorf("find content library %q: %w", nameOrID, err)
	}
	switch len(ids) {
	case 0:
		return Library{}, fmt.Errorf("content library %q: %w", nameOrID, ErrNotFound)
	case 1:
		return Library{ID: ids[0], Name: nameOrID}, nil
	default:
		return Library{}, fmt.Errorf("%d content libraries are named %q: give its ID", len(ids), nameOrID)
	}
}

// FindLibraryItem looks the item name up in the library libraryID; an error
// wrapping ErrNotFound when there is none.
func (c *Client) FindLibraryItem(ctx context.Context, libraryID, name string) (LibraryItem, error) {
	rc, err := c.restClient(ctx)
	if err != nil {
		return LibraryItem{}, err
	}
	ids, err := library.NewManager(rc).FindLibraryItems(ctx, library.FindItem{LibraryID: libraryID, Name: name})
	if err != nil {
		return LibraryItem{}, fmt.Errorf("find item %q in content library %s: %w", name, libraryID, err)
	}
	if len(ids) == 0 {
		return LibraryItem{}, fmt.Errorf("item %q in content library %s: %w", name, libraryID, ErrNotFound)
	}
	return c.ReadLibraryItem(ctx, ids[0])
}

// ReadLibraryItem reads a library item by ID; an error wrapping ErrNotFound
// when it is gone.
func (c *Client) ReadLibraryItem(ctx context.Context, id string) (LibraryItem, error) {
	rc, err := c.restClient(ctx)
	if err != nil {
		return LibraryItem{}, err
	}
	item, err := library.NewManager(rc).GetLibraryItem(ctx, id)
	if rest.IsStatusError(err, http.StatusNotFound) {
		return LibraryItem{}, fmt.Errorf("content library item %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return LibraryItem{}, fmt.Errorf("read content library item %s: %w", id, err)
	}
	return LibraryItem{ID: item.ID, Name: item.Name, LibraryID: item.LibraryID, Type: item.Type}, nil
}

// PublishTemplate copies the template uuid into the library libraryID as a
// VM-template item named name. vCenter copies VMs, not templates, into a
// library (it refuses a template as the source): the template is turned into
// a VM, in the root pool of its host's compute resource, for the copy, and
// back into a template after, whatever the copy's outcome. vCenter keeps the
// item's own template in the inventory too, in folder (below the datacenter's
// VM folder).
func (c *Client) PublishTemplate(ctx context.Context, datacenter, uuid, libraryID, folder, name, description string) (_ LibraryItem, err error) {
	i, err := c.inventory(ctx, datacenter)
	if err != nil {
		return LibraryItem{}, err
	}
	vm, err := i.findVM(ctx, uuid)
	if err != nil {
		return LibraryItem{}, err
	}
	dest, err := i.folder(ctx, folder)
	if err != nil {
		return LibraryItem{}, err
	}
	var m mo.VirtualMachine
	if err := vm.Properties(ctx, vm.Reference(), []string{"name", "config.template", "runtime.host"}, &m); err != nil {
		return LibraryItem{}, fmt.Errorf("read template %s: %w", uuid, err)
	}
	if m.Config == nil || !m.Config.Template {
		return LibraryItem{}, fmt.Errorf("%q is not a template", m.Name)
	}
	pool, err := hostPool(ctx, i, m)
	if err != nil {
		return LibraryItem{}, err
	}
	if err := vm.MarkAsVirtualMachine(ctx, *object.NewResourcePool(i.vc, pool), nil); err != nil {
		return LibraryItem{}, fmt.Errorf("turn template %q into a VM for its copy to the library: %w", m.Name, err)
	}
	defer func() {
		back, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		if terr := vm.MarkAsTemplate(back); terr != nil {
			err = errors.Join(err, fmt.Errorf("turn %q back into a template after its copy to the library: %w", m.Name, terr))
		}
	}()
	rc, err := c.restClient(ctx)
	if err != nil {
		return LibraryItem{}, err
	}
	c.log(ctx, "publishing the template to the content library", "template", m.Name, "library", libraryID, "item", name)
	id, err := vcenter.NewManager(rc).CreateTemplate(ctx, vcenter.Template{
		Name: name, Description: description, Library: libraryID, SourceVM: vm.Reference().Value,
		Placement: &vcenter.Placement{Folder: dest.Reference().Value, ResourcePool: pool.Value},
	})
	if err != nil {
		return LibraryItem{}, fmt.Errorf("copy template %q to content library %s as %q: %w", m.Name, libraryID, name, err)
	}
	return c.ReadLibraryItem(ctx, id)
}

// hostPool is the root resource pool of the compute resource of the host the
// template m is registered on.
func hostPool(ctx context.Context, i inv, m mo.VirtualMachine) (types.ManagedObjectReference, error) {
	if m.Runtime.Host == nil {
		return types.ManagedObjectReference{}, fmt.Errorf("template %q is registered on no host", m.Name)
	}
	pc := property.DefaultCollector(i.vc)
	var host mo.HostSystem
	if err := pc.RetrieveOne(ctx, *m.Runtime.Host, []string{"parent"}, &host); err != nil {
		return types.ManagedObjectReference{}, fmt.Errorf("read the host of template %q: %w", m.Name, err)
	}
	var compute mo.ComputeResource
	if host.Parent != nil {
		if err := pc.RetrieveOne(ctx, *host.Parent, []string{"resourcePool"}, &compute); err != nil {
			return types.ManagedObjectReference{}, fmt.Errorf("read the resource pool of template %q's host: %w", m.Name, err)
		}
	}
	if compute.ResourcePool == nil {
		return types.ManagedObjectReference{}, fmt.Errorf("template %q: its host's compute resource has no resource pool", m.Name)
	}
	return *compute.ResourcePool, nil
}

// DeleteLibraryItem deletes the library item id (and with it vCenter's copy
// of its template); an item already gone is not an error.
func (c *Client) DeleteLibraryItem(ctx context.Context, id string) error {
	item, err := c.ReadLibraryItem(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	rc, err := c.restClient(ctx)
	if err != nil {
		return err
	}
	c.log(ctx, "deleting content library item", "item", item.Name, "library", item.LibraryID)
	if err := library.NewManager(rc).DeleteLibraryItem(ctx, &library.Item{ID: id}); err != nil && !rest.IsStatusError(err, http.StatusNotFound) {
		return fmt.Errorf("delete content library item %q: %w", item.Name, err)
	}
	return nil
}
