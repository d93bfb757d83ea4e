package testenv

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/url"
	"path"
	"strings"
	"testing"
	"time"

	"github.com/vmware/govmomi"
	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vapi/library"
	"github.com/vmware/govmomi/vapi/rest"
	// The vAPI endpoints: content libraries.
	_ "github.com/vmware/govmomi/vapi/simulator"
	"github.com/vmware/govmomi/vim25/types"
)

// VsphereBed is a vCenter simulated in process by govmomi's simulator: one
// datacenter with a cluster of three hosts and a standalone host, two datastores,
// the standard port group "VM Network" and a distributed port group, and a template
// and a local content library the bed creates.
type VsphereBed struct {
	// Server is host:port on 127.0.0.1 (HTTPS, with a self-signed certificate).
	Server   string
	User     string
	Password string

	Datacenter  string
	Cluster     string
	Hosts       []string // the cluster's hosts
	Datastores  []string
	Network     string // standard port group
	DVPortgroup string

	// Template is the inventory path of a template with one disk of TemplateDiskGiB, one network
	// adapter on Network, 1 vCPU, 512 MiB, and a snapshot named TemplateSnapshot.
	Template         string
	TemplateName     string
	TemplateSnapshot string
	// TemplateFolder and OtherFolder are VM folders below the datacenter's VM folder.
	TemplateFolder string
	OtherFolder    string
	// Library is the name of a local content library on the first datastore.
	Library string

	// Service is the simulator itself, for fault injection.
	Service *simulator.Service
	url     *url.URL
}

// TemplateDiskGiB is the size of the bed's template's disk.
const TemplateDiskGiB = 10

// Vsphere starts a simulated vCenter listening on 127.0.0.1 and stops it when the
// test ends.
func Vsphere(t testing.TB) VsphereBed {
	t.Helper()
	return startVsphere(t, VsphereNames{})
}

// VsphereNames names a bed's inventory the way HCL written for a real vCenter
// (the examples) does, so that it applies as written. Every field is required.
type VsphereNames struct {
	Datacenter   string // the datacenter, renamed from DC0
	Cluster      string // the cluster, renamed from DC0_C0
	ResourcePool string // a resource pool created in the cluster
	Datastore    string // a datastore created on the cluster's hosts
	Network      string // a standard port group created on the cluster's first host; the template's network
	VMFolder     string // a folder path created below the datacenter's VM folder
	Template     string // the template's path below the VM folder: folder/name
}

// VsphereNamed is Vsphere with the inventory named by names.
func VsphereNamed(t testing.TB, names VsphereNames) VsphereBed {
	t.Helper()
	return startVsphere(t, names)
}

func startVsphere(t testing.TB, names VsphereNames) VsphereBed {
	t.Helper()
	model := simulator.VPX()
	model.Datastore = 2
	model.Machine = 1
	model.Autostart = false
	if err := model.Create(); err != nil {
		t.Fatalf("vSphere simulator: %v", err)
	}
	t.Cleanup(model.Remove)
	model.Service.Listen = &url.URL{Host: "127.0.0.1:0", User: url.UserPassword("kiln", "kiln-secret")}
	model.Service.TLS = new(tls.Config)
	model.Service.RegisterEndpoints = true
	server := model.Service.NewServer()
	t.Cleanup(server.Close)

	bed := VsphereBed{
		Server:           server.URL.Host,
		User:             "kiln",
		Password:         "kiln-secret",
		Datacenter:       "DC0",
		Cluster:          "DC0_C0",
		Hosts:            []string{"DC0_C0_H0", "DC0_C0_H1", "DC0_C0_H2"},
		Datastores:       []string{"LocalDS_0", "LocalDS_1"},
		Network:          "VM Network",
		DVPortgroup:      "DC0_DVPG0",
		TemplateName:     "debian-12",
		TemplateSnapshot: "base",
		TemplateFolder:   "templates",
		OtherFolder:      "archive",
		Library:          "kiln-images",
		Service:          model.Service,
		url:              server.URL,
	}
	bed.Template = "/" + bed.Datacenter + "/vm/" + bed.TemplateFolder + "/" + bed.TemplateName

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if names != (VsphereNames{}) {
		if err := bed.rename(ctx, names, t.TempDir()); err != nil {
			t.Fatalf("vSphere simulator: %v", err)
		}
	}
	if err := bed.prepare(ctx); err != nil {
		t.Fatalf("vSphere simulator: %v", err)
	}
	return bed
}

// Client logs in to the simulator on a session of its own, so that assertions do
// not go through the engine under test.
func (b VsphereBed) Client(ctx context.Context) (*govmomi.Client, error) {
	return govmomi.NewClient(ctx, b.url, true)
}

// Finder returns a client and a finder scoped to the bed's datacenter.
func (b VsphereBed) Finder(ctx context.Context) (*govmomi.Client, *find.Finder, error) {
	c, err := b.Client(ctx)
	if err != nil {
		return nil, nil, err
	}
	f := find.NewFinder(c.Client, true)
	dc, err := f.Datacenter(ctx, b.Datacenter)
	if err != nil {
		return nil, nil, err
	}
	f.SetDatacenter(dc)
	return c, f, nil
}

// Libraries logs in to the simulator's vAPI endpoint on a session of its own,
// as Client does, and returns its content library manager.
func (b VsphereBed) Libraries(ctx context.Context) (*library.Manager, error) {
	c, err := b.Client(ctx)
	if err != nil {
		return nil, err
	}
	rc := rest.NewClient(c.Client)
	if err := rc.Login(ctx, url.UserPassword(b.User, b.Password)); err != nil {
		return nil, err
	}
	return library.NewManager(rc), nil
}

// prepare builds the template: a clone of the model's VM, resized, attached to
// the standard port group, snapshotted and marked as a template.
func (b VsphereBed) prepare(ctx context.Context) error {
	c, f, err := b.Finder(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = c.Logout(ctx) }()
	root, err := f.Folder(ctx, "/"+b.Datacenter+"/vm")
	if err != nil {
		return err
	}
	folder, err := root.CreateFolder(ctx, b.TemplateFolder)
	if err != nil {
		return fmt.Errorf("create folder %q: %w", b.TemplateFolder, err)
	}
	if _, err := root.CreateFolder(ctx, b.OtherFolder); err != nil {
		return fmt.Errorf("create folder %q: %w", b.OtherFolder, err)
	}
	src, err := f.VirtualMachine(ctx, "DC0_C0_RP0_VM0")
	if err != nil {
		return err
	}
	pool, err := f.ResourcePool(ctx, "/"+b.Datacenter+"/host/"+b.Cluster+"/Resources")
	if err != nil {
		return err
	}
	poolRef := pool.Reference()
	task, err := src.Clone(ctx, folder, b.TemplateName, types.VirtualMachineCloneSpec{
		Location: types.VirtualMachineRelocateSpec{Pool: &poolRef},
		Config:   &types.VirtualMachineConfigSpec{NumCPUs: 1, MemoryMB: 512},
	})
	if err != nil {
		return err
	}
	info, err := task.WaitForResult(ctx)
	if err != nil {
		return fmt.Errorf("clone template: %w", err)
	}
	tmpl := object.NewVirtualMachine(c.Client, info.Result.(types.ManagedObjectReference))

	devices, err := tmpl.Device(ctx)
	if err != nil {
		return err
	}
	network, err := f.Network(ctx, b.Network)
	if err != nil {
		return err
	}
	backing, err := network.EthernetCardBackingInfo(ctx)
	if err != nil {
		return err
	}
	if disks := devices.SelectByType((*types.VirtualDisk)(nil)); len(disks) != 1 || disks[0].(*types.VirtualDisk).CapacityInBytes != TemplateDiskGiB<<30 {
		return fmt.Errorf("template disks = %d, want one of %d GiB", len(disks), TemplateDiskGiB)
	}
	spec := types.VirtualMachineConfigSpec{GuestId: "debian12_64Guest"}
	nics := devices.SelectByType((*types.VirtualEthernetCard)(nil))
	if len(nics) != 1 {
		return fmt.Errorf("template has %d network adapters, want 1", len(nics))
	}
	nics[0].GetVirtualDevice().Backing = backing
	spec.DeviceChange = append(spec.DeviceChange, &types.VirtualDeviceConfigSpec{Operation: types.VirtualDeviceConfigSpecOperationEdit, Device: nics[0]})
	if task, err = tmpl.Reconfigure(ctx, spec); err != nil {
		return err
	}
	if err := task.Wait(ctx); err != nil {
		return fmt.Errorf("reconfigure template: %w", err)
	}
	if task, err = tmpl.CreateSnapshot(ctx, b.TemplateSnapshot, "", false, false); err != nil {
		return err
	}
	if err := task.Wait(ctx); err != nil {
		return fmt.Errorf("snapshot template: %w", err)
	}
	if err := tmpl.MarkAsTemplate(ctx); err != nil {
		return fmt.Errorf("mark template: %w", err)
	}
	return b.createLibrary(ctx, f)
}

func (b VsphereBed) createLibrary(ctx context.Context, f *find.Finder) error {
	ds, err := f.Datastore(ctx, b.Datastores[0])
	if err != nil {
		return err
	}
	m, err := b.Libraries(ctx)
	if err != nil {
		return err
	}
	_, err = m.CreateLibrary(ctx, library.Library{Name: b.Library, Type: "LOCAL",
		Storage: []library.StorageBacking{{DatastoreID: ds.Reference().Value, Type: "DATASTORE"}}})
	if err != nil {
		return fmt.Errorf("create content library %q: %w", b.Library, err)
	}
	return nil
}

// rename renames the datacenter and the cluster, creates the resource pool,
// datastore (in dir), port group and folders names asks for, and points the bed
// at them.
func (b *VsphereBed) rename(ctx context.Context, names VsphereNames, dir string) error {
	c, f, err := b.Finder(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = c.Logout(ctx) }()
	dc, err := f.Datacenter(ctx, b.Datacenter)
	if err != nil {
		return err
	}
	cluster, err := f.ClusterComputeResource(ctx, b.Cluster)
	if err != nil {
		return err
	}
	for _, r := range []struct {
		obj  object.Common
		name string
	}{{dc.Common, names.Datacenter}, {cluster.Common, names.Cluster}} {
		task, err := r.obj.Rename(ctx, r.name)
		if err != nil {
			return err
		}
		if err := task.Wait(ctx); err != nil {
			return fmt.Errorf("rename %s to %q: %w", r.obj.Reference(), r.name, err)
		}
	}
	b.Datacenter, b.Cluster = names.Datacenter, names.Cluster
	b.Template = "/" + b.Datacenter + "/vm/" + names.Template
	b.TemplateFolder, b.TemplateName = path.Split(names.Template)
	b.TemplateFolder = strings.TrimSuffix(b.TemplateFolder, "/")

	pool, err := cluster.ResourcePool(ctx)
	if err != nil {
		return err
	}
	if _, err := pool.Create(ctx, names.ResourcePool, types.DefaultResourceConfigSpec()); err != nil {
		return fmt.Errorf("create resource pool %q: %w", names.ResourcePool, err)
	}
	for i, h := range b.Hosts {
		host, err := f.HostSystem(ctx, h)
		if err != nil {
			return err
		}
		dss, err := host.ConfigManager().DatastoreSystem(ctx)
		if err != nil {
			return err
		}
		if _, err := dss.CreateLocalDatastore(ctx, names.Datastore, dir); err != nil {
			return fmt.Errorf("create datastore %q on %s: %w", names.Datastore, h, err)
		}
		if i > 0 {
			continue // the simulator has one Network object per name, added once
		}
		ns, err := host.ConfigManager().NetworkSystem(ctx)
		if err != nil {
			return err
		}
		if err := ns.AddPortGroup(ctx, types.HostPortGroupSpec{Name: names.Network, VswitchName: "vSwitch0"}); err != nil {
			return fmt.Errorf("create port group %q on %s: %w", names.Network, h, err)
		}
	}
	b.Datastores = append([]string{names.Datastore}, b.Datastores...)
	b.Network = names.Network

	folder, err := f.Folder(ctx, "/"+b.Datacenter+"/vm")
	if err != nil {
		return err
	}
	for _, name := range strings.Split(names.VMFolder, "/") {
		if folder, err = folder.CreateFolder(ctx, name); err != nil {
			return fmt.Errorf("create folder %q: %w", name, err)
		}
	}
	return nil
}
