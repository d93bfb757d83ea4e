package hostprep

import (
	"cmp"
	"context"
)

// unowned stands for the owner of a spec that names none (a resource older
// than owners): no manifest has that name, so only its declared versions go.
const unowned = "unowned"

// Uninstall removes what spec's owner installed: the toolchains it holds or
// declares that no other resource on the host holds, the default link and the
// go/gofmt links when the toolchain they select went with them, the limits and
// sysctl files when spec sets limits or sysctls, and the GOCACHE tmpfs. Swap
// stays off: turning it back on is a decision for whoever owns the host next.
func (h *Host) Uninstall(ctx context.Context, spec Spec) error {
	spec.Root = rootOf(spec)
	if err := (Spec{Root: spec.Root, Owner: spec.Owner, Versions: spec.Versions, GoCacheTmpfsMiB: spec.GoCacheTmpfsMiB,
		GoCacheUser: spec.GoCacheUser}).Validate(); err != nil {
		return err
	}
	var b batch
	if spec.GoCacheTmpfsMiB > 0 {
		b.add("remove tmpfs GOCACHE", removeGoCacheTmpfsScript, spec.GoCacheUser)
	}
	b.add("remove go tools", toolsScript, spec.Root, cmp.Or(spec.Owner, unowned), "release")
	b.add("remove toolchains", claimsScript, append([]string{spec.Root, markerName, cmp.Or(spec.Owner, unowned), "release"}, spec.Versions...)...)
	files := []string{spec.Root}
	if spec.NoFile > 0 || spec.NProc > 0 {
		files = append(files, limitsPath, systemdLimitsPath)
	}
	if len(spec.Sysctls) > 0 {
		files = append(files, sysctlPath)
	}
	b.add("uninstall", uninstallScript, files...)
	return h.Target.Secrets.Error(b.run(ctx, h.client))
}

// Forget drops spec's owner's claims without removing anything: the
// toolchains stay for whoever owns the host next, and other resources may
// remove them once none of them holds them.
func (h *Host) Forget(ctx context.Context, spec Spec) error {
	spec.Root = rootOf(spec)
	if spec.Owner == "" {
		return nil
	}
	if err := (Spec{Root: spec.Root, Owner: spec.Owner}).Validate(); err != nil {
		return err
	}
	var b batch
	b.add("forget go tools", toolsScript, spec.Root, spec.Owner, "forget")
	b.add("forget toolchains", claimsScript, spec.Root, markerName, spec.Owner, "forget")
	return b.run(ctx, h.client)
}
