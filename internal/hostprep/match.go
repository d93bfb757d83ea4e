package hostprep

import (
	"maps"
	"slices"
	"strings"
)

// Observed is spec as the host has it: every value spec manages takes the
// host's, and a value that means the same as spec's (a sysctl that differs
// only in white space) keeps spec's spelling. Apply changes what differs from
// spec; Read records it, so a plan shows the way back.
func (f Facts) Observed(spec Spec) Spec {
	o := spec
	o.Versions = nil
	for _, v := range spec.Versions {
		if f.Toolchains[v].Intact() {
			o.Versions = append(o.Versions, v)
		}
	}
	o.Tools = nil
	for _, t := range spec.Tools {
		if f.toolIntact(spec, t) {
			o.Tools = append(o.Tools, t)
		}
	}
	o.Default = f.Default
	if spec.Env != nil {
		current := f.Toolchains[f.Default].Env
		o.Env = map[string]string{}
		for k := range spec.Env {
			o.Env[k] = current[k]
		}
	}
	if spec.SwapOff {
		o.SwapOff = f.SwapOff()
	}
	if spec.NoFile > 0 {
		o.NoFile = f.NoFile
	}
	if spec.NProc > 0 {
		o.NProc = f.NProc
	}
	if spec.GoCacheTmpfsMiB > 0 {
		o.GoCacheTmpfsMiB = f.GoCacheTmpfsMiB
	}
	if spec.Sysctls != nil {
		o.Sysctls = map[string]string{}
		for k, want := range spec.Sysctls {
			o.Sysctls[k] = f.Sysctls[k]
			if sameSysctl(f.Sysctls[k], want) {
				o.Sysctls[k] = want
			}
		}
	}
	return o
}

// IntactVersions are the toolchains on the host whose bin/go is the one Kiln
// installed, in version order: what an imported host adopts.
func (f Facts) IntactVersions() []string {
	var versions []string
	for _, v := range slices.Sorted(maps.Keys(f.Toolchains)) {
		if f.Toolchains[v].Intact() {
			versions = append(versions, v)
		}
	}
	return versions
}

// sameSysctl compares values the way the kernel reads them: white space
// separates fields and its amount does not matter ("4096 87380" is
// "4096\t87380").
func sameSysctl(got, want string) bool {
	return strings.Join(strings.Fields(got), " ") == strings.Join(strings.Fields(want), " ")
}

// sameEnv reports whether a toolchain's go.env sets what spec's env asks for,
// Go's own defaults standing for keys it leaves out.
func sameEnv(got, want map[string]string) bool {
	for _, k := range EnvKeys {
		w, ok := want[k]
		if !ok {
			w = goEnvDefaults[k]
		}
		if got[k] != w {
			return false
		}
	}
	return true
}
