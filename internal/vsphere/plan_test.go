package vsphere

import (
	"maps"
	"slices"
	"strings"
	"testing"
)

func baseVM() VM {
	return VM{
		Name: "build-1", Source: "templates/debian-12", Cluster: "C0", Host: "H0", Datastore: "ds0",
		NumCPUs: 2, MemoryMiB: 2048, DiskGiB: []int64{20}, Networks: []string{"VM Network"},
		ExtraConfig: map[string]string{"guestinfo.role": "build"}, PowerOn: true,
	}
}

func TestPlanUpdate(t *testing.T) {
	tests := []struct {
		name    string
		current func(*VM)
		desired func(*VM)
		want    UpdatePlan
		wantErr string
	}{
		{name: "no change", want: UpdatePlan{}},
		{
			name:    "powered off out of band",
			current: func(v *VM) { v.PowerOn = false },
			want:    UpdatePlan{Start: true},
		},
		{
			name:    "stop",
			desired: func(v *VM) { v.PowerOn = false },
			want:    UpdatePlan{Stop: true},
		},
		{
			name:    "cpu without hot-add needs a power cycle",
			desired: func(v *VM) { v.NumCPUs = 4 },
			wantErr: "num_cpus 2 -> 4 (CPU hot-add off)",
		},
		{
			name:    "cpu without hot-add, power cycle allowed",
			desired: func(v *VM) { v.NumCPUs = 4; v.AllowPowerCycle = true },
			want:    UpdatePlan{CPU: true, PowerCycle: true, Stop: true, Start: true},
		},
		{
			name:    "cpu with hot-add is live",
			current: func(v *VM) { v.CPUHotAdd = true },
			desired: func(v *VM) { v.NumCPUs = 4 },
			want:    UpdatePlan{CPU: true},
		},
		{
			name:    "cpu decrease is never live",
			current: func(v *VM) { v.CPUHotAdd = true },
			desired: func(v *VM) { v.NumCPUs = 1 },
			wantErr: "num_cpus 2 -> 1",
		},
		{
			name:    "memory with hot-add is live",
			current: func(v *VM) { v.MemoryHotAdd = true },
			desired: func(v *VM) { v.MemoryMiB = 4096 },
			want:    UpdatePlan{Memory: true},
		},
		{
			name:    "memory on a stopped VM",
			current: func(v *VM) { v.PowerOn = false },
			desired: func(v *VM) { v.MemoryMiB = 1024; v.PowerOn = false },
			want:    UpdatePlan{Memory: true},
		},
		{
			name:    "grow disk in place",
			desired: func(v *VM) { v.DiskGiB = []int64{30} },
			want:    UpdatePlan{GrowDisks: []int{0}},
		},
		{
			name:    "shrink disk replaces",
			desired: func(v *VM) { v.DiskGiB = []int64{10} },
			want:    UpdatePlan{Replace: []string{"disk 0 (shrinking 20 GiB to 10 GiB)"}},
		},
		{
			name:    "network change in place",
			desired: func(v *VM) { v.Networks = []string{"DVPG0"} },
			want:    UpdatePlan{Networks: []int{0}},
		},
		{
			name:    "moved folder",
			current: func(v *VM) { v.Folder = "archive" },
			want:    UpdatePlan{Move: true},
		},
		{
			name:    "other host relocates",
			desired: func(v *VM) { v.Host = "H1" },
			want:    UpdatePlan{Relocate: true},
		},
		{
			name:    "extra config",
			desired: func(v *VM) { v.ExtraConfig = map[string]string{"guestinfo.role": "test", "guestinfo.x": "1"} },
			want: UpdatePlan{SetExtraConfig: map[string]string{
				"guestinfo.role": "test", "guestinfo.x": "1", keyManagedKeys: "guestinfo.role,guestinfo.x",
			}},
		},
		{
			name:    "extra config key dropped",
			desired: func(v *VM) { v.ExtraConfig = nil },
			want:    UpdatePlan{SetExtraConfig: map[string]string{"guestinfo.role": "", keyManagedKeys: ""}},
		},
		{
			name:    "source replaces",
			desired: func(v *VM) { v.LinkedClone = true },
			want:    UpdatePlan{Replace: []string{"source"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			current, desired := baseVM(), baseVM()
			if tt.current != nil {
				tt.current(&current)
			}
			if tt.desired != nil {
				tt.desired(&desired)
			}
			got, err := PlanUpdate(current, desired)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), "allow_power_cycle") {
					t.Fatalf("error = %v, want one containing %q and naming allow_power_cycle", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !equalPlans(got, tt.want) {
				t.Errorf("plan = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func equalPlans(a, b UpdatePlan) bool {
	return slices.Equal(a.Replace, b.Replace) && a.Relocate == b.Relocate && a.Move == b.Move &&
		a.CPU == b.CPU && a.Memory == b.Memory && slices.Equal(a.GrowDisks, b.GrowDisks) &&
		slices.Equal(a.Networks, b.Networks) && maps.Equal(a.SetExtraConfig, b.SetExtraConfig) &&
		a.PowerCycle == b.PowerCycle && a.Start == b.Start && a.Stop == b.Stop
}

func TestCustomizationSpec(t *testing.T) {
	spec, err := customizationSpec(&Customization{Hostname: "build-1", Domain: "example.test", IPv4Address: "10.1.2.3/24", IPv4Gateway: "10.1.2.1"}, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(spec.NicSettingMap) != 2 {
		t.Fatalf("%d adapter mappings, want one per adapter (2)", len(spec.NicSettingMap))
	}
	first := spec.NicSettingMap[0].Adapter
	if first.SubnetMask != "255.255.255.0" || len(first.Gateway) != 1 || first.Gateway[0] != "10.1.2.1" {
		t.Errorf("first adapter = %+v", first)
	}
	if _, err := customizationSpec(&Customization{IPv4Address: "10.1.2.3"}, 1); err == nil || !strings.Contains(err.Error(), "prefix length") {
		t.Errorf("address without prefix: error = %v", err)
	}
	if _, err := customizationSpec(&Customization{}, 0); err == nil {
		t.Error("no adapters: no error")
	}
}

func TestSDKURL(t *testing.T) {
	for in, want := range map[string]string{
		"vcenter.example.test":           "https://vcenter.example.test/sdk",
		"127.0.0.1:8989":                 "https://127.0.0.1:8989/sdk",
		"http://127.0.0.1:8989/sdk":      "http://127.0.0.1:8989/sdk",
		"https://vc.example.test/custom": "https://vc.example.test/custom",
	} {
		u, err := sdkURL(in)
		if err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		if u.String() != want {
			t.Errorf("sdkURL(%q) = %s, want %s", in, u, want)
		}
	}
	if _, err := sdkURL(""); err == nil || !strings.Contains(err.Error(), "VSPHERE_SERVER") {
		t.Errorf("empty server: error = %v", err)
	}
}
