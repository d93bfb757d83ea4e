package image

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/kilnhq/terraform-provider-kiln/internal/hostprep"
	"github.com/kilnhq/terraform-provider-kiln/internal/libvirt"
	"github.com/kilnhq/terraform-provider-kiln/internal/remote"
)

// What becomes of the source VM once its disk is an image.
const (
	SourceStopped = "stopped"
	SourceDeleted = "deleted"
)

// ShutdownGrace is how long the generalized guest has to power off.
const ShutdownGrace = 3 * time.Minute

// Spec is an image to bake from a provisioned libvirt VM.
type Spec struct {
	// Name and Fingerprint name the image (FullName).
	Name, Fingerprint string
	// SourceVM is the libvirt domain (UUID or name) whose disk is baked.
	SourceVM string
	// Pool receives the image; empty takes the source VM's pool.
	Pool string
	// SSH reaches the source host as a user with sudo; an empty host takes
	// the VM's SSH endpoint and its pinned host key.
	SSH      remote.Config
	Defaults remote.Defaults
	// Toolchains are what the source's provisioning recorded: each must be
	// on the host, intact and from the same archive, or nothing is baked.
	Toolchains []Toolchain
	// Root holds the toolchains on the host; empty is hostprep.DefaultRoot.
	Root       string
	Generalize Generalize
	// SourceAfterBake is SourceStopped or SourceDeleted.
	SourceAfterBake string
	// RemoveLogin is a login to remove from the host once it is generalized,
	// so that no clone carries it: a transient VM's own (BakeUser).
	RemoveLogin string
	// Overlay keeps the image as a thin overlay on the source's base volume
	// instead of a standalone copy.
	Overlay bool
	// Compress is CompressZstd to recompress the standalone image on the
	// libvirt host (Baker.Host); empty or CompressNone for none.
	Compress string
}

// Image is a baked image as stored.
type Image struct {
	Volume libvirt.ImageVolume
	SHA256 string
	// Compress is CompressZstd when the image's qcow2 header declares zstd
	// compression, CompressNone otherwise.
	Compress    string
	Manifest    Manifest
	BakeSeconds float64
	// BaseMissing is an overlay whose backing volume is gone: it no longer boots.
	BaseMissing bool
	// Owner is the token Kiln's record holds for whoever baked or adopted
	// the image last: Delete removes the volume only for its holder.
	Owner string
}

// Baker bakes images on one libvirt daemon.
type Baker struct {
	Libvirt     *libvirt.Client
	Generalizer Generalizer
	// Host runs qemu-img on the libvirt host; only a compressed image needs it.
	Host libvirt.Host
	// Log receives progress messages; nil discards them.
	Log *slog.Logger
}

func (b *Baker) log(ctx context.Context, msg string, args ...any) {
	if b.Log != nil {
		b.Log.InfoContext(ctx, msg, args...)
	}
}

// ErrNotProvisioned is a source with no toolchains recorded.
var ErrNotProvisioned = errors.New("the source VM records no Go toolchains: provision it with kiln_go_host first")

// BaseIdentity identifies the image the VM started from: its base volume's
// key, sizes and modification time, or the base image file's path.
func (b *Baker) BaseIdentity(ctx context.Context, vmID string) (string, error) {
	vm, err := b.Libvirt.ReadVM(ctx, vmID)
	if err != nil {
		return "", err
	}
	if vm.BaseVolume == "" {
		return "file:" + vm.BaseImage, nil
	}
	base, err := b.BaseVolumeIdentity(ctx, vm.Pool, vm.BaseVolume)
	if err != nil {
		return "", fmt.Errorf("base volume of VM %q: %w", vm.Name, err)
	}
	return base, nil
}

// BaseVolumeIdentity identifies a base volume as BaseIdentity does: its key,
// sizes and modification time. libvirt's ErrNotFound when it is not there.
func (b *Baker) BaseVolumeIdentity(ctx context.Context, pool, volume string) (string, error) {
	base, err := b.Libvirt.ReadImageVolume(ctx, pool, volume)
	if err != nil {
		return "", err
	}
	return "volume:" + base.Stat, nil
}

// Bake generalizes the running source VM, shuts it down cleanly, and copies
// its disk into a standalone image (or an overlay on its base), hashed as
// stored, with Kiln's record beside it. A volume already under the image's
// name is adopted, the source left as it is, when it carries Kiln's record of
// this fingerprint and still hashes to the recorded SHA-256; any other fails
// the bake and is left alone.
func (b *Baker) Bake(ctx context.Context, spec Spec) (Image, error) {
	start := time.Now()
	if len(spec.Toolchains) == 0 {
		return Image{}, ErrNotProvisioned
	}
	vm, err := b.Libvirt.ReadVM(ctx, spec.SourceVM)
	if err != nil {
		return Image{}, fmt.Errorf("source VM: %w", err)
	}
	pool := cmp.Or(spec.Pool, vm.Pool)
	volume := VolumeName(spec.Name, spec.Fingerprint)
	if exists, err := b.Libvirt.VolumeExists(ctx, pool, volume); err != nil {
		return Image{}, err
	} else if exists {
		return b.adopt(ctx, pool, volume, spec.Fingerprint, start)
	}
	if !vm.Running {
		return Image{}, fmt.Errorf("source VM %q is not running: the image is baked from a running, provisioned host", vm.Name)
	}
	compress := spec.Compress == CompressZstd
	switch {
	case compress && spec.Overlay:
		return Image{}, errors.New("an overlay image is not compressed: compress needs a standalone image (flatten)")
	case compress && b.Host == nil:
		return Image{}, errors.New("compressing the image needs a way to run qemu-img on the libvirt host")
	}
	manifest, err := b.Generalizer.Generalize(ctx, vm.Name, sshConfig(spec, vm.SSHHost, vm.SSHPort, vm.SSHHostKey), spec)
	if err != nil {
		return Image{}, err
	}
	if err := b.Libvirt.ShutdownCleanly(ctx, vm.UUID, ShutdownGrace); err != nil {
		return Image{}, err
	}
	img := Image{Manifest: manifest}
	if spec.Overlay {
		img.Volume, err = b.Libvirt.OverlayImage(ctx, vm, pool, volume)
	} else {
		img.Volume, err = b.Libvirt.CopyToImage(ctx, vm, pool, volume)
	}
	if err != nil {
		return Image{}, err
	}
	err = b.finish(ctx, &img, compress)
	if err == nil {
		img.Owner = rand.Text()
		err = b.writeRecord(ctx, pool, volume, Record{Fingerprint: spec.Fingerprint, SHA256: img.SHA256, Manifest: img.Manifest, Owner: img.Owner})
	}
	if err != nil {
		// Kiln made it and nothing records it: it goes, and the next apply bakes again.
		if derr := b.Libvirt.DeleteImageVolume(context.WithoutCancel(ctx), pool, volume); derr != nil {
			return Image{}, fmt.Errorf("%w (deleting the unfinished image failed too: %v)", err, derr)
		}
		return Image{}, err
	}
	if spec.SourceAfterBake == SourceDeleted {
		b.log(ctx, "deleting the source VM", "vm", vm.Name)
		if err := b.Libvirt.DeleteVM(ctx, vm); err != nil {
			return img, fmt.Errorf("image %q baked, but deleting source VM %q failed: %w", volume, vm.Name, err)
		}
	}
	img.BakeSeconds = time.Since(start).Seconds()
	b.log(ctx, "image baked", "volume", volume, "seconds", img.BakeSeconds, "allocation", img.Volume.Allocation)
	return img, nil
}

// finish recompresses the copied image when asked, then hashes it as stored.
func (b *Baker) finish(ctx context.Context, img *Image, compress bool) error {
	v := img.Volume
	if compress {
		b.log(ctx, "compressing the image with zstd", "volume", v.Name, "bytes", v.Allocation)
		if err := Compress(ctx, b.Host, v.Path); err != nil {
			return err
		}
		// libvirt learns the new file's sizes only from a refresh.
		if err := b.Libvirt.RefreshPool(ctx, v.Pool); err != nil {
			return err
		}
		var err error
		if img.Volume, err = b.Libvirt.ReadImageVolume(ctx, v.Pool, v.Name); err != nil {
			return err
		}
	}
	b.log(ctx, "hashing the image", "volume", v.Name, "bytes", img.Volume.Allocation)
	var err error
	if img.SHA256, img.Compress, err = b.hash(ctx, img.Volume); err != nil {
		return err
	}
	if compress && img.Compress != CompressZstd {
		return fmt.Errorf("volume %q: qemu-img left the image without zstd compression", v.Name)
	}
	return nil
}

// Record is Kiln's record of a libvirt image, kept beside its volume
// (libvirt.RecordVolumeName): what lets a later apply adopt the volume.
type Record struct {
	Fingerprint string   `json:"fingerprint"`
	SHA256      string   `json:"sha256"`
	Manifest    Manifest `json:"manifest"`
	// Owner is a random token each bake or adoption writes anew (Image.Owner):
	// a replacement that adopts the volume takes it from the instance it
	// replaces. Records written before it existed have none.
	Owner string `json:"owner,omitempty"`
}

// Record reads Kiln's record of the image volume; libvirt's ErrNotFound when
// there is none.
func (b *Baker) Record(ctx context.Context, pool, volume string) (Record, error) {
	var rec Record
	doc, err := b.Libvirt.ReadRecord(ctx, pool, volume)
	if err != nil {
		return rec, err
	}
	if err := json.Unmarshal(doc, &rec); err != nil {
		return rec, fmt.Errorf("record %q: %w", libvirt.RecordVolumeName(volume), err)
	}
	return rec, nil
}

func (b *Baker) writeRecord(ctx context.Context, pool, volume string, rec Record) error {
	doc, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	return b.Libvirt.WriteRecord(ctx, pool, volume, doc)
}

// adopt takes the existing volume as the image when Kiln's record beside it
// names this fingerprint and its content still hashes as recorded, and
// writes a new owner into the record: the instance that held the volume
// before (one create_before_destroy replaces) then leaves it at its delete.
func (b *Baker) adopt(ctx context.Context, pool, volume, fingerprint string, start time.Time) (Image, error) {
	doc, err := b.Libvirt.ReadRecord(ctx, pool, volume)
	var img Image
	rec, err := adoptable(pool, volume, fingerprint, doc, err, func() (string, error) {
		b.log(ctx, "an image volume of this fingerprint exists; hashing it to adopt it", "volume", volume)
		var err error
		if img.Volume, err = b.Libvirt.ReadImageVolume(ctx, pool, volume); err != nil {
			return "", err
		}
		img.SHA256, img.Compress, err = b.hash(ctx, img.Volume)
		return img.SHA256, err
	})
	if err != nil {
		return Image{}, err
	}
	rec.Owner = rand.Text()
	if err := b.writeRecord(ctx, pool, volume, rec); err != nil {
		return Image{}, fmt.Errorf("volume %q: take over Kiln's record: %w", volume, err)
	}
	img.Manifest, img.Owner = rec.Manifest, rec.Owner
	img.BakeSeconds = time.Since(start).Seconds()
	b.log(ctx, "image adopted", "volume", volume, "seconds", img.BakeSeconds)
	return img, nil
}

// adoptable judges an existing volume under the image's name by the record
// read beside it (doc, or readErr) and then by its content's hash, taken
// only when the record names this fingerprint. Anything but a match is an
// error naming the volume: Kiln neither overwrites nor deletes it.
func adoptable(pool, volume, fingerprint string, doc []byte, readErr error, hash func() (string, error)) (Record, error) {
	taken := fmt.Sprintf("volume %q already exists in pool %q", volume, pool)
	var rec Record
	switch {
	case errors.Is(readErr, libvirt.ErrNotFound):
		return rec, fmt.Errorf("%s and carries no Kiln record: it is not this resource's, and Kiln leaves it alone; delete it or import it", taken)
	case readErr != nil:
		return rec, fmt.Errorf("%s; reading Kiln's record of it failed: %w", taken, readErr)
	}
	if err := json.Unmarshal(doc, &rec); err != nil || rec.Fingerprint == "" || rec.SHA256 == "" {
		return rec, fmt.Errorf("%s and its record %q is not one Kiln wrote: Kiln leaves it alone; delete it or import it", taken, libvirt.RecordVolumeName(volume))
	}
	if rec.Fingerprint != fingerprint {
		return rec, fmt.Errorf("%s and Kiln's record gives it fingerprint %s, not this image's %s: Kiln leaves it alone; delete it", taken, rec.Fingerprint, fingerprint)
	}
	sum, err := hash()
	if err != nil {
		return rec, fmt.Errorf("%s: %w", taken, err)
	}
	if sum != rec.SHA256 {
		return rec, fmt.Errorf("%s and was changed since Kiln baked it (SHA-256 %s, recorded %s): Kiln leaves it alone; delete it", taken, sum, rec.SHA256)
	}
	return rec, nil
}

// Compress recompresses the image file at path in place on host, every
// cluster compressed with zstd.
func Compress(ctx context.Context, host libvirt.Host, path string) error {
	if _, err := host.Run(ctx, "compress image", compressScript, path); err != nil {
		return fmt.Errorf("compress %s: %w", path, err)
	}
	return nil
}

// hash is the image's SHA-256 as stored, and its compression as its qcow2
// header declares it.
func (b *Baker) hash(ctx context.Context, v libvirt.ImageVolume) (sum, compress string, err error) {
	sum, kind, err := b.Libvirt.HashVolume(ctx, v.Pool, v.Name)
	if kind == "zstd" {
		return sum, CompressZstd, err
	}
	return sum, CompressNone, err
}

// Generalizer prepares a running, provisioned source host for its bake: it
// checks the host holds the recorded toolchains, writes the manifest into it
// and generalizes it. Every bake, on libvirt or vSphere, goes through it.
type Generalizer interface {
	Generalize(ctx context.Context, vm string, cfg remote.Config, spec Spec) (Manifest, error)
}

// SSHGeneralizer generalizes the source host over SSH, as its sudo user.
type SSHGeneralizer struct {
	// Log receives progress messages; nil discards them.
	Log *slog.Logger
}

// Generalize dials the source VM vm at cfg (resolved over spec.Defaults).
func (g SSHGeneralizer) Generalize(ctx context.Context, vm string, cfg remote.Config, spec Spec) (Manifest, error) {
	target, err := cfg.Target(spec.Defaults)
	if err != nil {
		return Manifest{}, fmt.Errorf("source VM %q: %w", vm, err)
	}
	c, err := remote.Dial(ctx, target)
	if err != nil {
		return Manifest{}, fmt.Errorf("source VM %q: %w", vm, err)
	}
	defer c.Close()
	facts, err := hostprep.ReadFactsOn(ctx, c, hostprep.Spec{Root: cmp.Or(spec.Root, hostprep.DefaultRoot)})
	if err != nil {
		return Manifest{}, err
	}
	manifest, err := manifestOf(spec, facts)
	if err != nil {
		return Manifest{}, fmt.Errorf("source VM %q: %w", vm, err)
	}
	doc, err := json.MarshalIndent(manifest, "", "  ")
	if err != nil {
		return Manifest{}, err
	}
	if g.Log != nil {
		g.Log.InfoContext(ctx, "generalizing the source host", "vm", vm, "options", spec.Generalize)
	}
	cmd := remote.BashCommand(generalizeScript, spec.Generalize.scriptArgs()...)
	if _, err := c.RunInput(ctx, "generalize", cmd, bytes.NewReader(append(doc, '\n'))); err != nil {
		return Manifest{}, err
	}
	// Over the same connection: generalizing removed the host keys, and sshd
	// reads them again for every new one.
	if spec.RemoveLogin != "" {
		if _, err := c.Run(ctx, "remove the bake login", remote.BashCommand(retireLoginScript, spec.RemoveLogin)); err != nil {
			return Manifest{}, fmt.Errorf("source VM %q: %w", vm, err)
		}
	}
	return manifest, nil
}

// sshConfig is spec.SSH, or, without a host, the VM's own SSH endpoint with
// its pinned host key.
func sshConfig(spec Spec, host string, port int, hostKey string) remote.Config {
	cfg := spec.SSH
	if cfg.Host == "" {
		cfg.Host, cfg.Port = host, int64(port)
		if cfg.HostKey == "" && cfg.KnownHostsFile == "" {
			cfg.HostKey = hostKey
		}
	}
	return cfg
}

// manifestOf is the image's manifest, from the host's facts; every recorded
// toolchain must be there as recorded.
func manifestOf(spec Spec, facts hostprep.Facts) (Manifest, error) {
	m := Manifest{Name: FullName(spec.Name, spec.Fingerprint), Fingerprint: spec.Fingerprint, OS: facts.OS, Kernel: facts.Kernel,
		Toolchains: []ManifestToolchain{}}
	for _, want := range spec.Toolchains {
		got, ok := facts.Toolchains[want.Version]
		switch {
		case !ok:
			return m, fmt.Errorf("go%s is recorded but not installed on the host", want.Version)
		case !got.Intact():
			return m, fmt.Errorf("go%s: bin/go changed since it was installed", want.Version)
		case got.ArchiveSHA256 != want.ArchiveSHA256:
			return m, fmt.Errorf("go%s was installed from archive %s, not the recorded %s", want.Version, got.ArchiveSHA256, want.ArchiveSHA256)
		}
		m.Toolchains = append(m.Toolchains, ManifestToolchain{Version: want.Version, ArchiveSHA256: got.ArchiveSHA256, GoBinarySHA256: got.GoSHA256})
	}
	return m, nil
}

// Read reads the image's volume back. The content is hashed again only when
// the volume's stat moved from known's; ErrNotFound (libvirt's) when it is gone.
func (b *Baker) Read(ctx context.Context, pool, volume string, known Image) (Image, error) {
	vol, err := b.Libvirt.ReadImageVolume(ctx, pool, volume)
	if err != nil {
		return Image{}, err
	}
	img := known
	img.Volume = vol
	if vol.Stat != known.Volume.Stat || known.SHA256 == "" {
		b.log(ctx, "the image volume changed; hashing it again", "volume", volume)
		if img.SHA256, img.Compress, err = b.hash(ctx, vol); err != nil {
			return Image{}, err
		}
	}
	if vol.BackingPath != "" {
		_, err := b.Libvirt.VolumeByPath(ctx, vol.BackingPath)
		img.BaseMissing = errors.Is(err, libvirt.ErrNotFound)
		if err != nil && !img.BaseMissing {
			return Image{}, err
		}
	}
	return img, nil
}

// Delete deletes the image's volume for owner, the Image.Owner its bake or
// adoption returned ("" for images baked before owners), refusing while VMs
// or volumes still use it unless force. Other Kiln images that are overlays
// on it are never broken: they must go first, force or not. A volume whose
// record names another owner was adopted since: it is left to its new
// holder, with no error.
func (b *Baker) Delete(ctx context.Context, pool, volume, owner string, force bool) error {
	doc, err := b.Libvirt.ReadRecord(ctx, pool, volume)
	if mine, err := owned(pool, volume, owner, doc, err); err != nil {
		return err
	} else if !mine {
		b.log(ctx, "leaving the image volume to the resource that adopted it since: Kiln's record of it names another owner",
			"volume", volume, "pool", pool)
		return nil
	}
	users, err := b.Libvirt.ImageUsers(ctx, pool, volume)
	if err != nil {
		return err
	}
	if err := deletable(pool, volume, users, force); err != nil {
		return err
	}
	return b.Libvirt.DeleteImageVolume(ctx, pool, volume)
}

// owned judges by Kiln's record beside the image volume (doc, or readErr)
// whether owner still holds the volume. Without a record Kiln wrote, nothing
// can have adopted the volume, so it is the caller's as before; with one, the
// owner tokens must be equal (both empty for an image baked, and kept, before
// owners existed).
func owned(pool, volume, owner string, doc []byte, readErr error) (bool, error) {
	switch {
	case errors.Is(readErr, libvirt.ErrNotFound):
		return true, nil
	case readErr != nil:
		return false, fmt.Errorf("image volume %q in pool %q: reading Kiln's record of it failed: %w", volume, pool, readErr)
	}
	var rec Record
	if err := json.Unmarshal(doc, &rec); err != nil || rec.Fingerprint == "" || rec.SHA256 == "" {
		return true, nil // adoptable refuses such a record: no one adopted the volume by it
	}
	return rec.Owner == owner, nil
}

// deletable refuses the image volume's deletion while Kiln images are
// overlays on it, and while other users remain unless force.
func deletable(pool, volume string, users libvirt.VolumeUsers, force bool) error {
	var images, others []string
	for _, d := range users.Domains {
		others = append(others, "domain "+d)
	}
	for _, o := range users.Overlays {
		name := o.Name
		if o.Pool != pool {
			name = o.String()
		}
		if _, ok := ParseVolumeName(o.Name); ok {
			images = append(images, name)
		} else {
			others = append(others, "volume "+name)
		}
	}
	switch {
	case len(images) > 0:
		return fmt.Errorf("image volume %q is the base of the Kiln image volumes %s: destroy those images first "+
			"(force_destroy does not break images)", volume, strings.Join(images, ", "))
	case len(others) > 0 && !force:
		return fmt.Errorf("image volume %q is still in use by %s: destroy those first, or set force_destroy", volume, strings.Join(others, ", "))
	}
	return nil
}
