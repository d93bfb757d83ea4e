package testenv

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/vmware/govmomi"
	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/types"
)

// VsphereBed is a vCenter simulated in process by govmomi's simulator: one
// datacenter with a cluster of three hosts and a standalone host, two datastores,
// the standard port group "VM Network" and a distributed port group, and a template
// the bed creates.
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
		Service:          model.Service,
		url:              server.URL,
	}
	bed.Template = "/" + bed.Datacenter + "/vm/" + bed.TemplateFolder + "/" + bed.TemplateName

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
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
	return nil
}
