package vsphere_test

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/mo"

	"github.com/kilnhq/terraform-provider-kiln/internal/testenv"
	"github.com/kilnhq/terraform-provider-kiln/internal/vsphere"
)

func newClient(t *testing.T, bed testenv.VsphereBed) *vsphere.Client {
	t.Helper()
	c := vsphere.NewClient(vsphere.Config{
		Server: bed.Server, User: bed.User, Password: bed.Password, AllowUnverifiedSSL: true, Datacenter: bed.Datacenter,
	})
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func TestLoginErrors(t *testing.T) {
	bed := testenv.Vsphere(t)
	ctx := testContext(t)

	bad := vsphere.NewClient(vsphere.Config{Server: bed.Server, User: bed.User, Password: "wrong", AllowUnverifiedSSL: true})
	if err := bad.Ping(ctx); err == nil || !strings.Contains(err.Error(), "user name or password rejected") {
		t.Errorf("bad password: error = %v", err)
	}
	strict := vsphere.NewClient(vsphere.Config{Server: bed.Server, User: bed.User, Password: bed.Password})
	if err := strict.Ping(ctx); err == nil || !strings.Contains(err.Error(), "allow_unverified_ssl") {
		t.Errorf("unverified certificate: error = %v", err)
	}
	c := newClient(t, bed)
	if _, err := c.FindDatacenter(ctx, "DC9"); err == nil || !errors.Is(err, vsphere.ErrNotFound) || !strings.Contains(err.Error(), `"DC9"`) {
		t.Errorf("missing datacenter: error = %v", err)
	}
	_, err := c.CreateVM(ctx, vsphere.VM{Name: "x", Source: "templates/nope", Cluster: bed.Cluster})
	if err == nil || !errors.Is(err, vsphere.ErrNotFound) || !strings.Contains(err.Error(), "templates/nope") {
		t.Errorf("missing source: error = %v", err)
	}
	_, err = c.CreateVM(ctx, vsphere.VM{Name: "x", Source: bed.Template, Cluster: "nope"})
	if err == nil || !strings.Contains(err.Error(), `cluster "nope"`) {
		t.Errorf("missing cluster: error = %v", err)
	}
}

func TestCloneUpdateDelete(t *testing.T) {
	bed := testenv.Vsphere(t)
	ctx := testContext(t)
	c := newClient(t, bed)

	want := vsphere.VM{
		Name: "build-1", Source: bed.Template, Cluster: bed.Cluster, Datastore: bed.Datastores[1],
		NumCPUs: 2, MemoryMiB: 1024, DiskGiB: []int64{12}, Networks: []string{bed.Network},
		ExtraConfig:   map[string]string{"guestinfo.role": "build"},
		Customization: &vsphere.Customization{Hostname: "build-1", Domain: "example.test", IPv4Address: "10.0.0.5/24", IPv4Gateway: "10.0.0.1"},
		PowerOn:       true, IPWait: 30 * time.Second,
	}
	vm, err := c.CreateVM(ctx, want)
	if err != nil {
		t.Fatal(err)
	}
	if !vm.PowerOn || vm.NumCPUs != 2 || vm.MemoryMiB != 1024 || !slices.Equal(vm.DiskGiB, []int64{12}) ||
		vm.Datastore != bed.Datastores[1] || vm.Cluster != bed.Cluster || vm.Source != bed.Template || vm.Folder != "" {
		t.Errorf("created VM = %+v", vm)
	}
	if vm.DefaultIP != "10.0.0.5" || !slices.Contains(vm.IPAddresses, "10.0.0.5") {
		t.Errorf("guest IP = %q %v, want 10.0.0.5 from customization", vm.DefaultIP, vm.IPAddresses)
	}
	if vm.ExtraConfig["guestinfo.role"] != "build" {
		t.Errorf("extra config = %v", vm.ExtraConfig)
	}
	if !reflect.DeepEqual(vm.Customization, want.Customization) {
		t.Errorf("customization read back = %+v, want the one applied, %+v", vm.Customization, want.Customization)
	}

	// Read by inventory path and by UUID give the same VM.
	byPath, err := c.ReadVM(ctx, "", "/DC0/vm/build-1")
	if err != nil || byPath.UUID != vm.UUID {
		t.Fatalf("read by path: %+v, %v", byPath, err)
	}

	// CPU change on a running VM without hot-add fails clearly and changes nothing.
	more := want
	more.UUID, more.NumCPUs = vm.UUID, 4
	got, err := c.UpdateVM(ctx, more)
	if err == nil || !strings.Contains(err.Error(), "allow_power_cycle") {
		t.Fatalf("update without power cycle: error = %v", err)
	}
	if got.NumCPUs != 2 || !got.PowerOn {
		t.Errorf("after refused update: %+v", got)
	}
	more.AllowPowerCycle = true
	more.DiskGiB = []int64{13}
	more.Folder = bed.OtherFolder
	if got, err = c.UpdateVM(ctx, more); err != nil {
		t.Fatal(err)
	}
	if got.NumCPUs != 4 || !got.PowerOn || !slices.Equal(got.DiskGiB, []int64{13}) || got.Folder != bed.OtherFolder {
		t.Errorf("after update: %+v", got)
	}

	// Templates: the engine marks a VM as template and back.
	stopped := more
	stopped.PowerOn = false
	if _, err := c.UpdateVM(ctx, stopped); err != nil {
		t.Fatal(err)
	}
	if err := c.MarkAsTemplate(ctx, "", vm.UUID); err != nil {
		t.Fatal(err)
	}
	tmpl, err := c.FindTemplate(ctx, "", bed.OtherFolder+"/build-1")
	if err != nil || !tmpl.IsTemplate || tmpl.Path != "/DC0/vm/archive/build-1" {
		t.Fatalf("as template: %+v, %v", tmpl, err)
	}
	if err := c.MarkAsVirtualMachine(ctx, "", vm.UUID, bed.Cluster, ""); err != nil {
		t.Fatal(err)
	}
	if got, err = c.ReadVM(ctx, "", vm.UUID); err != nil || got.Template || got.Cluster != bed.Cluster {
		t.Fatalf("back as VM: %+v, %v", got, err)
	}

	if err := c.DeleteVM(ctx, "", vm.UUID); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ReadVM(ctx, "", vm.UUID); !errors.Is(err, vsphere.ErrNotFound) {
		t.Errorf("after delete: error = %v, want not found", err)
	}
	if err := c.DeleteVM(ctx, "", vm.UUID); err != nil {
		t.Errorf("second delete: %v", err)
	}
}

func TestLinkedCloneAndTemplateLookup(t *testing.T) {
	bed := testenv.Vsphere(t)
	ctx := testContext(t)
	c := newClient(t, bed)

	tmpl, err := c.FindTemplate(ctx, "", bed.TemplateName)
	if err != nil {
		t.Fatal(err)
	}
	if !tmpl.IsTemplate || tmpl.CurrentSnapshot != bed.TemplateSnapshot || len(tmpl.Disks) != 1 ||
		tmpl.Disks[0].SizeGiB != testenv.TemplateDiskGiB || !slices.Equal(tmpl.Networks, []string{bed.Network}) || tmpl.GuestID != "debian12_64Guest" {
		t.Errorf("template = %+v", tmpl)
	}
	vm, err := c.CreateVM(ctx, vsphere.VM{
		Name: "linked-1", Source: bed.Template, LinkedClone: true, Host: bed.Hosts[1], PowerOn: false,
	})
	if err != nil {
		t.Fatal(err)
	}
	if !vm.LinkedClone || vm.Host != bed.Hosts[1] || vm.Cluster != bed.Cluster || vm.PowerOn || vm.NumCPUs != 1 {
		t.Errorf("linked clone = %+v", vm)
	}
	_, err = c.CreateVM(ctx, vsphere.VM{Name: "linked-2", Source: bed.Template, LinkedClone: true, Snapshot: "nope", Cluster: bed.Cluster})
	if err == nil || !strings.Contains(err.Error(), `snapshot "nope"`) {
		t.Errorf("missing snapshot: error = %v", err)
	}
}

// TestIPWaitOnlyAfterPowerOn: a guest that never gets an address (DHCP, which the
// simulator does not answer) fails the wait after a power-on, but an update that
// leaves the VM running does not wait for it.
func TestIPWaitOnlyAfterPowerOn(t *testing.T) {
	bed := testenv.Vsphere(t)
	ctx := testContext(t)
	c := newClient(t, bed)

	want := vsphere.VM{Name: "no-ip", Source: bed.Template, Cluster: bed.Cluster, PowerOn: true, IPWait: time.Second}
	vm, err := c.CreateVM(ctx, want)
	if err == nil || !strings.Contains(err.Error(), "guest IP address") {
		t.Fatalf("create: error = %v, want the IP wait to time out", err)
	}
	want.UUID = vm.UUID
	want.ExtraConfig = map[string]string{"guestinfo.role": "build"}
	got, err := c.UpdateVM(ctx, want)
	if err != nil {
		t.Fatalf("update of a running VM: %v", err)
	}
	if !got.PowerOn || got.ExtraConfig["guestinfo.role"] != "build" || len(got.IPAddresses) != 0 {
		t.Errorf("after update: %+v", got)
	}
}

// TestInjectedTaskFault fails the power-on of a fresh clone through the simulator:
// the error names the step, and the clone is returned so it can be recorded.
func TestInjectedTaskFault(t *testing.T) {
	bed := testenv.Vsphere(t)
	ctx := testContext(t)
	c := newClient(t, bed)
	bed.Service.AddFaultRule(&simulator.FaultInjectionRule{
		MethodName: "PowerOnVM_Task", ObjectType: "VirtualMachine", ObjectName: "faulty",
		Probability: 1, FaultType: simulator.FaultTypeInsufficientResourcesFault, Message: "no capacity left", Enabled: true,
	})
	vm, err := c.CreateVM(ctx, vsphere.VM{Name: "faulty", Source: bed.Template, Cluster: bed.Cluster, PowerOn: true})
	if err == nil || !strings.Contains(err.Error(), `power on VM "/DC0/vm/faulty"`) {
		t.Fatalf("error = %v", err)
	}
	if vm.UUID == "" || vm.PowerOn {
		t.Errorf("returned VM = %+v, want the powered-off clone", vm)
	}
	client, f, err := bed.Finder(ctx)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := f.VirtualMachine(ctx, "faulty")
	if err != nil {
		t.Fatal(err)
	}
	var m mo.VirtualMachine
	if err := obj.Properties(ctx, obj.Reference(), []string{"runtime.powerState"}, &m); err != nil {
		t.Fatal(err)
	}
	if m.Runtime.PowerState != "poweredOff" {
		t.Errorf("power state = %s", m.Runtime.PowerState)
	}
	_ = client.Logout(ctx)
}
