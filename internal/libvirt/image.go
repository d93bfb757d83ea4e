package libvirt

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"
)

// ImageVolume is a golden image: a qcow2 volume VMs start from.
type ImageVolume struct {
	Pool, Name, Path string
	Format           string // "qcow2"
	Compat           string // the qcow2 compatibility level, "1.1"
	Capacity         uint64 // virtual size, bytes
	Allocation       uint64 // bytes the file takes in the pool
	// BackingPath is the file the image is an overlay on; empty when standalone.
	BackingPath string
	// Stat changes whenever the content may have: the volume's key, sizes,
	// format, backing file and modification time. The content is hashed again
	// only then.
	Stat string
}

// ShutdownCleanly asks the domain's guest to power off and waits for libvirt's
// lifecycle event saying it stopped: an image must come from a disk its guest
// closed, so a guest that does not stop within grace is an error, not forced off.
func (c *Client) ShutdownCleanly(ctx context.Context, id string, grace time.Duration) error {
	conn, err := c.connect(ctx)
	if err != nil {
		return err
	}
	dom, err := lookupDomain(conn, id)
	if err != nil {
		return err
	}
	evCtx, cancel := context.WithTimeout(ctx, grace)
	defer cancel()
	// Subscribed before the request, so the stop cannot come first unseen.
	events, err := conn.LifecycleEvents(evCtx)
	if err != nil {
		return fmt.Errorf("follow lifecycle events of domain %q: %w", dom.Name, err)
	}
	if active, err := conn.DomainIsActive(dom); err != nil {
		return fmt.Errorf("read state of domain %q: %w", dom.Name, err)
	} else if active == 0 {
		return nil
	}
	c.log(ctx, "shutting down domain for the image", "vm", dom.Name)
	if err := conn.DomainShutdown(dom); err != nil && !isErrorCode(err, golibvirt.ErrOperationInvalid) {
		return fmt.Errorf("shut down domain %q: %w", dom.Name, err)
	}
	for ev := range events {
		if ev.Dom.UUID == dom.UUID && golibvirt.DomainEventType(ev.Event) == golibvirt.DomainEventStopped {
			return nil
		}
	}
	// The stream ended: the grace ran out, or the connection went.
	if active, err := c.isActive(ctx, dom, dom.Name); err == nil && !active {
		return nil
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return fmt.Errorf("domain %q did not power off within %s of the shutdown request; an image is only made from a guest that shut down cleanly", dom.Name, grace)
}

// CopyToImage makes volume name in pool from the root volume of the stopped
// VM: a standalone qcow2 (compat 1.1). libvirt runs qemu-img convert, which
// reads through the backing chain and leaves out unallocated and zeroed
// clusters.
func (c *Client) CopyToImage(ctx context.Context, vm VM, pool, name string) (ImageVolume, error) {
	c.log(ctx, "copying root volume into the image", "vm", vm.Name, "volume", name)
	err := c.change(ctx, func(conn *golibvirt.Libvirt) error {
		srcPool, err := conn.StoragePoolLookupByName(vm.Pool)
		if err != nil {
			return fmt.Errorf("look up storage pool %q: %w", vm.Pool, err)
		}
		src, err := conn.StorageVolLookupByName(srcPool, vm.RootVolume)
		if err != nil {
			return fmt.Errorf("look up root volume %q: %w", vm.RootVolume, err)
		}
		_, capacity, _, err := conn.StorageVolGetInfo(src)
		if err != nil {
			return fmt.Errorf("read root volume %q: %w", vm.RootVolume, err)
		}
		dstPool, err := conn.StoragePoolLookupByName(pool)
		if err != nil {
			return fmt.Errorf("look up storage pool %q: %w", pool, err)
		}
		doc, err := (&libvirtxml.StorageVolume{
			Name:     name,
			Capacity: &libvirtxml.StorageVolumeSize{Value: capacity},
			Target: &libvirtxml.StorageVolumeTarget{
				Format: &libvirtxml.StorageVolumeTargetFormat{Type: "qcow2"},
				Compat: "1.1",
			},
		}).Marshal()
		if err != nil {
			return fmt.Errorf("encode image volume XML: %w", err)
		}
		if _, err := conn.StorageVolCreateXMLFrom(dstPool, doc, src, 0); err != nil {
			return fmt.Errorf("create image volume %q from %q: %w", name, vm.RootVolume, err)
		}
		return nil
	})
	if err != nil {
		return ImageVolume{}, err
	}
	return c.ReadImageVolume(ctx, pool, name)
}

// lookupVolume finds a volume by pool and name; ErrNotFound when it is gone.
func lookupVolume(conn *golibvirt.Libvirt, pool, name string) (golibvirt.StorageVol, error) {
	p, err := conn.StoragePoolLookupByName(pool)
	if err != nil {
		return golibvirt.StorageVol{}, fmt.Errorf("look up storage pool %q: %w", pool, err)
	}
	vol, err := conn.StorageVolLookupByName(p, name)
	if isErrorCode(err, golibvirt.ErrNoStorageVol) {
		return golibvirt.StorageVol{}, fmt.Errorf("volume %q in pool %q: %w", name, pool, ErrNotFound)
	}
	if err != nil {
		return golibvirt.StorageVol{}, fmt.Errorf("look up volume %q: %w", name, err)
	}
	return vol, nil
}

// ReadImageVolume reads an image volume back; ErrNotFound when it is gone.
func (c *Client) ReadImageVolume(ctx context.Context, pool, name string) (ImageVolume, error) {
	var img ImageVolume
	err := c.read(ctx, func(conn *golibvirt.Libvirt) error {
		vol, err := lookupVolume(conn, pool, name)
		if err != nil {
			return err
		}
		doc, err := conn.StorageVolGetXMLDesc(vol, 0)
		if err != nil {
			return fmt.Errorf("read volume %q: %w", name, err)
		}
		img, err = parseImageVolume(doc, vol.Key)
		img.Pool = pool
		return err
	})
	return img, err
}

func parseImageVolume(doc, key string) (ImageVolume, error) {
	var v libvirtxml.StorageVolume
	if err := v.Unmarshal(doc); err != nil {
		return ImageVolume{}, fmt.Errorf("parse volume XML: %w", err)
	}
	img := ImageVolume{Name: v.Name}
	if v.Capacity != nil {
		img.Capacity = bytesOf(v.Capacity)
	}
	if v.Allocation != nil {
		img.Allocation = bytesOf(v.Allocation)
	}
	mtime := ""
	if t := v.Target; t != nil {
		img.Path, img.Compat = t.Path, t.Compat
		if t.Format != nil {
			img.Format = t.Format.Type
		}
		if t.Timestamps != nil {
			mtime = t.Timestamps.Mtime
		}
	}
	if v.BackingStore != nil {
		img.BackingPath = v.BackingStore.Path
	}
	img.Stat = fmt.Sprintf("%s|%d|%d|%s|%s|%s", key, img.Capacity, img.Allocation, img.Format, img.BackingPath, mtime)
	return img, nil
}

// HashVolume streams the volume's content out of libvirt and returns its SHA-256.
func (c *Client) HashVolume(ctx context.Context, pool, name string) (string, error) {
	var sum string
	err := c.read(ctx, func(conn *golibvirt.Libvirt) error {
		vol, err := lookupVolume(conn, pool, name)
		if err != nil {
			return err
		}
		h := sha256.New()
		if err := conn.StorageVolDownload(vol, h, 0, 0, 0); err != nil {
			return fmt.Errorf("download volume %q: %w", name, err)
		}
		sum = hex.EncodeToString(h.Sum(nil))
		return nil
	})
	return sum, err
}

// ImageUsers names what still needs the image volume: volumes in its pool
// that are overlays on it, and domains with a disk on it.
func (c *Client) ImageUsers(ctx context.Context, pool, name string) ([]string, error) {
	var users []string
	err := c.read(ctx, func(conn *golibvirt.Libvirt) error {
		users = nil
		p, err := conn.StoragePoolLookupByName(pool)
		if err != nil {
			return fmt.Errorf("look up storage pool %q: %w", pool, err)
		}
		vol, domains, found, err := volumeUsers(conn, p, name)
		if err != nil || !found {
			return err
		}
		for _, d := range domains {
			users = append(users, "domain "+d)
		}
		path, err := conn.StorageVolGetPath(vol)
		if err != nil {
			return fmt.Errorf("read path of volume %q: %w", name, err)
		}
		vols, _, err := conn.StoragePoolListAllVolumes(p, 1, 0)
		if err != nil {
			return fmt.Errorf("list volumes of pool %q: %w", pool, err)
		}
		for _, v := range vols {
			doc, err := conn.StorageVolGetXMLDesc(v, 0)
			if err != nil {
				continue // deleted since the list
			}
			var def libvirtxml.StorageVolume
			if err := def.Unmarshal(doc); err == nil && def.BackingStore != nil && def.BackingStore.Path == path {
				users = append(users, "volume "+v.Name)
			}
		}
		slices.Sort(users)
		return nil
	})
	return users, err
}

// DeleteImageVolume deletes the image volume; one already gone is not an error.
func (c *Client) DeleteImageVolume(ctx context.Context, pool, name string) error {
	return c.change(ctx, func(conn *golibvirt.Libvirt) error {
		p, err := conn.StoragePoolLookupByName(pool)
		if err != nil {
			return fmt.Errorf("look up storage pool %q: %w", pool, err)
		}
		if err := deleteVolume(conn, p, name); err != nil {
			return fmt.Errorf("delete volume %q: %w", name, err)
		}
		return nil
	})
}

// VolumeExists reports whether pool holds a volume of that name.
func (c *Client) VolumeExists(ctx context.Context, pool, name string) (bool, error) {
	var found bool
	err := c.read(ctx, func(conn *golibvirt.Libvirt) error {
		_, err := lookupVolume(conn, pool, name)
		found = err == nil
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		return err
	})
	return found, err
}
