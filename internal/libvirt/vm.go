package libvirt

import (
	"time"

	"github.com/kilnhq/terraform-provider-kiln/internal/cloudinit"
)

// VM is a Go build VM: a libvirt domain booting from a root volume in a storage
// pool, with a cloud-init seed volume for its first boot.
type VM struct {
	Name string
	// Type is the libvirt domain type, "kvm" or "qemu"; empty picks kvm when the
	// host offers it and qemu (software emulation) otherwise.
	Type string
	Pool string
	// BaseVolume (a volume in Pool) or BaseImage (a file path on the libvirt host)
	// is the image the root disk starts from.
	BaseVolume string
	BaseImage  string
	// FullCopy copies the base into the root volume instead of a copy-on-write overlay.
	FullCopy   bool
	DiskBytes  uint64
	VCPU       uint
	MemoryMiB  uint64
	Interfaces []Interface
	CloudInit  cloudinit.Config
	Running    bool
	// BootTimeout bounds how long a guest Kiln starts may show no kernel output
	// on its serial console; 0 sets no bound. It is not stored in libvirt.
	BootTimeout time.Duration
	// BakeOf marks a transient VM Kiln boots to bake the image volume it
	// names (a volume name): one left behind by a crashed bake is Kiln's to
	// remove, and nothing else is.
	BakeOf string

	// Read back or generated.
	UUID        string
	RootVolume  string
	SeedVolume  string
	SSHHostKey  string // the guest's SSH host public key, authorized_keys format
	SSHHost     string
	SSHPort     int
	IPAddresses []string

	// creating marks a domain CreateVM defined before its volumes and has not
	// finished: what an interrupted create leaves, for the next to remove.
	creating bool
}

// Interface is one network interface. Exactly one of Network, Bridge or UserMode is set.
type Interface struct {
	Network string
	Bridge  string
	// UserMode is QEMU user-mode networking: no host set-up, outbound access, and
	// the guest's port 22 forwarded to SSHForwardPort on 127.0.0.1.
	UserMode       bool
	SSHForwardPort int // 0 picks a free port at create
	MAC            string
}

// GiB is a convenience for disk sizes.
const GiB = uint64(1) << 30

// rootVolumeName and seedVolumeName are the volumes Kiln creates for a VM.
func rootVolumeName(vm string) string { return vm + "-root.qcow2" }
func seedVolumeName(vm string) string { return vm + "-cidata.iso" }
