package vsphere

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// UpdatePlan is how Kiln brings a VM from its current state to the desired one.
type UpdatePlan struct {
	// Replace lists the changes that cannot be made to the existing VM.
	Replace []string
	// Relocate moves the VM to another host, pool or datastore (vMotion).
	Relocate bool
	// Move puts the VM into another folder.
	Move bool
	// CPU, Memory, Disks, Networks and ExtraConfig are parts of one reconfigure.
	CPU, Memory bool
	// GrowDisks lists the indexes of disks to grow.
	GrowDisks []int
	// Networks lists the indexes of adapters to attach to another port group.
	Networks []int
	// SetExtraConfig holds keys to set, with "" removing a key.
	SetExtraConfig map[string]string
	// PowerCycle powers a running VM off for the reconfigure and on again.
	PowerCycle  bool
	Start, Stop bool
}

// InPlace reports whether the plan can be carried out without replacing the VM.
func (p UpdatePlan) InPlace() bool { return len(p.Replace) == 0 }

// Reconfigure reports whether the plan changes the VM's configuration.
func (p UpdatePlan) Reconfigure() bool {
	return p.CPU || p.Memory || len(p.GrowDisks) > 0 || len(p.Networks) > 0 || len(p.SetExtraConfig) > 0
}

// PlanUpdate compares the VM as read back with the desired one. It fails when a
// change needs a power cycle of a running VM that AllowPowerCycle does not allow.
func PlanUpdate(current, desired VM) (UpdatePlan, error) {
	var p UpdatePlan
	if current.Name != desired.Name {
		p.Replace = append(p.Replace, "name")
	}
	if current.Source != desired.Source || current.LinkedClone != desired.LinkedClone || current.Snapshot != desired.Snapshot {
		p.Replace = append(p.Replace, "source")
	}
	if desired.DiskGiB != nil {
		if len(desired.DiskGiB) != len(current.DiskGiB) {
			p.Replace = append(p.Replace, fmt.Sprintf("disks (%d declared, the VM has %d)", len(desired.DiskGiB), len(current.DiskGiB)))
		} else {
			for i, want := range desired.DiskGiB {
				switch {
				case want < current.DiskGiB[i]:
					p.Replace = append(p.Replace, fmt.Sprintf("disk %d (shrinking %d GiB to %d GiB)", i, current.DiskGiB[i], want))
				case want > current.DiskGiB[i]:
					p.GrowDisks = append(p.GrowDisks, i)
				}
			}
		}
	}
	if desired.Networks != nil {
		if len(desired.Networks) != len(current.Networks) {
			p.Replace = append(p.Replace, fmt.Sprintf("networks (%d declared, the VM has %d adapters)", len(desired.Networks), len(current.Networks)))
		} else {
			for i, want := range desired.Networks {
				if want != current.Networks[i] {
					p.Networks = append(p.Networks, i)
				}
			}
		}
	}
	if !p.InPlace() {
		return p, nil
	}
	p.Relocate = (desired.Cluster != "" && desired.Cluster != current.Cluster) ||
		(desired.Host != "" && desired.Host != current.Host) ||
		desired.ResourcePool != current.ResourcePool ||
		(desired.Datastore != "" && desired.Datastore != current.Datastore)
	p.Move = desired.Folder != current.Folder
	p.CPU = desired.NumCPUs != 0 && desired.NumCPUs != current.NumCPUs
	p.Memory = desired.MemoryMiB != 0 && desired.MemoryMiB != current.MemoryMiB
	p.SetExtraConfig = extraConfigChanges(current.ExtraConfig, desired.ExtraConfig)

	running := current.PowerOn
	if running && desired.PowerOn {
		var live []string
		if p.CPU && (desired.NumCPUs < current.NumCPUs || !current.CPUHotAdd) {
			live = append(live, fmt.Sprintf("num_cpus %d -> %d (CPU hot-add %s)", current.NumCPUs, desired.NumCPUs, onOff(current.CPUHotAdd)))
		}
		if p.Memory && (desired.MemoryMiB < current.MemoryMiB || !current.MemoryHotAdd) {
			live = append(live, fmt.Sprintf("memory_mib %d -> %d (memory hot-add %s)", current.MemoryMiB, desired.MemoryMiB, onOff(current.MemoryHotAdd)))
		}
		if len(live) > 0 {
			if !desired.AllowPowerCycle {
				return p, fmt.Errorf("cannot change %s on running VM %q without powering it off: "+
					"set allow_power_cycle = true to let Kiln power it off and on, enable hot-add on the "+
					"template, or set power_state = \"off\"", strings.Join(live, ", "), current.Name)
			}
			p.PowerCycle = true
		}
	}
	p.Stop = running && (!desired.PowerOn || p.PowerCycle)
	p.Start = desired.PowerOn && (!running || p.PowerCycle)
	return p, nil
}

func extraConfigChanges(current, desired map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range desired {
		if cur, ok := current[k]; !ok || cur != v {
			out[k] = v
		}
	}
	for k := range current {
		if _, ok := desired[k]; !ok {
			out[k] = ""
		}
	}
	if len(out) > 0 {
		// The list of managed keys changes with the keys.
		if !slices.Equal(sortedKeys(current), sortedKeys(desired)) {
			out[keyManagedKeys] = strings.Join(sortedKeys(desired), ",")
		}
		return out
	}
	return nil
}

func sortedKeys(m map[string]string) []string {
	return slices.Sorted(maps.Keys(m))
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}
