package libvirt

import (
	"strings"
	"testing"

	"github.com/kilnhq/terraform-provider-kiln/internal/cloudinit"
)

func TestPlanUpdate(t *testing.T) {
	base := sampleVM()
	base.Running = true
	base.DiskBytes = 4 * GiB
	desired := func(edit func(*VM)) VM {
		v := base
		v.Interfaces = append([]Interface(nil), base.Interfaces...)
		edit(&v)
		return v
	}
	cases := []struct {
		name    string
		want    VM
		replace string
		check   func(UpdatePlan) bool
	}{
		{"no change", desired(func(*VM) {}), "", func(p UpdatePlan) bool {
			return !p.Redefine && !p.GrowDisk && !p.Start && !p.Stop
		}},
		{"stopped out of band", desired(func(*VM) {}), "", nil},
		{"memory grows with a controlled restart", desired(func(v *VM) { v.MemoryMiB = 2048 }), "", func(p UpdatePlan) bool {
			return p.Redefine && p.Start && !p.Stop
		}},
		{"vcpu on a VM to be stopped", desired(func(v *VM) { v.VCPU = 4; v.Running = false }), "", func(p UpdatePlan) bool {
			return p.Redefine && p.Stop && !p.Start
		}},
		{"disk grows in place", desired(func(v *VM) { v.DiskBytes = 6 * GiB }), "", func(p UpdatePlan) bool {
			return p.GrowDisk && p.DesiredDiskBytes == 6*GiB && !p.Redefine && !p.Start
		}},
		{"disk shrink replaces", desired(func(v *VM) { v.DiskBytes = 2 * GiB }), "shrinking", nil},
		{"new base replaces", desired(func(v *VM) { v.BaseVolume = "other.qcow2" }), "base", nil},
		{"cloud-init change replaces", desired(func(v *VM) {
			v.CloudInit = cloudinit.Config{Hostname: "other"}
		}), "cloud_init", nil},
		{"network change replaces", desired(func(v *VM) { v.Interfaces[0].Network = "isolated" }), "network_interface", nil},
		{"unset MAC and port do not replace", desired(func(v *VM) {
			v.Interfaces[0].MAC, v.Interfaces[1].SSHForwardPort, v.Interfaces[1].MAC = "", 0, ""
		}), "", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			current := base
			if c.name == "stopped out of band" {
				current.Running = false
			}
			p := PlanUpdate(current, c.want)
			if c.replace == "" {
				if !p.InPlace() {
					t.Fatalf("plan replaces (%v), want in place", p.Replace)
				}
			} else if p.InPlace() || !strings.Contains(strings.Join(p.Replace, ";"), c.replace) {
				t.Fatalf("Replace = %v, want it to name %q", p.Replace, c.replace)
			}
			if c.name == "stopped out of band" && !p.Start {
				t.Fatal("a VM stopped out of band is not started")
			}
			if c.check != nil && !c.check(p) {
				t.Fatalf("plan %+v", p)
			}
		})
	}
}
