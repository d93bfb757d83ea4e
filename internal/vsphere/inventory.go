package vsphere

import (
	"context"
	"errors"
	"fmt"
	"path"
	"regexp"
	"strings"

	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/vim25"
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
		IsTemplate: m.Config.Template,
	}
	if m.Parent != nil {
		folder, err := find.InventoryPath(ctx, i.vc, *m.Parent)
		if err != nil {
			return Template{}, fmt.Errorf("read folder of template %q: %w", name, err)
		}
		out.Path = strings.TrimSuffix(folder, "/") + "/" + m.Name
	}
	if out.Disks, out.Networks, err = readDevices(ctx, i.vc, m.Config.Hardware.Device); err != nil {
		return Template{}, fmt.Errorf("read network of template %q: %w", name, err)
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

// inv bundles what one operation needs: the session, a finder scoped to the
// datacenter, and the datacenter.
type inv struct {
	vc *vim25.Client
	f  *find.Finder
	dc *object.Datacenter
}

func (c *Client) inventory(ctx context.Context, dc string) (inv, error) {
	vc, f, d, err := c.finder(ctx, dc)
	if err != nil {
		return inv{}, err
	}
	return inv{vc: vc, f: f, dc: d}, nil
}

func (i inv) vmFolderPath() string { return i.dc.InventoryPath + "/vm" }

// findVM resolves id: a BIOS UUID, an instance UUID, or an inventory path (absolute,
// or relative to the datacenter's VM folder), or a name.
func (i inv) findVM(ctx context.Context, id string) (*object.VirtualMachine, error) {
	if uuidPattern.MatchString(id) {
		si := object.NewSearchIndex(i.vc)
		for _, instance := range []bool{false, true} {
			ref, err := si.FindByUuid(ctx, i.dc, id, true, &instance)
			if err != nil {
				return nil, fmt.Errorf("look up VM by UUID %s: %w", id, err)
			}
			if ref != nil {
				return object.NewVirtualMachine(i.vc, ref.Reference()), nil
			}
		}
		return nil, fmt.Errorf("VM with UUID %s in datacenter %q: %w", id, i.dc.Name(), ErrNotFound)
	}
	p := id
	if strings.Contains(id, "/") && !strings.HasPrefix(id, "/") {
		p = i.vmFolderPath() + "/" + id
	}
	vm, err := i.f.VirtualMachine(ctx, p)
	if err != nil {
		return nil, fmt.Errorf("find VM %q in datacenter %q: %w", id, i.dc.Name(), notFound(err))
	}
	return vm, nil
}

var uuidPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

func (i inv) folder(ctx context.Context, rel string) (*object.Folder, error) {
	p := i.vmFolderPath()
	if rel != "" {
		p += "/" + strings.Trim(rel, "/")
	}
	f, err := i.f.Folder(ctx, p)
	if err != nil {
		return nil, fmt.Errorf("find VM folder %q: %w", p, notFound(err))
	}
	return f, nil
}

// placement resolves the cluster or host and resource pool of want.
type placement struct {
	pool *object.ResourcePool
	host *object.HostSystem
	ds   *object.Datastore
}

func (i inv) placement(ctx context.Context, want VM) (placement, error) {
	var p placement
	var owner string // inventory path of the compute resource
	if want.Host != "" {
		h, err := i.f.HostSystem(ctx, want.Host)
		if err != nil {
			return p, fmt.Errorf("find host %q: %w", want.Host, notFound(err))
		}
		p.host = h
		owner = path.Dir(h.InventoryPath)
	}
	if want.Cluster != "" {
		cl, err := i.f.ClusterComputeResource(ctx, want.Cluster)
		if err != nil {
			return p, fmt.Errorf("find cluster %q: %w", want.Cluster, notFound(err))
		}
		if owner != "" && owner != cl.InventoryPath {
			return p, fmt.Errorf("host %q is not in cluster %q", want.Host, want.Cluster)
		}
		owner = cl.InventoryPath
		if p.host == nil {
			hosts, err := cl.Hosts(ctx)
			if err != nil {
				return p, fmt.Errorf("list hosts of cluster %q: %w", want.Cluster, err)
			}
			if len(hosts) == 0 {
				return p, fmt.Errorf("cluster %q has no hosts", want.Cluster)
			}
			p.host = hosts[0]
		}
	}
	if owner == "" {
		return p, errors.New("placement needs a cluster or a host")
	}
	poolPath := owner + "/Resources"
	if want.ResourcePool != "" {
		poolPath += "/" + strings.Trim(want.ResourcePool, "/")
	}
	pool, err := i.f.ResourcePool(ctx, poolPath)
	if err != nil {
		return p, fmt.Errorf("find resource pool %q: %w", poolPath, notFound(err))
	}
	p.pool = pool
	if want.Datastore != "" {
		ds, err := i.f.Datastore(ctx, want.Datastore)
		if err != nil {
			return p, fmt.Errorf("find datastore %q: %w", want.Datastore, notFound(err))
		}
		p.ds = ds
	}
	return p, nil
}

// readPool sets the VM's resource pool (relative to its compute resource's root
// pool) and cluster.
func readPool(ctx context.Context, i inv, ref types.ManagedObjectReference, out *VM) error {
	var pool mo.ResourcePool
	if err := property.DefaultCollector(i.vc).RetrieveOne(ctx, ref, []string{"owner"}, &pool); err != nil {
		return err
	}
	ownerPath, err := find.InventoryPath(ctx, i.vc, pool.Owner)
	if err != nil {
		return err
	}
	poolPath, err := find.InventoryPath(ctx, i.vc, ref)
	if err != nil {
		return err
	}
	out.ResourcePool = strings.Trim(strings.TrimPrefix(poolPath, ownerPath+"/Resources"), "/")
	if pool.Owner.Type == "ClusterComputeResource" {
		out.Cluster = path.Base(ownerPath)
	}
	return nil
}

// datastoreOfPath returns "ds" of "[ds] dir/vm.vmx".
func datastoreOfPath(p string) string {
	var dp object.DatastorePath
	if dp.FromString(p) {
		return dp.Datastore
	}
	return ""
}

// readDevices reads the disks and the networks of the adapters of a VM's or
// template's hardware; only reading a network's name can fail.
func readDevices(ctx context.Context, vc *vim25.Client, hardware []types.BaseVirtualDevice) ([]Disk, []string, error) {
	devices := object.VirtualDeviceList(hardware)
	disks, networks := []Disk{}, []string{}
	for _, d := range devices.SelectByType((*types.VirtualDisk)(nil)) {
		disk := d.(*types.VirtualDisk)
		label := devices.Name(d)
		if info := disk.DeviceInfo; info != nil && info.GetDescription().Label != "" {
			label = info.GetDescription().Label
		}
		disks = append(disks, Disk{Label: label, SizeGiB: (disk.CapacityInBytes + GiB - 1) / GiB})
	}
	for _, d := range devices.SelectByType((*types.VirtualEthernetCard)(nil)) {
		name, err := networkName(ctx, vc, d.GetVirtualDevice().Backing)
		if err != nil {
			return nil, nil, err
		}
		networks = append(networks, name)
	}
	return disks, networks, nil
}

func networkName(ctx context.Context, vc *vim25.Client, backing types.BaseVirtualDeviceBackingInfo) (string, error) {
	switch b := backing.(type) {
	case *types.VirtualEthernetCardNetworkBackingInfo:
		if b.DeviceName != "" || b.Network == nil {
			return b.DeviceName, nil
		}
		return object.NewCommon(vc, *b.Network).ObjectName(ctx)
	case *types.VirtualEthernetCardDistributedVirtualPortBackingInfo:
		ref := types.ManagedObjectReference{Type: "DistributedVirtualPortgroup", Value: b.Port.PortgroupKey}
		return object.NewCommon(vc, ref).ObjectName(ctx)
	case *types.VirtualEthernetCardOpaqueNetworkBackingInfo:
		return b.OpaqueNetworkId, nil
	}
	return "", nil
}
