package libvirt

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"
	"golang.org/x/crypto/ssh"
	"libvirt.org/go/libvirtxml"

	"github.com/kilnhq/terraform-provider-kiln/internal/cloudinit"
	"github.com/kilnhq/terraform-provider-kiln/internal/remote"
	"github.com/kilnhq/terraform-provider-kiln/internal/wait"
)

// Logger receives progress messages; the provider passes tflog through it.
type Logger func(ctx context.Context, msg string, fields map[string]any)

// ShutdownGrace is how long a guest is given to power off after an ACPI shutdown
// request before it is forced off.
const ShutdownGrace = 90 * time.Second

func (c *Client) log(ctx context.Context, msg string, fields map[string]any) {
	if c.Log != nil {
		c.Log(ctx, msg, fields)
	}
}

// CreateVM creates the root and seed volumes and the domain, starts it when
// want.Running, and waits until the guest's SSH server answers with the host key
// Kiln gave it. On an error after the domain is defined, the returned VM names
// it (UUID set) so the caller can record it and a later apply can replace it.
func (c *Client) CreateVM(ctx context.Context, want VM) (VM, error) {
	var pool golibvirt.StoragePool
	err := c.read(ctx, func(conn *golibvirt.Libvirt) error {
		if _, err := conn.DomainLookupByName(want.Name); err == nil {
			return fmt.Errorf("domain %q already exists on %s: import it, or choose another name", want.Name, c.uri)
		} else if !golibvirt.IsNotFound(err) {
			return fmt.Errorf("look up domain %q: %w", want.Name, err)
		}
		var err error
		if pool, err = conn.StoragePoolLookupByName(want.Pool); err != nil {
			return fmt.Errorf("look up storage pool %q: %w", want.Pool, err)
		}
		if want.Type == "" {
			want.Type, err = c.preferredDomainType(conn)
		}
		return err
	})
	if err != nil {
		return VM{}, err
	}
	uuid, err := newUUID()
	if err != nil {
		return VM{}, err
	}
	vm := want
	vm.UUID = uuid
	vm.RootVolume, vm.SeedVolume = rootVolumeName(want.Name), seedVolumeName(want.Name)
	for i := range vm.Interfaces {
		iface := &vm.Interfaces[i]
		if iface.MAC == "" {
			if iface.MAC, err = randomMAC(); err != nil {
				return VM{}, err
			}
		}
		if iface.UserMode && iface.SSHForwardPort == 0 {
			if iface.SSHForwardPort, err = freeLocalPort(); err != nil {
				return VM{}, err
			}
		}
	}

	// Volumes left by an interrupted create carry Kiln's names and no domain uses
	// them (the domain does not exist): remove them so this create converges.
	for _, name := range []string{vm.RootVolume, vm.SeedVolume} {
		if err := c.change(ctx, func(conn *golibvirt.Libvirt) error { return deleteVolume(conn, pool, name) }); err != nil {
			return VM{}, fmt.Errorf("remove leftover volume %q: %w", name, err)
		}
	}
	created := []string{}
	cleanup := func() {
		for _, name := range created {
			_ = c.change(ctx, func(conn *golibvirt.Libvirt) error { return deleteVolume(conn, pool, name) })
		}
	}

	c.log(ctx, "creating root volume", map[string]any{"vm": vm.Name, "volume": vm.RootVolume, "full_copy": vm.FullCopy})
	err = c.change(ctx, func(conn *golibvirt.Libvirt) error {
		capacity, err := createRootVolume(conn, pool, vm)
		vm.DiskBytes = capacity
		return err
	})
	if err != nil {
		cleanup()
		return VM{}, err
	}
	created = append(created, vm.RootVolume)

	hostKey, err := remote.NewHostKey()
	if err != nil {
		cleanup()
		return VM{}, err
	}
	vm.SSHHostKey = hostKey.Public
	c.log(ctx, "creating cloud-init seed volume", map[string]any{"vm": vm.Name, "volume": vm.SeedVolume})
	if err := c.change(ctx, func(conn *golibvirt.Libvirt) error { return createSeedVolume(conn, pool, vm, hostKey) }); err != nil {
		cleanup()
		return VM{}, err
	}
	created = append(created, vm.SeedVolume)

	doc, err := domainXML(vm)
	if err != nil {
		cleanup()
		return VM{}, err
	}
	var dom golibvirt.Domain
	err = c.change(ctx, func(conn *golibvirt.Libvirt) error {
		d, err := conn.DomainDefineXMLFlags(doc, 0)
		dom = d
		return err
	})
	if err != nil {
		cleanup()
		return VM{}, fmt.Errorf("define domain %q: %w", vm.Name, err)
	}
	c.log(ctx, "defined domain", map[string]any{"vm": vm.Name, "uuid": vm.UUID})
	if vm.Running {
		if err := c.start(ctx, dom, vm); err != nil {
			return VM{UUID: vm.UUID, Name: vm.Name}, err
		}
	}
	return c.ReadVM(ctx, vm.UUID)
}

// createRootVolume creates the VM's root disk from its base and returns its capacity.
func createRootVolume(conn *golibvirt.Libvirt, pool golibvirt.StoragePool, vm VM) (uint64, error) {
	var (
		basePath, baseFormat string
		baseCapacity         uint64
		baseVol              golibvirt.StorageVol
		haveBaseVol          bool
		err                  error
	)
	if vm.BaseVolume != "" {
		baseVol, err = conn.StorageVolLookupByName(pool, vm.BaseVolume)
		if err != nil {
			return 0, fmt.Errorf("look up base volume %q in pool %q: %w", vm.BaseVolume, vm.Pool, err)
		}
		haveBaseVol = true
	} else if baseVol, err = conn.StorageVolLookupByPath(vm.BaseImage); err == nil {
		haveBaseVol = true
	} else {
		basePath = vm.BaseImage
	}
	if haveBaseVol {
		doc, err := conn.StorageVolGetXMLDesc(baseVol, 0)
		if err != nil {
			return 0, fmt.Errorf("read base volume: %w", err)
		}
		var base libvirtxml.StorageVolume
		if err := base.Unmarshal(doc); err != nil {
			return 0, fmt.Errorf("parse base volume XML: %w", err)
		}
		if base.Target != nil {
			basePath = base.Target.Path
			if base.Target.Format != nil {
				baseFormat = base.Target.Format.Type
			}
		}
		if base.Capacity != nil {
			baseCapacity = bytesOf(base.Capacity)
		}
	}
	if vm.DiskBytes != 0 && baseCapacity != 0 && vm.DiskBytes < baseCapacity {
		return 0, fmt.Errorf("disk size %d bytes is smaller than the base image's %d bytes", vm.DiskBytes, baseCapacity)
	}
	capacity := max(vm.DiskBytes, baseCapacity)
	spec := libvirtxml.StorageVolume{
		Name:   vm.RootVolume,
		Target: &libvirtxml.StorageVolumeTarget{Format: &libvirtxml.StorageVolumeTargetFormat{Type: "qcow2"}},
	}
	if vm.FullCopy {
		if !haveBaseVol {
			return 0, fmt.Errorf("full copy needs the base %q to be a volume in a storage pool", vm.BaseImage)
		}
		spec.Capacity = &libvirtxml.StorageVolumeSize{Value: baseCapacity}
	} else {
		spec.Capacity = &libvirtxml.StorageVolumeSize{Value: capacity}
		spec.BackingStore = &libvirtxml.StorageVolumeBackingStore{Path: basePath}
		if baseFormat != "" {
			spec.BackingStore.Format = &libvirtxml.StorageVolumeTargetFormat{Type: baseFormat}
		}
	}
	doc, err := spec.Marshal()
	if err != nil {
		return 0, fmt.Errorf("encode root volume XML: %w", err)
	}
	var vol golibvirt.StorageVol
	if vm.FullCopy {
		vol, err = conn.StorageVolCreateXMLFrom(pool, doc, baseVol, 0)
	} else {
		vol, err = conn.StorageVolCreateXML(pool, doc, 0)
	}
	if err != nil {
		return 0, fmt.Errorf("create root volume %q: %w", vm.RootVolume, err)
	}
	if vm.FullCopy && capacity > baseCapacity {
		if err := conn.StorageVolResize(vol, capacity, 0); err != nil {
			return 0, fmt.Errorf("grow root volume %q: %w", vm.RootVolume, err)
		}
	}
	_, got, _, err := conn.StorageVolGetInfo(vol)
	if err != nil {
		return 0, fmt.Errorf("read root volume %q: %w", vm.RootVolume, err)
	}
	return got, nil
}

func createSeedVolume(conn *golibvirt.Libvirt, pool golibvirt.StoragePool, vm VM, hostKey remote.HostKey) error {
	userData, err := vm.CloudInit.UserData(hostKey)
	if err != nil {
		return err
	}
	metaData, err := cloudinit.MetaData(vm.UUID, vm.CloudInit.Hostname)
	if err != nil {
		return err
	}
	iso, err := cloudinit.SeedISO(userData, metaData, os.TempDir())
	if err != nil {
		return err
	}
	doc, err := (&libvirtxml.StorageVolume{
		Name:     vm.SeedVolume,
		Capacity: &libvirtxml.StorageVolumeSize{Value: uint64(len(iso))},
		Target:   &libvirtxml.StorageVolumeTarget{Format: &libvirtxml.StorageVolumeTargetFormat{Type: "raw"}},
	}).Marshal()
	if err != nil {
		return fmt.Errorf("encode seed volume XML: %w", err)
	}
	vol, err := conn.StorageVolCreateXML(pool, doc, 0)
	if err != nil {
		return fmt.Errorf("create seed volume %q: %w", vm.SeedVolume, err)
	}
	if err := conn.StorageVolUpload(vol, bytes.NewReader(iso), 0, uint64(len(iso)), 0); err != nil {
		return fmt.Errorf("upload seed volume %q: %w", vm.SeedVolume, err)
	}
	return nil
}

// start boots the domain (or resumes it when paused) and waits for SSH,
// following its serial console. A boot it starts must show kernel output within
// vm.BootTimeout (when set), or the domain is forced off and a *BootError returned.
func (c *Client) start(ctx context.Context, dom golibvirt.Domain, vm VM) error {
	var state int32
	err := c.read(ctx, func(conn *golibvirt.Libvirt) error {
		var err error
		state, _, err = conn.DomainGetState(dom, 0)
		return err
	})
	if err != nil {
		return fmt.Errorf("read state of domain %q: %w", vm.Name, err)
	}
	c.log(ctx, "starting domain", map[string]any{"vm": vm.Name})
	var con *console
	bootTimeout := time.Duration(0) // only a boot started here can be timed
	switch golibvirt.DomainState(state) {
	case golibvirt.DomainRunning:
		con = c.followConsole(ctx, dom)
	case golibvirt.DomainPaused:
		con = c.followConsole(ctx, dom)
		if err := c.change(ctx, func(conn *golibvirt.Libvirt) error { return conn.DomainResume(dom) }); err != nil {
			con.Close()
			return fmt.Errorf("resume domain %q: %w", vm.Name, err)
		}
	default:
		// Started paused, so the console is attached before the firmware prints:
		// QEMU drops serial output nobody is attached to.
		err := c.change(ctx, func(conn *golibvirt.Libvirt) error {
			_, err := conn.DomainCreateWithFlags(dom, uint32(golibvirt.DomainStartPaused))
			return err
		})
		if err != nil {
			return fmt.Errorf("start domain %q: %w", vm.Name, err)
		}
		con = c.followConsole(ctx, dom)
		if err := c.change(ctx, func(conn *golibvirt.Libvirt) error { return conn.DomainResume(dom) }); err != nil {
			con.Close()
			return fmt.Errorf("resume domain %q after attaching its console: %w", vm.Name, err)
		}
		bootTimeout = vm.BootTimeout
	}
	defer con.Close()
	if con.err != nil {
		c.log(ctx, "not following the serial console: boot progress is not checked", map[string]any{"vm": vm.Name, "error": con.err.Error()})
		bootTimeout = 0
	}
	err = c.waitForSSH(ctx, dom, vm, con, bootTimeout)
	var bootErr *BootError
	if errors.As(err, &bootErr) {
		// The guest cannot get anywhere; stopped, it no longer holds a CPU until
		// it is replaced or destroyed.
		c.log(ctx, "guest did not boot; forcing it off", map[string]any{"vm": vm.Name, "seen": bootErr.Seen.String()})
		if derr := c.destroy(ctx, dom); derr != nil {
			return fmt.Errorf("%w (forcing it off failed too: %v)", err, derr)
		}
	}
	return err
}

// waitForSSH waits until the guest's SSH server proves its identity with the
// host key Kiln generated for it. With bootTimeout set, it gives up then with a
// *BootError unless the console has shown kernel output.
func (c *Client) waitForSSH(ctx context.Context, dom golibvirt.Domain, vm VM, con *console, bootTimeout time.Duration) error {
	key, err := remote.ParsePublicKey(vm.SSHHostKey)
	if err != nil {
		return fmt.Errorf("domain %q: %w", vm.Name, err)
	}
	if bootTimeout > 0 {
		// A first wait as long as the boot timeout: the SSH probes' connections
		// end with it too, so a guest that never booted holds nothing past it.
		bootCtx, cancel := context.WithTimeout(ctx, bootTimeout)
		err := c.reachSSH(bootCtx, dom, vm, con, key)
		cancel()
		if err == nil || ctx.Err() != nil || !errors.Is(err, context.DeadlineExceeded) {
			return err
		}
		switch seen := con.log.Phase(); {
		case con.ended():
			// The console went with its connection (libvirtd restarted): what
			// it did not show proves nothing.
			c.log(ctx, "the serial console closed; boot progress is not checked", map[string]any{"vm": vm.Name, "seen": seen.String()})
		case seen < BootKernel:
			return &BootError{Domain: vm.Name, Type: vm.Type, Waited: bootTimeout, Seen: seen, Tail: con.log.Tail()}
		default:
			c.log(ctx, "the kernel is up; still waiting for SSH", map[string]any{"vm": vm.Name})
		}
	}
	return c.reachSSH(ctx, dom, vm, con, key)
}

func (c *Client) reachSSH(ctx context.Context, dom golibvirt.Domain, vm VM, con *console, key ssh.PublicKey) error {
	host, port := "", 0
	err := wait.Until(ctx, fmt.Sprintf("an address for domain %q", vm.Name), wait.Default, func(context.Context) (bool, error) {
		err := c.read(ctx, func(conn *golibvirt.Libvirt) error {
			state, _, err := conn.DomainGetState(dom, 0)
			if err != nil {
				return fmt.Errorf("read state of domain %q: %w", vm.Name, err)
			}
			if golibvirt.DomainState(state) != golibvirt.DomainRunning {
				return fmt.Errorf("domain %q stopped while booting (state %d); %s", vm.Name, state, con.describe(vm.Name))
			}
			addrs, err := addresses(conn, dom, true)
			host, port = sshEndpoint(vm, addrs)
			return err
		})
		return host != "", err
	})
	if err != nil {
		return err
	}
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	c.log(ctx, "waiting for SSH", map[string]any{"vm": vm.Name, "address": addr})
	if err := remote.WaitForHostKey(ctx, addr, key); err != nil {
		return fmt.Errorf("domain %q: %w; %s", vm.Name, err, con.describe(vm.Name))
	}
	c.log(ctx, "SSH answers with the pinned host key", map[string]any{"vm": vm.Name, "address": addr})
	return nil
}

// sshEndpoint is where the guest's SSH server is reached: the forwarded port on
// 127.0.0.1 for user-mode networking, otherwise port 22 on its first address.
func sshEndpoint(vm VM, addresses []string) (string, int) {
	for _, iface := range vm.Interfaces {
		if iface.UserMode {
			return "127.0.0.1", iface.SSHForwardPort
		}
	}
	if len(addresses) > 0 {
		return addresses[0], 22
	}
	return "", 0
}

// addresses lists the guest's IP addresses from the guest agent, or from the
// libvirt network's DHCP leases when the agent is not connected. A source that
// fails is skipped; only a lost connection is an error.
func addresses(conn *golibvirt.Libvirt, dom golibvirt.Domain, agentConnected bool) ([]string, error) {
	sources := []golibvirt.DomainInterfaceAddressesSource{golibvirt.DomainInterfaceAddressesSrcLease}
	if agentConnected {
		sources = append([]golibvirt.DomainInterfaceAddressesSource{golibvirt.DomainInterfaceAddressesSrcAgent}, sources...)
	}
	for _, src := range sources {
		ifaces, err := conn.DomainInterfaceAddresses(dom, uint32(src), 0)
		if disconnected(err) {
			return nil, err
		}
		if err != nil {
			continue
		}
		var out []string
		for _, iface := range ifaces {
			for _, a := range iface.Addrs {
				ip := net.ParseIP(a.Addr)
				if ip == nil || ip.IsLoopback() || ip.IsLinkLocalUnicast() {
					continue
				}
				out = append(out, ip.String())
			}
		}
		if len(out) > 0 {
			return out, nil
		}
	}
	return nil, nil
}

// ReadVM reads a VM back by UUID or name. It returns ErrNotFound when there is
// no such domain.
func (c *Client) ReadVM(ctx context.Context, id string) (VM, error) {
	var vm VM
	err := c.read(ctx, func(conn *golibvirt.Libvirt) error {
		var err error
		vm, err = readVM(conn, id)
		return err
	})
	return vm, err
}

func readVM(conn *golibvirt.Libvirt, id string) (VM, error) {
	dom, err := lookupDomain(conn, id)
	if err != nil {
		return VM{}, err
	}
	inactive, err := conn.DomainGetXMLDesc(dom, golibvirt.DomainXMLInactive)
	if err != nil {
		return VM{}, fmt.Errorf("read domain %q: %w", id, err)
	}
	vm, _, err := parseDomain(inactive)
	if err != nil {
		return VM{}, fmt.Errorf("domain %q: %w", id, err)
	}
	state, _, err := conn.DomainGetState(dom, 0)
	if err != nil {
		return VM{}, fmt.Errorf("read state of domain %q: %w", id, err)
	}
	vm.Running = golibvirt.DomainState(state) == golibvirt.DomainRunning
	if vm.Pool != "" && vm.RootVolume != "" {
		if vm.DiskBytes, err = volumeCapacity(conn, vm.Pool, vm.RootVolume); disconnected(err) {
			return VM{}, err
		}
	}
	if vm.Running {
		live, err := conn.DomainGetXMLDesc(dom, 0)
		if err != nil {
			return VM{}, fmt.Errorf("read domain %q: %w", id, err)
		}
		_, liveDom, err := parseDomain(live)
		if err != nil {
			return VM{}, fmt.Errorf("domain %q: %w", id, err)
		}
		if vm.IPAddresses, err = addresses(conn, dom, agentConnected(liveDom)); err != nil {
			return VM{}, err
		}
	}
	vm.SSHHost, vm.SSHPort = sshEndpoint(vm, vm.IPAddresses)
	return vm, nil
}

// volumeCapacity is the capacity of a volume; 0 with the error when it cannot be read.
func volumeCapacity(conn *golibvirt.Libvirt, poolName, name string) (uint64, error) {
	pool, err := conn.StoragePoolLookupByName(poolName)
	if err != nil {
		return 0, err
	}
	vol, err := conn.StorageVolLookupByName(pool, name)
	if err != nil {
		return 0, err
	}
	_, capacity, _, err := conn.StorageVolGetInfo(vol)
	return capacity, err
}

func agentConnected(dom libvirtxml.Domain) bool {
	if dom.Devices == nil {
		return false
	}
	for _, ch := range dom.Devices.Channels {
		if ch.Target != nil && ch.Target.VirtIO != nil && ch.Target.VirtIO.Name == agentChannel {
			return ch.Target.VirtIO.State == "connected"
		}
	}
	return false
}

func (c *Client) lookupDomain(ctx context.Context, id string) (golibvirt.Domain, error) {
	var dom golibvirt.Domain
	err := c.read(ctx, func(conn *golibvirt.Libvirt) error {
		var err error
		dom, err = lookupDomain(conn, id)
		return err
	})
	return dom, err
}

func lookupDomain(conn *golibvirt.Libvirt, id string) (golibvirt.Domain, error) {
	var (
		dom golibvirt.Domain
		err error
	)
	if u, ok := parseUUID(id); ok {
		dom, err = conn.DomainLookupByUUID(u)
	} else {
		dom, err = conn.DomainLookupByName(id)
	}
	if golibvirt.IsNotFound(err) {
		return dom, fmt.Errorf("domain %q: %w", id, ErrNotFound)
	}
	if err != nil {
		return dom, fmt.Errorf("look up domain %q: %w", id, err)
	}
	return dom, nil
}

// UpdateVM brings the VM identified by want.UUID to want in place: vCPUs and
// memory with a controlled restart, the root disk grown (live when running),
// and the running state.
func (c *Client) UpdateVM(ctx context.Context, want VM) (VM, error) {
	current, err := c.ReadVM(ctx, want.UUID)
	if err != nil {
		return VM{}, err
	}
	plan := PlanUpdate(current, want)
	if !plan.InPlace() {
		return current, fmt.Errorf("domain %q cannot be changed in place (%s): it must be replaced", want.Name, strings.Join(plan.Replace, ", "))
	}
	dom, err := c.lookupDomain(ctx, want.UUID)
	if err != nil {
		return current, err
	}
	if plan.Redefine {
		if current.Running {
			if err := c.shutdown(ctx, dom, current.Name); err != nil {
				return current, err
			}
		}
		c.log(ctx, "redefining domain", map[string]any{"vm": want.Name, "vcpu": want.VCPU, "memory_mib": want.MemoryMiB})
		if err := c.change(ctx, func(conn *golibvirt.Libvirt) error { return redefine(conn, dom, want) }); err != nil {
			return current, err
		}
	}
	if plan.GrowDisk {
		if err := c.growDisk(ctx, dom, current, plan.DesiredDiskBytes); err != nil {
			return current, err
		}
	}
	if plan.Stop {
		if err := c.shutdown(ctx, dom, current.Name); err != nil {
			return current, err
		}
	}
	if plan.Start {
		current.Running, current.BootTimeout = false, want.BootTimeout
		if err := c.start(ctx, dom, current); err != nil {
			return current, err
		}
	}
	return c.ReadVM(ctx, want.UUID)
}

func redefine(conn *golibvirt.Libvirt, dom golibvirt.Domain, want VM) error {
	doc, err := conn.DomainGetXMLDesc(dom, golibvirt.DomainXMLInactive)
	if err != nil {
		return fmt.Errorf("read domain %q: %w", want.Name, err)
	}
	var def libvirtxml.Domain
	if err := def.Unmarshal(doc); err != nil {
		return fmt.Errorf("parse domain %q: %w", want.Name, err)
	}
	def.Memory = &libvirtxml.DomainMemory{Value: uint(want.MemoryMiB), Unit: "MiB"}
	def.CurrentMemory = nil
	def.VCPU = &libvirtxml.DomainVCPU{Value: want.VCPU}
	out, err := def.Marshal()
	if err != nil {
		return fmt.Errorf("encode domain %q: %w", want.Name, err)
	}
	if _, err := conn.DomainDefineXMLFlags(out, 0); err != nil {
		return fmt.Errorf("redefine domain %q: %w", want.Name, err)
	}
	return nil
}

func (c *Client) growDisk(ctx context.Context, dom golibvirt.Domain, vm VM, size uint64) error {
	c.log(ctx, "growing root disk", map[string]any{"vm": vm.Name, "bytes": size})
	active, err := c.isActive(ctx, dom, vm.Name)
	if err != nil {
		return err
	}
	if active {
		// QEMU holds the image open: grow it through QEMU so the guest sees it now.
		err := c.change(ctx, func(conn *golibvirt.Libvirt) error {
			return conn.DomainBlockResize(dom, rootDiskTarget, size, golibvirt.DomainBlockResizeBytes)
		})
		if err != nil {
			return fmt.Errorf("grow disk %s of domain %q: %w", rootDiskTarget, vm.Name, err)
		}
		return nil
	}
	return c.change(ctx, func(conn *golibvirt.Libvirt) error {
		pool, err := conn.StoragePoolLookupByName(vm.Pool)
		if err != nil {
			return fmt.Errorf("look up storage pool %q: %w", vm.Pool, err)
		}
		vol, err := conn.StorageVolLookupByName(pool, vm.RootVolume)
		if err != nil {
			return fmt.Errorf("look up root volume %q: %w", vm.RootVolume, err)
		}
		if err := conn.StorageVolResize(vol, size, 0); err != nil {
			return fmt.Errorf("grow root volume %q: %w", vm.RootVolume, err)
		}
		return nil
	})
}

func (c *Client) isActive(ctx context.Context, dom golibvirt.Domain, name string) (bool, error) {
	var active int32
	err := c.read(ctx, func(conn *golibvirt.Libvirt) error {
		var err error
		active, err = conn.DomainIsActive(dom)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("read state of domain %q: %w", name, err)
	}
	return active == 1, nil
}

// shutdown asks the guest to power off and forces it off after ShutdownGrace.
func (c *Client) shutdown(ctx context.Context, dom golibvirt.Domain, name string) error {
	c.log(ctx, "shutting down domain", map[string]any{"vm": name})
	err := c.change(ctx, func(conn *golibvirt.Libvirt) error { return conn.DomainShutdown(dom) })
	if err != nil && !isErrorCode(err, golibvirt.ErrOperationInvalid) {
		return fmt.Errorf("shut down domain %q: %w", name, err)
	}
	graceCtx, cancel := context.WithTimeout(ctx, ShutdownGrace)
	defer cancel()
	err = wait.Until(graceCtx, fmt.Sprintf("domain %q to power off", name), wait.Default, func(ctx context.Context) (bool, error) {
		active, err := c.isActive(ctx, dom, name)
		return !active, err
	})
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return err
	}
	c.log(ctx, "guest did not power off in time; forcing it off", map[string]any{"vm": name})
	if err := c.destroy(ctx, dom); err != nil {
		return fmt.Errorf("force off domain %q: %w", name, err)
	}
	return nil
}

// destroy forces the domain off; one already off is not an error.
func (c *Client) destroy(ctx context.Context, dom golibvirt.Domain) error {
	err := c.change(ctx, func(conn *golibvirt.Libvirt) error { return conn.DomainDestroy(dom) })
	if isErrorCode(err, golibvirt.ErrOperationInvalid) {
		return nil
	}
	return err
}

// DeleteVM removes the domain and the volumes Kiln created for it (root and
// seed); the base volume or image is left alone. A missing domain or volume is
// not an error, so a delete interrupted half-way can simply run again.
func (c *Client) DeleteVM(ctx context.Context, vm VM) error {
	id := vm.UUID
	if id == "" {
		id = vm.Name
	}
	dom, err := c.lookupDomain(ctx, id)
	switch {
	case errors.Is(err, ErrNotFound):
	case err != nil:
		return err
	default:
		if current, err := c.ReadVM(ctx, id); err == nil {
			vm.Pool, vm.RootVolume, vm.SeedVolume, vm.Name = current.Pool, current.RootVolume, current.SeedVolume, current.Name
		}
		if active, err := c.isActive(ctx, dom, vm.Name); err == nil && active {
			c.log(ctx, "stopping domain", map[string]any{"vm": vm.Name})
			if err := c.destroy(ctx, dom); err != nil {
				return fmt.Errorf("stop domain %q: %w", vm.Name, err)
			}
		}
		flags := golibvirt.DomainUndefineManagedSave | golibvirt.DomainUndefineSnapshotsMetadata |
			golibvirt.DomainUndefineNvram | golibvirt.DomainUndefineCheckpointsMetadata
		err := c.change(ctx, func(conn *golibvirt.Libvirt) error { return conn.DomainUndefineFlags(dom, flags) })
		if err != nil && !golibvirt.IsNotFound(err) {
			return fmt.Errorf("undefine domain %q: %w", vm.Name, err)
		}
	}
	if vm.Pool == "" {
		return nil
	}
	for _, name := range []string{vm.RootVolume, vm.SeedVolume} {
		if name == "" {
			continue
		}
		c.log(ctx, "deleting volume", map[string]any{"vm": vm.Name, "volume": name})
		err := c.change(ctx, func(conn *golibvirt.Libvirt) error {
			pool, err := conn.StoragePoolLookupByName(vm.Pool)
			if err != nil {
				return fmt.Errorf("look up storage pool %q: %w", vm.Pool, err)
			}
			return deleteVolume(conn, pool, name)
		})
		if err != nil {
			return fmt.Errorf("delete volume %q: %w", name, err)
		}
	}
	return nil
}

func deleteVolume(conn *golibvirt.Libvirt, pool golibvirt.StoragePool, name string) error {
	vol, err := conn.StorageVolLookupByName(pool, name)
	if isErrorCode(err, golibvirt.ErrNoStorageVol) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := conn.StorageVolDelete(vol, golibvirt.StorageVolDeleteNormal); err != nil && !isErrorCode(err, golibvirt.ErrNoStorageVol) {
		return err
	}
	return nil
}

// preferredDomainType is kvm when the host offers it, else qemu (software emulation).
func (c *Client) preferredDomainType(conn *golibvirt.Libvirt) (string, error) {
	doc, err := conn.ConnectGetCapabilities()
	if err != nil {
		return "", fmt.Errorf("read capabilities of %s: %w", c.uri, err)
	}
	var caps libvirtxml.Caps
	if err := caps.Unmarshal(doc); err != nil {
		return "", fmt.Errorf("parse capabilities of %s: %w", c.uri, err)
	}
	return domainTypeFrom(caps), nil
}

func domainTypeFrom(caps libvirtxml.Caps) string {
	for _, g := range caps.Guests {
		if g.OSType != "hvm" || g.Arch.Name != "x86_64" {
			continue
		}
		for _, d := range g.Arch.Domains {
			if d.Type == "kvm" {
				return "kvm"
			}
		}
	}
	return "qemu"
}

func bytesOf(s *libvirtxml.StorageVolumeSize) uint64 {
	switch strings.ToLower(s.Unit) {
	case "", "b", "bytes":
		return s.Value
	case "k", "kib":
		return s.Value << 10
	case "m", "mib":
		return s.Value << 20
	case "g", "gib":
		return s.Value << 30
	}
	return s.Value
}

// freeLocalPort finds a free TCP port on 127.0.0.1 for a user-mode SSH forward.
func freeLocalPort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port on 127.0.0.1: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func newUUID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16]), nil
}

func parseUUID(s string) (golibvirt.UUID, bool) {
	var u golibvirt.UUID
	hex := strings.ReplaceAll(s, "-", "")
	if len(hex) != 32 || len(s) != 36 {
		return u, false
	}
	for i := range 16 {
		v, err := strconv.ParseUint(hex[2*i:2*i+2], 16, 8)
		if err != nil {
			return u, false
		}
		u[i] = byte(v)
	}
	return u, true
}
