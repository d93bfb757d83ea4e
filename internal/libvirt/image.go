package libvirt

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
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
	// BackingPath is the file the image is an overlay on, in BackingFormat;
	// empty when standalone.
	BackingPath, BackingFormat string
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
	if b := v.BackingStore; b != nil {
		img.BackingPath = b.Path
		if b.Format != nil {
			img.BackingFormat = b.Format.Type
		}
	}
	img.Stat = fmt.Sprintf("%s|%d|%d|%s|%s|%s", key, img.Capacity, img.Allocation, img.Format, img.BackingPath, mtime)
	return img, nil
}

// HashVolume streams the qcow2 volume's content out of libvirt and returns
// its SHA-256 and the compression type its header declares, "zlib" (qcow2's
// default) or "zstd": read from the same stream, since go-libvirt can
// deadlock on a download of part of a volume.
func (c *Client) HashVolume(ctx context.Context, pool, name string) (sum, compression string, err error) {
	err = c.read(ctx, func(conn *golibvirt.Libvirt) error {
		vol, err := lookupVolume(conn, pool, name)
		if err != nil {
			return err
		}
		h, header := sha256.New(), &headerWriter{}
		if err := conn.StorageVolDownload(vol, io.MultiWriter(h, header), 0, 0, 0); err != nil {
			return fmt.Errorf("download volume %q: %w", name, err)
		}
		sum = hex.EncodeToString(h.Sum(nil))
		if compression, err = qcow2Compression(header.b); err != nil {
			return fmt.Errorf("volume %q: %w", name, err)
		}
		return nil
	})
	return sum, compression, err
}

// VolumeRef names a volume by its pool.
type VolumeRef struct{ Pool, Name string }

func (r VolumeRef) String() string { return r.Pool + "/" + r.Name }

// VolumeUsers is what still needs a volume.
type VolumeUsers struct {
	// Domains have a disk on the volume.
	Domains []string
	// Overlays are volumes, in any active pool, with the volume as their
	// backing file.
	Overlays []VolumeRef
}

// ImageUsers finds what still needs the image volume: domains with a disk on
// it, and volumes that are overlays on it. A volume that is gone has none.
func (c *Client) ImageUsers(ctx context.Context, pool, name string) (VolumeUsers, error) {
	var users VolumeUsers
	err := c.read(ctx, func(conn *golibvirt.Libvirt) error {
		users = VolumeUsers{}
		p, err := conn.StoragePoolLookupByName(pool)
		if err != nil {
			return fmt.Errorf("look up storage pool %q: %w", pool, err)
		}
		vol, domains, found, err := volumeUsers(conn, p, name)
		if err != nil || !found {
			return err
		}
		users.Domains = domains
		path, err := conn.StorageVolGetPath(vol)
		if err != nil {
			return fmt.Errorf("read path of volume %q: %w", name, err)
		}
		pools, _, err := conn.ConnectListAllStoragePools(1, golibvirt.ConnectListStoragePoolsActive)
		if err != nil {
			return fmt.Errorf("list storage pools: %w", err)
		}
		for _, p := range pools {
			vols, _, err := conn.StoragePoolListAllVolumes(p, 1, 0)
			if err != nil {
				return fmt.Errorf("list volumes of pool %q: %w", p.Name, err)
			}
			for _, v := range vols {
				doc, err := conn.StorageVolGetXMLDesc(v, 0)
				if err != nil {
					continue // deleted since the list
				}
				var def libvirtxml.StorageVolume
				if err := def.Unmarshal(doc); err == nil && def.BackingStore != nil && def.BackingStore.Path == path {
					users.Overlays = append(users.Overlays, VolumeRef{Pool: p.Name, Name: v.Name})
				}
			}
		}
		slices.Sort(users.Domains)
		slices.SortFunc(users.Overlays, func(a, b VolumeRef) int { return strings.Compare(a.String(), b.String()) })
		return nil
	})
	return users, err
}

// VolumeByPath finds the volume stored at path; ErrNotFound when no pool
// holds one there.
func (c *Client) VolumeByPath(ctx context.Context, path string) (VolumeRef, error) {
	var ref VolumeRef
	err := c.read(ctx, func(conn *golibvirt.Libvirt) error {
		vol, err := conn.StorageVolLookupByPath(path)
		if isErrorCode(err, golibvirt.ErrNoStorageVol) {
			return fmt.Errorf("volume at %q: %w", path, ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("look up volume at %q: %w", path, err)
		}
		ref = VolumeRef{Pool: vol.Pool, Name: vol.Name}
		return nil
	})
	return ref, err
}

// RefreshPool has libvirt read the pool's volumes again from storage, after
// a file changed under it.
func (c *Client) RefreshPool(ctx context.Context, pool string) error {
	return c.change(ctx, func(conn *golibvirt.Libvirt) error {
		p, err := conn.StoragePoolLookupByName(pool)
		if err != nil {
			return fmt.Errorf("look up storage pool %q: %w", pool, err)
		}
		if err := conn.StoragePoolRefresh(p, 0); err != nil {
			return fmt.Errorf("refresh storage pool %q: %w", pool, err)
		}
		return nil
	})
}

// qcow2HeaderBytes is the length of a qcow2 version 3 header up to and
// including its compression type.
const qcow2HeaderBytes = 105

// headerWriter keeps the first qcow2HeaderBytes written through it.
type headerWriter struct{ b []byte }

func (w *headerWriter) Write(p []byte) (int, error) {
	if n := qcow2HeaderBytes - len(w.b); n > 0 {
		w.b = append(w.b, p[:min(n, len(p))]...)
	}
	return len(p), nil
}

// qcow2Compression is the compression type a qcow2 header declares. Only a
// version 3 header that sets the compression-type feature (incompatible
// feature bit 3) and is long enough to hold the type has one other than zlib.
func qcow2Compression(h []byte) (string, error) {
	if len(h) < 104 || !bytes.Equal(h[:4], []byte("QFI\xfb")) {
		return "", errors.New("not a qcow2 image")
	}
	version := binary.BigEndian.Uint32(h[4:8])
	if version < 3 {
		return "zlib", nil
	}
	incompatible := binary.BigEndian.Uint64(h[72:80])
	length := binary.BigEndian.Uint32(h[100:104])
	if incompatible&(1<<3) == 0 || length <= 104 || len(h) <= 104 {
		return "zlib", nil
	}
	switch h[104] {
	case 0:
		return "zlib", nil
	case 1:
		return "zstd", nil
	}
	return "", fmt.Errorf("unknown qcow2 compression type %d", h[104])
}

// OverlayImage makes volume name in pool a thin qcow2 overlay on the base of
// the stopped VM: the same backing file as the VM's root volume, holding what
// the VM wrote on top of its base. The root volume's own file is such an
// overlay, so it is copied as it is, streamed through a temporary file here.
// The base must be a volume, so that Kiln can tell when it is gone.
func (c *Client) OverlayImage(ctx context.Context, vm VM, pool, name string) (ImageVolume, error) {
	root, err := c.ReadImageVolume(ctx, vm.Pool, vm.RootVolume)
	if err != nil {
		return ImageVolume{}, fmt.Errorf("root volume of VM %q: %w", vm.Name, err)
	}
	if root.BackingPath == "" {
		return ImageVolume{}, fmt.Errorf("the root volume of VM %q is a full copy, not an overlay on a base: bake it with flatten", vm.Name)
	}
	if _, err := c.VolumeByPath(ctx, root.BackingPath); err != nil {
		return ImageVolume{}, fmt.Errorf("the base of VM %q, %s, must be a volume in a storage pool for an overlay image: %w", vm.Name, root.BackingPath, err)
	}
	tmp, err := os.CreateTemp("", "kiln-overlay-*.qcow2")
	if err != nil {
		return ImageVolume{}, err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	c.log(ctx, "copying the root volume's overlay into the image", "vm", vm.Name, "volume", name, "backing", root.BackingPath)
	err = c.read(ctx, func(conn *golibvirt.Libvirt) error {
		if _, err := tmp.Seek(0, io.SeekStart); err != nil {
			return err
		}
		if err := tmp.Truncate(0); err != nil {
			return err
		}
		vol, err := lookupVolume(conn, vm.Pool, vm.RootVolume)
		if err != nil {
			return err
		}
		if err := conn.StorageVolDownload(vol, tmp, 0, 0, 0); err != nil {
			return fmt.Errorf("download root volume %q: %w", vm.RootVolume, err)
		}
		return nil
	})
	if err != nil {
		return ImageVolume{}, err
	}
	size, err := tmp.Seek(0, io.SeekCurrent)
	if err != nil {
		return ImageVolume{}, err
	}
	err = c.change(ctx, func(conn *golibvirt.Libvirt) error {
		p, err := conn.StoragePoolLookupByName(pool)
		if err != nil {
			return fmt.Errorf("look up storage pool %q: %w", pool, err)
		}
		def := libvirtxml.StorageVolume{
			Name:         name,
			Capacity:     &libvirtxml.StorageVolumeSize{Value: root.Capacity},
			Target:       &libvirtxml.StorageVolumeTarget{Format: &libvirtxml.StorageVolumeTargetFormat{Type: "qcow2"}},
			BackingStore: &libvirtxml.StorageVolumeBackingStore{Path: root.BackingPath},
		}
		if root.BackingFormat != "" {
			def.BackingStore.Format = &libvirtxml.StorageVolumeTargetFormat{Type: root.BackingFormat}
		}
		doc, err := def.Marshal()
		if err != nil {
			return fmt.Errorf("encode image volume XML: %w", err)
		}
		vol, err := conn.StorageVolCreateXML(p, doc, 0)
		if err != nil {
			return fmt.Errorf("create image volume %q: %w", name, err)
		}
		if _, err := tmp.Seek(0, io.SeekStart); err != nil {
			return err
		}
		if err := conn.StorageVolUpload(vol, tmp, 0, uint64(size), 0); err != nil {
			return fmt.Errorf("upload image volume %q: %w", name, err)
		}
		return nil
	})
	if err == nil {
		// libvirt refreshes the pool after an upload in the background: the
		// sizes read next must be the uploaded file's.
		err = c.RefreshPool(ctx, pool)
	}
	if err != nil {
		// Kiln made it and nothing records it: it goes, and the next apply bakes again.
		if derr := c.DeleteImageVolume(context.WithoutCancel(ctx), pool, name); derr != nil {
			return ImageVolume{}, fmt.Errorf("%w (deleting the partial image failed too: %v)", err, derr)
		}
		return ImageVolume{}, err
	}
	return c.ReadImageVolume(ctx, pool, name)
}

// DeleteImageVolume deletes the image volume, then Kiln's record of it; one
// already gone is not an error.
func (c *Client) DeleteImageVolume(ctx context.Context, pool, name string) error {
	return c.change(ctx, func(conn *golibvirt.Libvirt) error {
		p, err := conn.StoragePoolLookupByName(pool)
		if err != nil {
			return fmt.Errorf("look up storage pool %q: %w", pool, err)
		}
		for _, vol := range []string{name, RecordVolumeName(name)} {
			if err := deleteVolume(conn, p, vol); err != nil {
				return fmt.Errorf("delete volume %q: %w", vol, err)
			}
		}
		return nil
	})
}

// RecordVolumeName is the raw volume beside an image volume that holds
// Kiln's record of the image: libvirt volumes carry no metadata of their own.
func RecordVolumeName(image string) string { return strings.TrimSuffix(image, ".qcow2") + ".kiln.json" }

// maxRecordBytes bounds a record read back: records are a few kilobytes.
const maxRecordBytes = 1 << 20

// WriteRecord stores doc as Kiln's record of the image volume, replacing a
// record left by an image deleted out of band.
func (c *Client) WriteRecord(ctx context.Context, pool, image string, doc []byte) error {
	name := RecordVolumeName(image)
	return c.change(ctx, func(conn *golibvirt.Libvirt) error {
		p, err := conn.StoragePoolLookupByName(pool)
		if err != nil {
			return fmt.Errorf("look up storage pool %q: %w", pool, err)
		}
		if err := deleteVolume(conn, p, name); err != nil {
			return fmt.Errorf("delete stale record %q: %w", name, err)
		}
		def, err := (&libvirtxml.StorageVolume{
			Name:     name,
			Capacity: &libvirtxml.StorageVolumeSize{Value: uint64(len(doc))},
			Target:   &libvirtxml.StorageVolumeTarget{Format: &libvirtxml.StorageVolumeTargetFormat{Type: "raw"}},
		}).Marshal()
		if err != nil {
			return fmt.Errorf("encode record volume XML: %w", err)
		}
		vol, err := conn.StorageVolCreateXML(p, def, 0)
		if err != nil {
			return fmt.Errorf("create record volume %q: %w", name, err)
		}
		if err := conn.StorageVolUpload(vol, bytes.NewReader(doc), 0, uint64(len(doc)), 0); err != nil {
			return fmt.Errorf("write record volume %q: %w", name, err)
		}
		return nil
	})
}

// ReadRecord reads Kiln's record of the image volume; ErrNotFound when there
// is none.
func (c *Client) ReadRecord(ctx context.Context, pool, image string) ([]byte, error) {
	name := RecordVolumeName(image)
	var doc bytes.Buffer
	err := c.read(ctx, func(conn *golibvirt.Libvirt) error {
		doc.Reset()
		vol, err := lookupVolume(conn, pool, name)
		if err != nil {
			return err
		}
		if _, capacity, _, err := conn.StorageVolGetInfo(vol); err != nil {
			return fmt.Errorf("read record volume %q: %w", name, err)
		} else if capacity > maxRecordBytes {
			return fmt.Errorf("volume %q holds %d bytes: not a record Kiln wrote", name, capacity)
		}
		if err := conn.StorageVolDownload(vol, &doc, 0, 0, 0); err != nil {
			return fmt.Errorf("read record volume %q: %w", name, err)
		}
		return nil
	})
	return doc.Bytes(), err
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
