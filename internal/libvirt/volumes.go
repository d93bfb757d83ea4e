package libvirt

import (
	"bytes"
	"context"
	"fmt"
	"os"
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
