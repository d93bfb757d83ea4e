package vsphere

import (
	"context"
	"fmt"
	"strings"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// Datacenter is a datacenter found by name or path.
type Datacenter struct {
	Name, Path, MOID string
}

// Cluster is a cluster with its root resource pool and hosts.
type Cluster struct {
	Name, Path, MOID string
	ResourcePool     string // inventory path of the root pool
	Hosts            []string
}

// Datastore is a datastore with its capacity.
type Datastore struct {
	Name, Path, MOID string
	Type             string
	CapacityBytes    int64
	FreeBytes        int64
}

// Network is a port group or network.
type Network struct {
	Name, Path, MOID string
	// Type is the managed object type: Network, DistributedVirtualPortgroup or OpaqueNetwork.
	Type string
}

// Template is a template (or VM) a clone can start from.
type Template struct {
	Name, Path, MOID, UUID string
	GuestID                string
	NumCPUs                int32
	MemoryMiB              int64
	Disks                  []Disk
	Networks               []string
	IsTemplate             bool
	// CurrentSnapshot names the snapshot a linked clone starts from by default.
	CurrentSnapshot string
}

// Disk is one virtual disk.
type Disk struct {
	Label   string
	SizeGiB int64
}

// FindDatacenter looks a datacenter up by name or path; empty means the client's
// default datacenter, or the only one.
func (c *Client) FindDatacenter(ctx context.Context, name string) (Datacenter, error) {
	i, err := c.inventory(ctx, name)
	if err != nil {
		return Datacenter{}, err
	}
	return Datacenter{Name: i.dc.Name(), Path: i.dc.InventoryPath, MOID: i.dc.Reference().Value}, nil
}

// FindCluster looks a cluster up by name or inventory path.
func (c *Client) FindCluster(ctx context.Context, datacenter, name string) (Cluster, error) {
	i, err := c.inventory(ctx, datacenter)
	if err != nil {
		return Cluster{}, err
	}
	cl, err := i.f.ClusterComputeResource(ctx, name)
	if err != nil {
		return Cluster{}, fmt.Errorf("find cluster %q in datacenter %q: %w", name, i.dc.Name(), notFound(err))
	}
	out := Cluster{Name: cl.Name(), Path: cl.InventoryPath, MOID: cl.Reference().Value, ResourcePool: cl.InventoryPath + "/Resources", Hosts: []string{}}
	hosts, err := cl.Hosts(ctx)
	if err != nil {
		return Cluster{}, fmt.Errorf("list hosts of cluster %q: %w", name, err)
	}
	for _, h := range hosts {
		n, err := h.ObjectName(ctx)
		if err != nil {
			return Cluster{}, fmt.Errorf("read host of cluster %q: %w", name, err)
		}
		out.Hosts = append(out.Hosts, n)
	}
	return out, nil
}

// FindDatastore looks a datastore up by name or inventory path.
func (c *Client) FindDatastore(ctx context.Context, datacenter, name string) (Datastore, error) {
	i, err := c.inventory(ctx, datacenter)
	if err != nil {
		return Datastore{}, err
	}
	ds, err := i.f.Datastore(ctx, name)
	if err != nil {
		return Datastore{}, fmt.Errorf("find datastore %q in datacenter %q: %w", name, i.dc.Name(), notFound(err))
	}
	var m mo.Datastore
	if err := ds.Properties(ctx, ds.Reference(), []string{"summary"}, &m); err != nil {
		return Datastore{}, fmt.Errorf("read datastore %q: %w", name, err)
	}
	return Datastore{
		Name: ds.Name(), Path: ds.InventoryPath, MOID: ds.Reference().Value,
		Type: m.Summary.Type, CapacityBytes: m.Summary.Capacity, FreeBytes: m.Summary.FreeSpace,
	}, nil
}

// FindNetwork looks a network or port group up by name or inventory path.
func (c *Client) FindNetwork(ctx context.Context, datacenter, name string) (Network, error) {
	i, err := c.inventory(ctx, datacenter)
	if err != nil {
		return Network{}, err
	}
	n, err := i.f.Network(ctx, name)
	if err != nil {
		return Network{}, fmt.Errorf("find network %q in datacenter %q: %w", name, i.dc.Name(), notFound(err))
	}
	ref := n.Reference()
	out := Network{Path: n.GetInventoryPath(), MOID: ref.Value, Type: ref.Type}
	out.Name, err = object.NewCommon(i.vc, ref).ObjectName(ctx)
	if err != nil {
		return Network{}, fmt.Errorf("read network %q: %w", name, err)
	}
	return out, nil
}

// FindTemplate looks a template or VM up by inventory path, name or UUID.
func (c *Client) FindTemplate(ctx context.Context, datacenter, name string) (Template, error) {
	i, err := c.inventory(ctx, datacenter)
	if err != nil {
		return Template{}, err
	}
	vm, err := i.findVM(ctx, name)
	if err != nil {
		return Template{}, err
	}
	var m mo.VirtualMachine
	if err := vm.Properties(ctx, vm.Reference(), []string{"name", "config", "snapshot", "parent"}, &m); err != nil {
		return Template{}, fmt.Errorf("read template %q: %w", name, err)
	}
	if m.Config == nil {
		return Template{}, fmt.Errorf("read template %q: it has no configuration (inaccessible?)", name)
	}
	out := Template{
		Name: m.Name, MOID: m.Self.Value, UUID: m.Config.Uuid, GuestID: m.Config.GuestId,
		NumCPUs: m.Config.Hardware.NumCPU, MemoryMiB: int64(m.Config.Hardware.MemoryMB),
		IsTemplate: m.Config.Template, Disks: []Disk{}, Networks: []string{},
	}
	if m.Parent != nil {
		e, err := i.f.Element(ctx, *m.Parent)
		if err != nil {
			return Template{}, fmt.Errorf("read folder of template %q: %w", name, err)
		}
		out.Path = strings.TrimSuffix(e.Path, "/") + "/" + m.Name
	}
	devices := object.VirtualDeviceList(m.Config.Hardware.Device)
	for _, d := range devices.SelectByType((*types.VirtualDisk)(nil)) {
		disk := d.(*types.VirtualDisk)
		label := devices.Name(d)
		if info := disk.DeviceInfo; info != nil && info.GetDescription().Label != "" {
			label = info.GetDescription().Label
		}
		out.Disks = append(out.Disks, Disk{Label: label, SizeGiB: (disk.CapacityInBytes + GiB - 1) / GiB})
	}
	for _, d := range devices.SelectByType((*types.VirtualEthernetCard)(nil)) {
		n, err := networkName(ctx, i.vc, d.GetVirtualDevice().Backing)
		if err != nil {
			return Template{}, fmt.Errorf("read network of template %q: %w", name, err)
		}
		out.Networks = append(out.Networks, n)
	}
	if m.Snapshot != nil && m.Snapshot.CurrentSnapshot != nil {
		out.CurrentSnapshot = snapshotName(m.Snapshot.RootSnapshotList, *m.Snapshot.CurrentSnapshot)
	}
	return out, nil
}

func snapshotName(tree []types.VirtualMachineSnapshotTree, ref types.ManagedObjectReference) string {
	for _, s := range tree {
		if s.Snapshot == ref {
			return s.Name
		}
		if n := snapshotName(s.ChildSnapshotList, ref); n != "" {
			return n
		}
	}
	return ""
}
