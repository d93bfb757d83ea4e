package vsphere

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/vmware/govmomi/fault"
	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// vmProperties are the properties ReadVM needs.
var vmProperties = []string{
	"name", "config", "runtime.powerState", "runtime.host", "resourcePool", "parent",
	"guest.ipAddress", "guest.net", "guest.toolsRunningStatus", "snapshot",
}

// CreateVM clones want.Source into want.Name, applies disks, networks and power
// state, and waits for a guest IP when asked. On an error after the clone exists,
// the returned VM is the clone as it is (UUID set, once it could be read), for
// the caller to record so that a later apply replaces it.
func (c *Client) CreateVM(ctx context.Context, want VM) (VM, error) {
	i, err := c.inventory(ctx, want.Datacenter)
	if err != nil {
		return VM{}, err
	}
	folder, err := i.folder(ctx, want.Folder)
	if err != nil {
		return VM{}, err
	}
	if existing, err := i.f.VirtualMachine(ctx, folder.InventoryPath+"/"+want.Name); err == nil {
		return VM{}, fmt.Errorf("VM %q already exists: import it, or choose another name", existing.InventoryPath)
	}
	src, err := i.findVM(ctx, want.Source)
	if err != nil {
		return VM{}, fmt.Errorf("clone source: %w", err)
	}
	var srcMo mo.VirtualMachine
	if err := src.Properties(ctx, src.Reference(), []string{"config.hardware.device", "snapshot"}, &srcMo); err != nil {
		return VM{}, fmt.Errorf("read clone source %q: %w", want.Source, err)
	}
	pl, err := i.placement(ctx, want)
	if err != nil {
		return VM{}, err
	}

	poolRef, hostRef := pl.pool.Reference(), pl.host.Reference()
	spec := types.VirtualMachineCloneSpec{
		Location: types.VirtualMachineRelocateSpec{Pool: &poolRef, Host: &hostRef},
		Config: &types.VirtualMachineConfigSpec{
			NumCPUs:     want.NumCPUs,
			MemoryMB:    want.MemoryMiB,
			ExtraConfig: extraConfigValues(want),
		},
	}
	if pl.ds != nil {
		ref := pl.ds.Reference()
		spec.Location.Datastore = &ref
	}
	if want.LinkedClone {
		snap, err := snapshotRef(ctx, src, srcMo, want.Snapshot)
		if err != nil {
			return VM{}, err
		}
		spec.Snapshot = snap
		spec.Location.DiskMoveType = string(types.VirtualMachineRelocateDiskMoveOptionsCreateNewChildDiskBacking)
	}
	nics := len(object.VirtualDeviceList(srcMo.Config.Hardware.Device).SelectByType((*types.VirtualEthernetCard)(nil)))
	if want.Customization != nil {
		cs, err := customizationSpec(want.Customization, nics)
		if err != nil {
			return VM{}, err
		}
		spec.Customization = cs
	}

	c.log(ctx, "cloning VM", "source", src.InventoryPath, "name", want.Name, "linked", want.LinkedClone)
	task, err := src.Clone(ctx, folder, want.Name, spec)
	if err != nil {
		return VM{}, fmt.Errorf("clone %q to %q: %w", want.Source, want.Name, err)
	}
	info, err := task.WaitForResult(ctx)
	if err != nil {
		return VM{}, fmt.Errorf("clone %q to %q: %w", want.Source, want.Name, err)
	}
	ref, ok := info.Result.(types.ManagedObjectReference)
	if !ok {
		return VM{}, fmt.Errorf("clone %q to %q: the task returned no VM", want.Source, want.Name)
	}
	vm := object.NewVirtualMachine(i.vc, ref)
	vm.InventoryPath = folder.InventoryPath + "/" + want.Name

	created, err := c.read(ctx, i, vm)
	if err != nil {
		return VM{MOID: ref.Value}, err
	}
	if err := c.apply(ctx, i, vm, created, want); err != nil {
		return c.afterFailure(ctx, i, vm, created), err
	}
	got, err := c.read(ctx, i, vm)
	if err != nil {
		return created, err
	}
	return got, nil
}

func snapshotRef(ctx context.Context, src *object.VirtualMachine, srcMo mo.VirtualMachine, name string) (*types.ManagedObjectReference, error) {
	if name != "" {
		ref, err := src.FindSnapshot(ctx, name)
		if err != nil {
			return nil, fmt.Errorf("find snapshot %q of %q for a linked clone: %w", name, src.InventoryPath, err)
		}
		return ref, nil
	}
	if srcMo.Snapshot == nil || srcMo.Snapshot.CurrentSnapshot == nil {
		return nil, fmt.Errorf("a linked clone needs a snapshot of %q, and it has none", src.InventoryPath)
	}
	return srcMo.Snapshot.CurrentSnapshot, nil
}

func extraConfigValues(want VM) []types.BaseOptionValue {
	out := []types.BaseOptionValue{
		&types.OptionValue{Key: keySource, Value: want.Source},
		&types.OptionValue{Key: keyLinkedClone, Value: strconv.FormatBool(want.LinkedClone)},
		&types.OptionValue{Key: keySnapshot, Value: want.Snapshot},
	}
	if want.Customization != nil {
		record, _ := json.Marshal(want.Customization) // strings only: cannot fail
		out = append(out, &types.OptionValue{Key: keyCustomization, Value: string(record)})
	}
	if len(want.ExtraConfig) > 0 {
		out = append(out, &types.OptionValue{Key: keyManagedKeys, Value: strings.Join(sortedKeys(want.ExtraConfig), ",")})
		for _, k := range sortedKeys(want.ExtraConfig) {
			out = append(out, &types.OptionValue{Key: k, Value: want.ExtraConfig[k]})
		}
	}
	return out
}

func customizationSpec(cz *Customization, nics int) (*types.CustomizationSpec, error) {
	if nics == 0 {
		return nil, errors.New("guest customization needs a network adapter, and the source has none")
	}
	hostname := types.BaseCustomizationName(&types.CustomizationVirtualMachineName{})
	if cz.Hostname != "" {
		hostname = &types.CustomizationFixedName{Name: cz.Hostname}
	}
	spec := &types.CustomizationSpec{
		Identity: &types.CustomizationLinuxPrep{HostName: hostname, Domain: cz.Domain},
		GlobalIPSettings: types.CustomizationGlobalIPSettings{
			DnsServerList: cz.DNSServers,
			DnsSuffixList: cz.DNSSuffixes,
		},
	}
	for n := range nics {
		adapter := types.CustomizationIPSettings{Ip: &types.CustomizationDhcpIpGenerator{}}
		if n == 0 {
			adapter.DnsServerList = cz.DNSServers
			adapter.DnsDomain = cz.Domain
			if cz.IPv4Address != "" {
				ip, ipnet, err := net.ParseCIDR(cz.IPv4Address)
				if err != nil || ip.To4() == nil {
					return nil, fmt.Errorf("customization ipv4_address %q: want an IPv4 address with prefix length, like 10.0.0.5/24", cz.IPv4Address)
				}
				adapter.Ip = &types.CustomizationFixedIp{IpAddress: ip.String()}
				adapter.SubnetMask = net.IP(ipnet.Mask).String()
				if cz.IPv4Gateway != "" {
					adapter.Gateway = []string{cz.IPv4Gateway}
				}
			}
		}
		spec.NicSettingMap = append(spec.NicSettingMap, types.CustomizationAdapterMapping{Adapter: adapter})
	}
	return spec, nil
}

// apply brings vm from current to want: placement, configuration, power state,
// and the wait for a guest IP.
func (c *Client) apply(ctx context.Context, i inv, vm *object.VirtualMachine, current, want VM) error {
	plan, err := PlanUpdate(current, want)
	if err != nil {
		return err
	}
	if !plan.InPlace() {
		return fmt.Errorf("VM %q cannot be changed in place: %s", current.Name, strings.Join(plan.Replace, ", "))
	}
	name := vm.InventoryPath
	if plan.Move {
		folder, err := i.folder(ctx, want.Folder)
		if err != nil {
			return err
		}
		c.log(ctx, "moving VM", "vm", name, "folder", folder.InventoryPath)
		task, err := folder.MoveInto(ctx, []types.ManagedObjectReference{vm.Reference()})
		if err != nil {
			return fmt.Errorf("move VM %q to folder %q: %w", name, folder.InventoryPath, err)
		}
		if err := waitTask(ctx, task, fmt.Sprintf("move VM %q to folder %q", name, folder.InventoryPath)); err != nil {
			return err
		}
	}
	if plan.Relocate {
		target := want
		if target.Cluster == "" {
			target.Cluster = current.Cluster
		}
		if target.Cluster != current.Cluster && want.Host == current.Host {
			target.Host = "" // the old host is not in the new cluster
		}
		pl, err := i.placement(ctx, target)
		if err != nil {
			return err
		}
		poolRef, hostRef := pl.pool.Reference(), pl.host.Reference()
		spec := types.VirtualMachineRelocateSpec{Pool: &poolRef, Host: &hostRef}
		if pl.ds != nil && want.Datastore != current.Datastore {
			ref := pl.ds.Reference()
			spec.Datastore = &ref
		}
		c.log(ctx, "relocating VM", "vm", name, "pool", pl.pool.InventoryPath, "host", pl.host.InventoryPath)
		task, err := vm.Relocate(ctx, spec, types.VirtualMachineMovePriorityDefaultPriority)
		if err != nil {
			return fmt.Errorf("relocate VM %q: %w", name, err)
		}
		if err := waitTask(ctx, task, fmt.Sprintf("relocate VM %q", name)); err != nil {
			return err
		}
	}
	if plan.Stop {
		if err := c.powerOff(ctx, vm, current.ToolsRunning()); err != nil {
			return err
		}
	}
	if plan.Reconfigure() {
		spec, err := c.configSpec(ctx, i, vm, current, want, plan)
		if err != nil {
			return err
		}
		c.log(ctx, "reconfiguring VM", "vm", name)
		task, err := vm.Reconfigure(ctx, spec)
		if err != nil {
			return fmt.Errorf("reconfigure VM %q: %w", name, err)
		}
		if err := waitTask(ctx, task, fmt.Sprintf("reconfigure VM %q", name)); err != nil {
			return err
		}
	}
	if plan.Start {
		c.log(ctx, "powering VM on", "vm", name)
		task, err := vm.PowerOn(ctx)
		if err != nil {
			return fmt.Errorf("power on VM %q: %w", name, err)
		}
		if err := waitTask(ctx, task, fmt.Sprintf("power on VM %q", name)); err != nil {
			return err
		}
	}
	// Only a power-on gives the guest a new address to wait for; an update that
	// leaves the VM running must not stall on a guest that has none.
	if plan.Start && want.IPWait > 0 {
		if err := c.waitForIP(ctx, vm, want.IPWait); err != nil {
			return err
		}
	}
	return nil
}

func (c *Client) configSpec(ctx context.Context, i inv, vm *object.VirtualMachine, current, want VM, plan UpdatePlan) (types.VirtualMachineConfigSpec, error) {
	spec := types.VirtualMachineConfigSpec{}
	if plan.CPU {
		spec.NumCPUs = want.NumCPUs
	}
	if plan.Memory {
		spec.MemoryMB = want.MemoryMiB
	}
	for _, k := range sortedKeys(plan.SetExtraConfig) {
		spec.ExtraConfig = append(spec.ExtraConfig, &types.OptionValue{Key: k, Value: plan.SetExtraConfig[k]})
	}
	if len(plan.GrowDisks) == 0 && len(plan.Networks) == 0 {
		return spec, nil
	}
	devices, err := vm.Device(ctx)
	if err != nil {
		return spec, fmt.Errorf("read devices of VM %q: %w", vm.InventoryPath, err)
	}
	disks := devices.SelectByType((*types.VirtualDisk)(nil))
	for _, n := range plan.GrowDisks {
		disk := disks[n].(*types.VirtualDisk)
		disk.CapacityInBytes = want.DiskGiB[n] * GiB
		disk.CapacityInKB = disk.CapacityInBytes / 1024
		spec.DeviceChange = append(spec.DeviceChange, &types.VirtualDeviceConfigSpec{
			Operation: types.VirtualDeviceConfigSpecOperationEdit, Device: disk,
		})
	}
	nics := devices.SelectByType((*types.VirtualEthernetCard)(nil))
	for _, n := range plan.Networks {
		network, err := i.f.Network(ctx, want.Networks[n])
		if err != nil {
			return spec, fmt.Errorf("find network %q: %w", want.Networks[n], notFound(err))
		}
		backing, err := network.EthernetCardBackingInfo(ctx)
		if err != nil {
			return spec, fmt.Errorf("network %q: %w", want.Networks[n], err)
		}
		nic := nics[n]
		nic.GetVirtualDevice().Backing = backing
		spec.DeviceChange = append(spec.DeviceChange, &types.VirtualDeviceConfigSpec{
			Operation: types.VirtualDeviceConfigSpecOperationEdit, Device: nic,
		})
	}
	return spec, nil
}

// ReadVM reads a VM back by UUID or inventory path. It returns an error wrapping
// ErrNotFound when there is no such VM.
func (c *Client) ReadVM(ctx context.Context, datacenter, id string) (VM, error) {
	i, err := c.inventory(ctx, datacenter)
	if err != nil {
		return VM{}, err
	}
	vm, err := i.findVM(ctx, id)
	if err != nil {
		return VM{}, err
	}
	return c.read(ctx, i, vm)
}

func (c *Client) read(ctx context.Context, i inv, vm *object.VirtualMachine) (VM, error) {
	var m mo.VirtualMachine
	if err := vm.Properties(ctx, vm.Reference(), vmProperties, &m); err != nil {
		if fault.Is(err, &types.ManagedObjectNotFound{}) {
			return VM{}, fmt.Errorf("read VM %s: %w", vm.Reference().Value, ErrNotFound)
		}
		return VM{}, fmt.Errorf("read VM %s: %w", vm.Reference().Value, err)
	}
	if m.Config == nil {
		return VM{}, fmt.Errorf("read VM %q: it has no configuration (inaccessible?)", m.Name)
	}
	out := VM{
		Name:         m.Name,
		Datacenter:   i.dc.Name(),
		UUID:         m.Config.Uuid,
		MOID:         m.Self.Value,
		NumCPUs:      m.Config.Hardware.NumCPU,
		MemoryMiB:    int64(m.Config.Hardware.MemoryMB),
		PowerOn:      m.Runtime.PowerState == types.VirtualMachinePowerStatePoweredOn,
		CPUHotAdd:    m.Config.CpuHotAddEnabled != nil && *m.Config.CpuHotAddEnabled,
		MemoryHotAdd: m.Config.MemoryHotAddEnabled != nil && *m.Config.MemoryHotAddEnabled,
		Template:     m.Config.Template,
		IPAddresses:  guestIPs(m),
		DiskGiB:      []int64{},
	}
	if m.Guest != nil {
		out.DefaultIP = m.Guest.IpAddress
		out.toolsRunning = m.Guest.ToolsRunningStatus == string(types.VirtualMachineToolsRunningStatusGuestToolsRunning)
	}
	if out.DefaultIP == "" && len(out.IPAddresses) > 0 {
		out.DefaultIP = out.IPAddresses[0]
	}
	out.Datastore = datastoreOfPath(m.Config.Files.VmPathName)

	extra := map[string]string{}
	for _, o := range m.Config.ExtraConfig {
		if ov := o.GetOptionValue(); ov != nil {
			if s, ok := ov.Value.(string); ok {
				extra[ov.Key] = s
			}
		}
	}
	out.Source = extra[keySource]
	out.LinkedClone = extra[keyLinkedClone] == "true"
	out.Snapshot = extra[keySnapshot]
	if record := extra[keyCustomization]; record != "" {
		out.Customization = &Customization{}
		if err := json.Unmarshal([]byte(record), out.Customization); err != nil {
			return VM{}, fmt.Errorf("read VM %q: extraConfig %s: %w", m.Name, keyCustomization, err)
		}
	}
	if keys := extra[keyManagedKeys]; keys != "" {
		out.ExtraConfig = map[string]string{}
		for _, k := range strings.Split(keys, ",") {
			if v, ok := extra[k]; ok {
				out.ExtraConfig[k] = v
			}
		}
	}

	disks, networks, err := readDevices(ctx, i.vc, m.Config.Hardware.Device)
	if err != nil {
		return VM{}, fmt.Errorf("read network of VM %q: %w", m.Name, err)
	}
	for _, d := range disks {
		out.DiskGiB = append(out.DiskGiB, d.SizeGiB)
	}
	out.Networks = networks

	// Placement: folder, pool, cluster, host.
	if m.Parent != nil {
		folder, err := find.InventoryPath(ctx, i.vc, *m.Parent)
		if err != nil {
			return VM{}, fmt.Errorf("read folder of VM %q: %w", m.Name, err)
		}
		out.Folder = strings.Trim(strings.TrimPrefix(folder, i.vmFolderPath()), "/")
	}
	if m.Runtime.Host != nil {
		name, err := object.NewCommon(i.vc, *m.Runtime.Host).ObjectName(ctx)
		if err != nil {
			return VM{}, fmt.Errorf("read host of VM %q: %w", m.Name, err)
		}
		out.Host = name
	}
	if m.ResourcePool != nil {
		if err := readPool(ctx, i, *m.ResourcePool, &out); err != nil {
			return VM{}, fmt.Errorf("read resource pool of VM %q: %w", m.Name, err)
		}
	}
	return out, nil
}

// UpdateVM brings the VM want.UUID to want. On an error after it was found, the
// returned VM is the VM as it is now (UUID set), for the caller to record.
func (c *Client) UpdateVM(ctx context.Context, want VM) (VM, error) {
	i, err := c.inventory(ctx, want.Datacenter)
	if err != nil {
		return VM{}, err
	}
	vm, err := i.findVM(ctx, want.UUID)
	if err != nil {
		return VM{}, err
	}
	current, err := c.read(ctx, i, vm)
	if err != nil {
		return VM{}, err
	}
	vm.InventoryPath = i.vmFolderPath() + "/" + path.Join(current.Folder, current.Name)
	if err := c.apply(ctx, i, vm, current, want); err != nil {
		return c.afterFailure(ctx, i, vm, current), err
	}
	return c.read(ctx, i, vm)
}

// afterFailure is the VM as a failed create or update left it, for the caller
// to record: read back on a context of its own, since the caller's may be what
// ended (a timeout), or known when even that read fails.
func (c *Client) afterFailure(ctx context.Context, i inv, vm *object.VirtualMachine, known VM) VM {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	if got, err := c.read(ctx, i, vm); err == nil {
		return got
	}
	return known
}

// DeleteVM powers the VM off and destroys it with its disks. A VM that is already
// gone is not an error.
func (c *Client) DeleteVM(ctx context.Context, datacenter, id string) error {
	i, err := c.inventory(ctx, datacenter)
	if err != nil {
		return err
	}
	vm, err := i.findVM(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	current, err := c.read(ctx, i, vm)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	vm.InventoryPath = i.vmFolderPath() + "/" + path.Join(current.Folder, current.Name)
	if current.PowerOn {
		if err := c.powerOff(ctx, vm, false); err != nil {
			return err
		}
	}
	c.log(ctx, "destroying VM", "vm", vm.InventoryPath)
	task, err := vm.Destroy(ctx)
	if err != nil {
		return fmt.Errorf("destroy VM %q: %w", vm.InventoryPath, err)
	}
	return waitTask(ctx, task, fmt.Sprintf("destroy VM %q", vm.InventoryPath))
}

// MarkAsTemplate turns a powered-off VM into a template.
func (c *Client) MarkAsTemplate(ctx context.Context, datacenter, id string) error {
	i, err := c.inventory(ctx, datacenter)
	if err != nil {
		return err
	}
	vm, err := i.findVM(ctx, id)
	if err != nil {
		return err
	}
	if err := vm.MarkAsTemplate(ctx); err != nil {
		return fmt.Errorf("mark VM %q as a template: %w", id, err)
	}
	return nil
}

// MarkAsVirtualMachine turns a template back into a VM in the root pool of
// cluster (or of host's compute resource), on host when given.
func (c *Client) MarkAsVirtualMachine(ctx context.Context, datacenter, id, cluster, host string) error {
	i, err := c.inventory(ctx, datacenter)
	if err != nil {
		return err
	}
	vm, err := i.findVM(ctx, id)
	if err != nil {
		return err
	}
	pl, err := i.placement(ctx, VM{Cluster: cluster, Host: host})
	if err != nil {
		return fmt.Errorf("mark template %q as a VM: %w", id, err)
	}
	if err := vm.MarkAsVirtualMachine(ctx, *pl.pool, pl.host); err != nil {
		return fmt.Errorf("mark template %q as a VM: %w", id, err)
	}
	return nil
}
