package libvirt

import (
	"fmt"
	"slices"

	"github.com/kilnhq/terraform-provider-kiln/internal/cloudinit"
)

// UpdatePlan is how Kiln brings a VM from its current state to the desired one.
type UpdatePlan struct {
	// Replace is set when the change cannot be made to the existing domain.
	Replace []string
	// Redefine rewrites the domain definition (vCPUs, memory); a running VM is
	// shut down first and started again: a controlled restart.
	Redefine bool
	// GrowDisk grows the root volume to DesiredDiskBytes (live when running).
	GrowDisk         bool
	DesiredDiskBytes uint64
	Start, Stop      bool
}

// InPlace reports whether the plan can be carried out without replacing the VM.
func (p UpdatePlan) InPlace() bool { return len(p.Replace) == 0 }

// PlanUpdate compares the VM as read back with the desired one.
func PlanUpdate(current, desired VM) UpdatePlan {
	var p UpdatePlan
	if current.Name != desired.Name {
		p.Replace = append(p.Replace, "name")
	}
	if current.Pool != desired.Pool {
		p.Replace = append(p.Replace, "pool")
	}
	if current.BaseVolume != desired.BaseVolume || current.BaseImage != desired.BaseImage || current.FullCopy != desired.FullCopy {
		p.Replace = append(p.Replace, "base")
	}
	if desired.Type != "" && current.Type != desired.Type {
		p.Replace = append(p.Replace, "type")
	}
	if !sameInterfaces(current.Interfaces, desired.Interfaces) {
		p.Replace = append(p.Replace, "network_interface")
	}
	if !sameCloudInit(current, desired) {
		p.Replace = append(p.Replace, "cloud_init")
	}
	if desired.DiskBytes < current.DiskBytes {
		p.Replace = append(p.Replace, fmt.Sprintf("disk size (shrinking %d to %d bytes)", current.DiskBytes, desired.DiskBytes))
	}
	if !p.InPlace() {
		return p
	}
	p.Redefine = current.VCPU != desired.VCPU || current.MemoryMiB != desired.MemoryMiB
	if desired.DiskBytes > current.DiskBytes {
		p.GrowDisk, p.DesiredDiskBytes = true, desired.DiskBytes
	}
	p.Start = desired.Running && (!current.Running || p.Redefine)
	p.Stop = !desired.Running && current.Running
	return p
}

func sameInterfaces(a, b []Interface) bool {
	return slices.EqualFunc(a, b, func(x, y Interface) bool {
		if x.Network != y.Network || x.Bridge != y.Bridge || x.UserMode != y.UserMode {
			return false
		}
		// MACs and forwarded ports left empty in the desired VM are chosen at create.
		if y.MAC != "" && x.MAC != y.MAC {
			return false
		}
		return y.SSHForwardPort == 0 || x.SSHForwardPort == y.SSHForwardPort
	})
}

func sameCloudInit(current, desired VM) bool {
	a, b := current.CloudInit, desired.CloudInit
	return a.Hostname == b.Hostname && a.ExtraUserData == b.ExtraUserData &&
		slices.Equal(a.SSHAuthorizedKeys, b.SSHAuthorizedKeys) &&
		slices.EqualFunc(a.Users, b.Users, func(x, y cloudinit.User) bool {
			return x.Name == y.Name && x.Sudo == y.Sudo && x.Shell == y.Shell &&
				slices.Equal(x.SSHAuthorizedKeys, y.SSHAuthorizedKeys) && slices.Equal(x.Groups, y.Groups)
		})
}
