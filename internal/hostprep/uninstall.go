package hostprep

import (
	"context"

	"github.com/kilnhq/terraform-provider-kiln/internal/remote"
)

// Uninstall removes what Kiln installed for spec: the toolchains it unpacked
// under the root, the default link and the go/gofmt links pointing into it, its
// limits and sysctl files, and the GOCACHE tmpfs. Swap stays off: turning it
// back on is a decision for whoever owns the host next.
func (h *Host) Uninstall(ctx context.Context, spec Spec) error {
	root := rootOf(spec)
	if err := (Spec{Root: root, GoCacheTmpfsMiB: spec.GoCacheTmpfsMiB, GoCacheUser: spec.GoCacheUser}).Validate(); err != nil {
		return err
	}
	if spec.GoCacheTmpfsMiB > 0 {
		if _, err := h.client.Run(ctx, "remove tmpfs GOCACHE", remote.BashCommand(removeGoCacheTmpfsScript, spec.GoCacheUser)); err != nil {
			return err
		}
	}
	_, err := h.client.Run(ctx, "uninstall", remote.BashCommand(uninstallScript, root, markerName, limitsPath, systemdLimitsPath, sysctlPath))
	return err
}
