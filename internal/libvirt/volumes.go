package libvirt

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	golibvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/kilnhq/terraform-provider-kiln/internal/cloudinit"
	"github.com/kilnhq/terraform-provider-kiln/internal/remote"
)

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
	// compat 1.1: libvirt's default, 0.10, has no zero clusters, so blocks
	// the guest zeroes would stay allocated; an overlay image (kiln_image
	// with flatten = false) also keeps its source's version.
	spec := libvirtxml.StorageVolume{
		Name:   vm.RootVolume,
		Target: &libvirtxml.StorageVolumeTarget{Format: &libvirtxml.StorageVolumeTargetFormat{Type: "qcow2"}, Compat: "1.1"},
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
	iso, err := seedISO(vm, hostKey)
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

// seedISO is vm's cloud-init NoCloud image; a zero hostKey leaves the SSH host
// key out.
func seedISO(vm VM, hostKey remote.HostKey) ([]byte, error) {
	userData, err := vm.CloudInit.UserData(hostKey)
	if err != nil {
		return nil, err
	}
	metaData, err := cloudinit.MetaData(vm.UUID, vm.CloudInit.Hostname)
	if err != nil {
		return nil, err
	}
	return cloudinit.SeedISO(userData, metaData, os.TempDir())
}

// scrubSeed rewrites the seed volume without the SSH host key once the guest
// has answered with that key: the private key would otherwise stay on a disk
// the guest keeps attached (readable by its cdrom group) and in the pool. The
// instance ID stays, so cloud-init takes later boots for the same instance and
// keeps the key it installed. The new image is padded to the volume's size, so
// nothing of the old one is left.
func (c *Client) scrubSeed(ctx context.Context, vm VM) error {
	if vm.SeedVolume == "" {
		return nil
	}
	iso, err := seedISO(vm, remote.HostKey{})
	if err != nil {
		return err
	}
	c.log(ctx, "removing the SSH host key from the seed volume", "vm", vm.Name, "volume", vm.SeedVolume)
	err = c.change(ctx, func(conn *golibvirt.Libvirt) error {
		pool, err := conn.StoragePoolLookupByName(vm.Pool)
		if err != nil {
			return fmt.Errorf("look up storage pool %q: %w", vm.Pool, err)
		}
		vol, err := conn.StorageVolLookupByName(pool, vm.SeedVolume)
		if isErrorCode(err, golibvirt.ErrNoStorageVol) {
			return nil // removed by hand: nothing left to scrub
		}
		if err != nil {
			return err
		}
		_, capacity, _, err := conn.StorageVolGetInfo(vol)
		if err != nil {
			return err
		}
		if uint64(len(iso)) > capacity {
			return fmt.Errorf("the image without the key (%d bytes) outgrew the volume (%d bytes)", len(iso), capacity)
		}
		padded := make([]byte, capacity)
		copy(padded, iso)
		return conn.StorageVolUpload(vol, bytes.NewReader(padded), 0, capacity, 0)
	})
	if err != nil {
		return fmt.Errorf("remove the SSH host key from seed volume %q: %w", vm.SeedVolume, err)
	}
	return nil
}

func (c *Client) growDisk(ctx context.Context, dom golibvirt.Domain, vm VM, size uint64) error {
	c.log(ctx, "growing root disk", "vm", vm.Name, "bytes", size)
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

// volumesFree fails unless the VM's volume names are free in the pool: a volume
// there is not Kiln's to replace (what an interrupted create left was removed
// with its domain), and the error names the domains that use it.
func volumesFree(conn *golibvirt.Libvirt, pool golibvirt.StoragePool, vm VM) error {
	for _, name := range []string{vm.RootVolume, vm.SeedVolume} {
		_, users, found, err := volumeUsers(conn, pool, name)
		if err != nil {
			return err
		}
		if !found {
			continue
		}
		if len(users) > 0 {
			return fmt.Errorf("volume %q already exists in pool %q and domain %s uses it: choose another name", name, pool.Name, quoteNames(users))
		}
		return fmt.Errorf("volume %q already exists in pool %q; no domain uses it, and Kiln did not mark it as its own: "+
			"delete it (virsh vol-delete %s --pool %s) or choose another name", name, pool.Name, name, pool.Name)
	}
	return nil
}

// volumeUsers looks the volume name up in pool and names the domains with a
// disk on it, by pool and volume name or by its path; found is false when there
// is no such volume.
func volumeUsers(conn *golibvirt.Libvirt, pool golibvirt.StoragePool, name string) (vol golibvirt.StorageVol, users []string, found bool, err error) {
	vol, err = conn.StorageVolLookupByName(pool, name)
	if isErrorCode(err, golibvirt.ErrNoStorageVol) {
		return vol, nil, false, nil
	}
	if err != nil {
		return vol, nil, false, fmt.Errorf("look up volume %q: %w", name, err)
	}
	path, err := conn.StorageVolGetPath(vol)
	if err != nil {
		return vol, nil, true, fmt.Errorf("read path of volume %q: %w", name, err)
	}
	doms, _, err := conn.ConnectListAllDomains(1, 0)
	if err != nil {
		return vol, nil, true, fmt.Errorf("list domains: %w", err)
	}
	for _, dom := range doms {
		doc, err := conn.DomainGetXMLDesc(dom, golibvirt.DomainXMLInactive)
		if golibvirt.IsNotFound(err) {
			continue // undefined since the list
		}
		if err != nil {
			return vol, nil, true, fmt.Errorf("read domain %q: %w", dom.Name, err)
		}
		var def libvirtxml.Domain
		if err := def.Unmarshal(doc); err != nil {
			return vol, nil, true, fmt.Errorf("parse domain %q: %w", dom.Name, err)
		}
		if def.Devices != nil && slices.ContainsFunc(def.Devices.Disks, func(d libvirtxml.DomainDisk) bool {
			return diskUses(d.Source, pool.Name, name, path)
		}) {
			users = append(users, def.Name)
		}
	}
	return vol, users, true, nil
}

func diskUses(src *libvirtxml.DomainDiskSource, pool, volume, path string) bool {
	switch {
	case src == nil:
		return false
	case src.Volume != nil:
		return src.Volume.Pool == pool && src.Volume.Volume == volume
	case src.File != nil:
		return src.File.File == path
	case src.Block != nil:
		return src.Block.Dev == path
	}
	return false
}

// quoteNames renders domain names for an error message.
func quoteNames(names []string) string {
	quoted := make([]string, len(names))
	for i, n := range names {
		quoted[i] = strconv.Quote(n)
	}
	return strings.Join(quoted, ", ")
}
