package hostprep

import (
	"reflect"
	"slices"
	"testing"
)

func TestObserved(t *testing.T) {
	spec := Spec{
		Versions: []string{"1.24.4", "1.23.10", "1.22.12"}, Default: "1.24.4",
		Env:     map[string]string{"GOPROXY": "off", "GOFLAGS": "-mod=mod"},
		SwapOff: true, NoFile: 65536,
		Sysctls:         map[string]string{"net.ipv4.tcp_rmem": "4096  87380 6291456", "vm.swappiness": "1"},
		GoCacheTmpfsMiB: 256,
	}
	facts := Facts{
		Toolchains: map[string]Toolchain{
			"1.24.4":  {GoSHA256: "a", InstalledGoSHA256: "a", Env: map[string]string{"GOPROXY": "off"}},
			"1.23.10": {GoSHA256: "b", InstalledGoSHA256: "c"}, // bin/go changed
		},
		Default:     "1.23.10",
		ActiveSwaps: 1, NoFile: 1024, NProc: 4096,
		Sysctls:         map[string]string{"net.ipv4.tcp_rmem": "4096\t87380\t6291456", "vm.swappiness": "60"},
		GoCacheTmpfsMiB: 0,
	}
	got := facts.Observed(spec)
	want := spec
	want.Versions = []string{"1.24.4"}
	want.Default = "1.23.10"
	want.Env = map[string]string{"GOPROXY": "", "GOFLAGS": ""} // the default's go.env
	want.SwapOff = false
	want.NoFile = 1024 // NProc is not managed: it stays as spec has it
	want.Sysctls = map[string]string{"net.ipv4.tcp_rmem": "4096  87380 6291456", "vm.swappiness": "60"}
	want.GoCacheTmpfsMiB = 0
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Observed =\n%+v\nwant\n%+v", got, want)
	}
	if v := facts.IntactVersions(); !reflect.DeepEqual(v, []string{"1.24.4"}) {
		t.Errorf("IntactVersions = %v", v)
	}
}

// Login limits and service limits are separate files: a change to one
// rewrites it alone, and systemd re-executes only for its own.
func TestConfigureLimits(t *testing.T) {
	spec := Spec{Root: DefaultRoot, NoFile: 65536}
	set := Limits{NoFile: 65536}
	for name, c := range map[string]struct {
		login, service Limits
		want           []string
	}{
		"in place":      {set, set, nil},
		"login edited":  {Limits{NoFile: 1024}, set, []string{"write limits"}},
		"service gone":  {set, Limits{}, []string{"write service limits", "reload systemd"}},
		"both missing":  {Limits{}, Limits{}, []string{"write limits", "write service limits", "reload systemd"}},
		"nproc dropped": {Limits{NoFile: 65536, NProc: 4096}, set, []string{"write limits"}},
	} {
		facts := Facts{LoginLimits: c.login, ServiceLimits: c.service}
		b := configureSteps(spec, facts, "", nil)
		if got := b.names(); !slices.Equal(got, c.want) {
			t.Errorf("%s: steps %v, want %v", name, got, c.want)
		}
	}
}
