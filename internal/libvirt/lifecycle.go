package libvirt

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"
	"github.com/google/uuid"
	"libvirt.org/go/libvirtxml"

	"github.com/kilnhq/terraform-provider-kiln/internal/remote"
)

// CreateVM defines the domain, creates its root and seed volumes, starts it when
// want.Running, and waits until the guest's SSH server answers with the host key
// Kiln gave it. Volumes already under the VM's volume names are left alone and
// fail the create, unless an interrupted create of this VM left them. On an
// error after the domain is complete, the returned VM is the domain as it is
// (UUID set), for the caller to record so that a later apply replaces it.
func (c *Client) CreateVM(ctx context.Context, want VM) (VM, error) {
	if !c.Local() && slices.ContainsFunc(want.Interfaces, func(i Interface) bool { return i.UserMode }) {
		return VM{}, fmt.Errorf("user-mode networking needs libvirtd on this machine, not %s: its SSH port would be forwarded on the libvirt host", c.uri)
	}
	var (
		pool     golibvirt.StoragePool
		leftover *VM
	)
	err := c.read(ctx, func(conn *golibvirt.Libvirt) error {
		var err error
		if leftover, err = c.interruptedCreate(conn, want.Name); err != nil {
			return err
		}
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
	if leftover != nil {
		c.log(ctx, "removing what an interrupted create left", "vm", want.Name, "uuid", leftover.UUID)
		if err := c.change(ctx, func(conn *golibvirt.Libvirt) error { return removeInterruptedCreate(conn, *leftover) }); err != nil {
			return VM{}, err
		}
	}
	vm := want
	vm.UUID = uuid.NewString()
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
	hostKey, err := remote.NewHostKey()
	if err != nil {
		return VM{}, err
	}
	vm.SSHHostKey = hostKey.Public
	if err := c.read(ctx, func(conn *golibvirt.Libvirt) error { return volumesFree(conn, pool, vm) }); err != nil {
		return VM{}, err
	}

	// The domain comes first, marked as being created: it is Kiln's mark on the
	// volumes, so that what an interrupted create leaves is known as Kiln's.
	vm.creating = true
	dom, err := c.define(ctx, vm)
	if err != nil {
		return VM{}, err
	}
	created := []string{}
	abandon := func(err error) (VM, error) {
		cerr := c.change(ctx, func(conn *golibvirt.Libvirt) error {
			for _, name := range created {
				if err := deleteVolume(conn, pool, name); err != nil {
					return err
				}
			}
			return conn.DomainUndefineFlags(dom, undefineFlags)
		})
		if cerr != nil {
			return VM{}, fmt.Errorf("%w (removing domain %q, marked as being created, failed too: %v; the next create removes it)", err, vm.Name, cerr)
		}
		return VM{}, err
	}

	c.log(ctx, "creating root volume", "vm", vm.Name, "volume", vm.RootVolume, "full_copy", vm.FullCopy)
	err = c.change(ctx, func(conn *golibvirt.Libvirt) error {
		capacity, err := createRootVolume(conn, pool, vm)
		vm.DiskBytes = capacity
		return err
	})
	if err != nil {
		return abandon(err)
	}
	created = append(created, vm.RootVolume)
	c.log(ctx, "creating cloud-init seed volume", "vm", vm.Name, "volume", vm.SeedVolume)
	if err := c.change(ctx, func(conn *golibvirt.Libvirt) error { return createSeedVolume(conn, pool, vm, hostKey) }); err != nil {
		return abandon(err)
	}
	created = append(created, vm.SeedVolume)
	vm.creating = false
	if _, err := c.define(ctx, vm); err != nil {
		return abandon(err)
	}
	c.log(ctx, "defined domain", "vm", vm.Name, "uuid", vm.UUID)
	if vm.Running {
		if err := c.start(ctx, dom, vm); err != nil {
			return c.afterFailure(ctx, vm), err
		}
	}
	return c.ReadVM(ctx, vm.UUID)
}

// define defines (or redefines, by UUID) the domain for vm.
func (c *Client) define(ctx context.Context, vm VM) (golibvirt.Domain, error) {
	doc, err := domainXML(vm)
	if err != nil {
		return golibvirt.Domain{}, err
	}
	var dom golibvirt.Domain
	err = c.change(ctx, func(conn *golibvirt.Libvirt) error {
		dom, err = conn.DomainDefineXMLFlags(doc, 0)
		return err
	})
	if err != nil {
		return dom, fmt.Errorf("define domain %q: %w", vm.Name, err)
	}
	return dom, nil
}

// interruptedCreate returns the VM an interrupted create of name left (its
// domain still marked as being created, and not running), nil when there is no
// domain of that name, and an error when there is another.
func (c *Client) interruptedCreate(conn *golibvirt.Libvirt, name string) (*VM, error) {
	dom, err := conn.DomainLookupByName(name)
	if golibvirt.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("look up domain %q: %w", name, err)
	}
	exists := fmt.Errorf("domain %q already exists on %s: import it, or choose another name", name, c.uri)
	doc, err := conn.DomainGetXMLDesc(dom, golibvirt.DomainXMLInactive)
	if err != nil {
		return nil, fmt.Errorf("read domain %q: %w", name, err)
	}
	vm, _, err := parseDomain(doc)
	if err != nil || !vm.creating {
		return nil, exists
	}
	if active, err := conn.DomainIsActive(dom); err != nil || active == 1 {
		return nil, exists
	}
	return &vm, nil
}

// removeInterruptedCreate removes the domain an interrupted create left and the
// volumes it names, unless another domain has come to use one.
func removeInterruptedCreate(conn *golibvirt.Libvirt, left VM) error {
	dom, err := lookupDomain(conn, left.UUID)
	if err != nil {
		return err
	}
	pool, err := conn.StoragePoolLookupByName(left.Pool)
	if err != nil {
		return fmt.Errorf("look up storage pool %q: %w", left.Pool, err)
	}
	for _, name := range []string{left.RootVolume, left.SeedVolume} {
		vol, users, found, err := volumeUsers(conn, pool, name)
		if err != nil {
			return err
		}
		if !found {
			continue
		}
		if users = slices.DeleteFunc(users, func(u string) bool { return u == left.Name }); len(users) > 0 {
			return fmt.Errorf("an interrupted create of domain %q left volume %q, which domain %s now uses: Kiln leaves both alone; undefine %q once the volume is dealt with",
				left.Name, name, quoteNames(users), left.Name)
		}
		if err := conn.StorageVolDelete(vol, golibvirt.StorageVolDeleteNormal); err != nil && !isErrorCode(err, golibvirt.ErrNoStorageVol) {
			return fmt.Errorf("delete volume %q: %w", name, err)
		}
	}
	if err := conn.DomainUndefineFlags(dom, undefineFlags); err != nil && !golibvirt.IsNotFound(err) {
		return fmt.Errorf("undefine domain %q: %w", left.Name, err)
	}
	return nil
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
	if u, ok := domainUUID(id); ok {
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
// and the running state. On an error, the returned VM is the VM as it is now
// (UUID set), for the caller to record.
func (c *Client) UpdateVM(ctx context.Context, want VM) (VM, error) {
	current, err := c.ReadVM(ctx, want.UUID)
	if err != nil {
		return VM{}, err
	}
	plan := PlanUpdate(current, want)
	if !plan.InPlace() {
		return current, fmt.Errorf("domain %q cannot be changed in place (%s): it must be replaced", want.Name, strings.Join(plan.Replace, ", "))
	}
	if err := c.update(ctx, current, want, plan); err != nil {
		return c.afterFailure(ctx, current), err
	}
	return c.ReadVM(ctx, want.UUID)
}

func (c *Client) update(ctx context.Context, current, want VM, plan UpdatePlan) error {
	dom, err := c.lookupDomain(ctx, current.UUID)
	if err != nil {
		return err
	}
	if plan.Redefine {
		if current.Running {
			if err := c.shutdown(ctx, dom, current.Name); err != nil {
				return err
			}
		}
		c.log(ctx, "redefining domain", "vm", want.Name, "vcpu", want.VCPU, "memory_mib", want.MemoryMiB)
		if err := c.change(ctx, func(conn *golibvirt.Libvirt) error { return redefine(conn, dom, want) }); err != nil {
			return err
		}
	}
	if plan.GrowDisk {
		if err := c.growDisk(ctx, dom, current, plan.DesiredDiskBytes); err != nil {
			return err
		}
	}
	if plan.Stop {
		if err := c.shutdown(ctx, dom, current.Name); err != nil {
			return err
		}
	}
	if plan.Start {
		current.Running, current.BootTimeout = false, want.BootTimeout
		return c.start(ctx, dom, current)
	}
	return nil
}

// afterFailure is the VM as a failed create or update left it, for the caller
// to record: read back on a context of its own, since the caller's may be what
// ended (a timeout), or known when even that read fails.
func (c *Client) afterFailure(ctx context.Context, known VM) VM {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	if got, err := c.ReadVM(ctx, known.UUID); err == nil {
		return got
	}
	return known
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

// undefineFlags undefine a domain with whatever libvirt keeps beside it.
const undefineFlags = golibvirt.DomainUndefineManagedSave | golibvirt.DomainUndefineSnapshotsMetadata |
	golibvirt.DomainUndefineNvram | golibvirt.DomainUndefineCheckpointsMetadata

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
			c.log(ctx, "stopping domain", "vm", vm.Name)
			if err := c.destroy(ctx, dom); err != nil {
				return fmt.Errorf("stop domain %q: %w", vm.Name, err)
			}
		}
		err := c.change(ctx, func(conn *golibvirt.Libvirt) error { return conn.DomainUndefineFlags(dom, undefineFlags) })
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
		c.log(ctx, "deleting volume", "vm", vm.Name, "volume", name)
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

// domainUUID reads id as a domain UUID in its canonical form only: uuid.Parse
// also takes 32 bare hex digits, which make a valid domain name.
func domainUUID(id string) (golibvirt.UUID, bool) {
	u, err := uuid.Parse(id)
	return golibvirt.UUID(u), err == nil && len(id) == 36
}
