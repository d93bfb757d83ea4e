package image

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/kilnhq/terraform-provider-kiln/internal/cloudinit"
	"github.com/kilnhq/terraform-provider-kiln/internal/gotoolchain"
	"github.com/kilnhq/terraform-provider-kiln/internal/hostprep"
	"github.com/kilnhq/terraform-provider-kiln/internal/libvirt"
	"github.com/kilnhq/terraform-provider-kiln/internal/remote"
)

// The transient VM an image is baked in from a base volume.
const (
	// BakeUser is the login cloud-init gives the transient VM, with
	// passwordless sudo and a key that exists only in memory; it is removed
	// from the host before the disk is copied.
	BakeUser      = "kiln-bake"
	bakeVCPU      = 2
	bakeMemoryMiB = 1024
	// bakeBootTimeout bounds how long the guest may print nothing on its
	// console, as a kiln_libvirt_vm's default boot_timeout does.
	bakeBootTimeout = 3 * time.Minute
)

// BaseSpec is an image to bake from a base volume: a transient VM boots from
// an overlay on it, is provisioned to Provision, and is then baked as a
// provisioned VM is. Spec's SourceVM, SSH, Defaults, Toolchains, Root,
// SourceAfterBake and RemoveLogin are set by BakeFromBase.
type BaseSpec struct {
	Spec
	// BasePool holds BaseVolume; the transient VM's volumes go there too.
	BasePool, BaseVolume string
	// DomainType is the transient VM's libvirt domain type; empty picks kvm
	// when the host offers it.
	DomainType string
	// Network is the libvirt network the transient VM is attached to; empty
	// takes QEMU user-mode networking (a local libvirtd only).
	Network string
	// Provision is the host spec the transient VM is brought to, and Source
	// where its toolchains come from, as for a kiln_go_host.
	Provision hostprep.Spec
	Source    gotoolchain.Source
}

// TransientVMName is the domain an image is baked in from a base volume.
func TransientVMName(name, fingerprint string) string { return FullName(name, fingerprint) + "-bake" }

// BakeFromBase boots a transient VM from an overlay on the base volume,
// provisions it with hostprep as a kiln_go_host would, and bakes it. The
// transient VM, marked as the bake's, is removed whether the bake succeeds or
// fails; one a crashed bake of this image left is removed first. An image
// volume of this fingerprint that already exists is adopted as Bake adopts
// it, with no VM booted.
func (b *Baker) BakeFromBase(ctx context.Context, spec BaseSpec) (img Image, err error) {
	start := time.Now()
	if len(spec.Provision.Versions) == 0 {
		return Image{}, errors.New("the provisioning spec declares no Go version")
	}
	pool := cmp.Or(spec.Pool, spec.BasePool)
	volume := VolumeName(spec.Name, spec.Fingerprint)
	if exists, err := b.Libvirt.VolumeExists(ctx, pool, volume); err != nil {
		return Image{}, err
	} else if exists {
		return b.adopt(ctx, pool, volume, spec.Fingerprint, start)
	}
	name := TransientVMName(spec.Name, spec.Fingerprint)
	if err := b.removeLeftover(ctx, name, volume); err != nil {
		return Image{}, err
	}
	// An Ed25519 pair like a host key's, used here as the login's: it lives
	// in this process only, and the seed is gone with the VM.
	login, err := remote.NewHostKey()
	if err != nil {
		return Image{}, err
	}
	iface := libvirt.Interface{UserMode: spec.Network == "", Network: spec.Network}
	b.log(ctx, "booting the transient VM to bake in", "vm", name, "base_volume", spec.BaseVolume, "pool", spec.BasePool)
	vm, err := b.Libvirt.CreateVM(ctx, libvirt.VM{
		Name: name, Type: spec.DomainType, Pool: spec.BasePool, BaseVolume: spec.BaseVolume,
		VCPU: bakeVCPU, MemoryMiB: bakeMemoryMiB, Interfaces: []libvirt.Interface{iface},
		CloudInit: cloudinit.Config{Users: []cloudinit.User{{Name: BakeUser, Sudo: true, SSHAuthorizedKeys: []string{login.Public}}}},
		Running:   true, BootTimeout: bakeBootTimeout, BakeOf: volume,
	})
	defer func() {
		// A create that failed before the domain was complete removed it, or
		// left it marked for the next create to remove: only a domain this
		// bake holds by UUID is removed here.
		if vm.UUID == "" {
			return
		}
		b.log(ctx, "removing the transient VM", "vm", name)
		derr := b.Libvirt.DeleteVM(context.WithoutCancel(ctx), vm)
		if derr != nil && err == nil {
			err = fmt.Errorf("image %q baked, but removing the transient VM %q failed: %w", volume, name, derr)
		} else if derr != nil {
			err = fmt.Errorf("%w (removing the transient VM %q failed too: %v)", err, name, derr)
		}
	}()
	if err != nil {
		return Image{}, fmt.Errorf("transient VM %q: %w", name, err)
	}
	ssh := remote.Config{Endpoint: remote.Endpoint{User: BakeUser, PrivateKey: login.PrivatePEM}}
	toolchains, err := b.provision(ctx, vm, ssh, spec)
	if err != nil {
		return Image{}, err
	}
	bake := spec.Spec
	bake.SourceVM, bake.Pool, bake.SSH, bake.Defaults = vm.UUID, pool, ssh, remote.Defaults{}
	bake.Toolchains, bake.Root, bake.SourceAfterBake = toolchains, spec.Provision.Root, SourceStopped
	bake.RemoveLogin = BakeUser
	img, err = b.Bake(ctx, bake)
	if err == nil {
		img.BakeSeconds = time.Since(start).Seconds()
	}
	return img, err
}

// removeLeftover removes the transient VM a crashed bake of volume left
// under name; a domain of that name without the mark is not Kiln's to touch.
func (b *Baker) removeLeftover(ctx context.Context, name, volume string) error {
	vm, err := b.Libvirt.ReadVM(ctx, name)
	if remove, err := leftover(name, volume, vm, err); !remove {
		return err
	}
	b.log(ctx, "removing the transient VM a failed bake left", "vm", name)
	return b.Libvirt.DeleteVM(ctx, vm)
}

// leftover judges the domain found under the transient VM's name (vm, or
// readErr): remove it only when it carries the mark of a bake of volume.
func leftover(name, volume string, vm libvirt.VM, readErr error) (remove bool, err error) {
	switch {
	case errors.Is(readErr, libvirt.ErrNotFound):
		return false, nil
	case readErr != nil:
		return false, readErr
	case vm.BakeOf != volume:
		return false, fmt.Errorf("domain %q already exists and is not Kiln's transient VM for baking %q: Kiln leaves it alone; "+
			"remove it, or give the image another name", name, volume)
	}
	return true, nil
}

// provision brings the transient VM to spec.Provision over its pinned SSH
// endpoint and returns the toolchains it then holds.
func (b *Baker) provision(ctx context.Context, vm libvirt.VM, ssh remote.Config, spec BaseSpec) ([]Toolchain, error) {
	cfg := sshConfig(Spec{SSH: ssh}, vm.SSHHost, vm.SSHPort, vm.SSHHostKey)
	target, err := cfg.Target(remote.Defaults{})
	if err != nil {
		return nil, err
	}
	host := &hostprep.Host{Target: target, Source: spec.Source, Log: b.Log}
	if err := host.Connect(ctx); err != nil {
		return nil, fmt.Errorf("transient VM %q: %w", vm.Name, err)
	}
	defer host.Close()
	b.log(ctx, "provisioning the transient VM", "vm", vm.Name, "go", spec.Provision.Versions)
	facts, _, err := host.Apply(ctx, spec.Provision)
	if err != nil {
		return nil, fmt.Errorf("provision transient VM %q: %w", vm.Name, err)
	}
	return provisioned(spec.Provision.Versions, facts)
}

// provisioned are the toolchains of versions as the host's facts show them
// after provisioning; each must be there, intact.
func provisioned(versions []string, facts hostprep.Facts) ([]Toolchain, error) {
	out := make([]Toolchain, 0, len(versions))
	for _, v := range versions {
		t, ok := facts.Toolchains[v]
		if !ok || !t.Intact() {
			return nil, fmt.Errorf("go%s is not installed intact after provisioning", v)
		}
		out = append(out, Toolchain{Version: v, ArchiveSHA256: t.ArchiveSHA256, GoBinarySHA256: t.GoSHA256})
	}
	return out, nil
}
