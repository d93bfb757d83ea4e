package hostprep

import (
	"context"
	"fmt"

	"github.com/kilnhq/terraform-provider-kiln/internal/remote"
)

// Uninstall removes what Kiln installed for spec: the toolchains it unpacked
// under the root, the default link and the go/gofmt links pointing into it, its
// limits and sysctl files, and the GOCACHE tmpfs. Swap stays off: turning it
// back on is a decision for whoever owns the host next.
func Uninstall(ctx context.Context, c *remote.Client, spec Spec) error {
	root := rootOf(spec)
	if err := (Spec{Root: root, GoCacheTmpfsMiB: spec.GoCacheTmpfsMiB, GoCacheUser: spec.GoCacheUser}).Validate(); err != nil {
		return err
	}
	if spec.GoCacheTmpfsMiB > 0 {
		script := fmt.Sprintf(`set -e
d="$(getent passwd %s | cut -d: -f6)/.cache/go-build"
if mountpoint -q "$d"; then umount "$d"; fi
awk -v d="$d" '$2 != d' /etc/fstab >/etc/fstab.kiln-tmp
mv /etc/fstab.kiln-tmp /etc/fstab`, remote.ShellQuote(spec.GoCacheUser))
		if _, err := c.Run(ctx, "remove tmpfs GOCACHE", script); err != nil {
			return err
		}
	}
	script := fmt.Sprintf(`set -e
root=%s
for d in "$root"/*/; do
	[ -L "${d%%/}" ] && continue
	[ -f "$d%s" ] && rm -rf "${d%%/}"
done
rm -f "$root/current" "$root/.current.tmp"
rm -rf "$root"/.kiln-tmp-*
for l in /usr/local/bin/go /usr/local/bin/gofmt; do
	case "$(readlink "$l" 2>/dev/null)" in "$root"/*) rm -f "$l" ;; esac
done
rmdir "$root" 2>/dev/null || true
had_limits=0
[ -f %s ] && had_limits=1
rm -f %s %s %s
if [ "$had_limits" = 1 ] && command -v systemctl >/dev/null; then systemctl daemon-reexec; fi`,
		remote.ShellQuote(root), markerName, systemdLimitsPath, limitsPath, systemdLimitsPath, sysctlPath)
	_, err := c.Run(ctx, "uninstall", script)
	return err
}
