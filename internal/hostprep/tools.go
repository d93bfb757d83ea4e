package hostprep

import (
	"context"
	"fmt"
	"path"
	"slices"
	"strconv"
	"time"

	"github.com/kilnhq/terraform-provider-kiln/internal/gotool"
	"github.com/kilnhq/terraform-provider-kiln/internal/gotoolchain"
	"github.com/kilnhq/terraform-provider-kiln/internal/remote"
)

// DefaultToolsDir is where Go tools go unless the spec says otherwise.
const DefaultToolsDir = "/usr/local/bin"

// InstalledTool is a Go tool binary a resource installed, as found on the
// host (scripts/tools.sh records them, scripts/facts.sh reads them back).
type InstalledTool struct {
	Owner, Path string
	Ref         string // package@version it was built from
	// InstalledSHA256 is the binary's hash at install; SHA256 its hash now,
	// empty when it is gone.
	InstalledSHA256, SHA256 string
}

// Intact reports whether the binary is still the one Kiln installed.
func (t InstalledTool) Intact() bool { return t.SHA256 != "" && t.SHA256 == t.InstalledSHA256 }

// toolPath is where spec puts tool on the host.
func toolPath(spec Spec, t gotool.Tool) string {
	dir := spec.ToolsDir
	if dir == "" {
		dir = DefaultToolsDir
	}
	return path.Join(dir, t.Name())
}

// ownTools are the tools spec's owner installed, by path.
func (f Facts) ownTools(owner string) map[string]InstalledTool {
	out := map[string]InstalledTool{}
	for _, t := range f.Tools {
		if t.Owner == owner {
			out[t.Path] = t
		}
	}
	return out
}

// toolIntact reports whether the host has t where spec puts it, as built
// from its package@version and unchanged since.
func (f Facts) toolIntact(spec Spec, t gotool.Tool) bool {
	got, ok := f.ownTools(spec.Owner)[toolPath(spec, t)]
	return ok && got.Ref == t.String() && got.Intact()
}

// settleTools is the batch step that removes the tools spec's owner
// installed and no longer declares; false when there are none.
func settleTools(spec Spec, facts Facts) (batchStep, bool) {
	var keep []string
	for _, t := range spec.Tools {
		keep = append(keep, toolPath(spec, t))
	}
	stale := false
	for p := range facts.ownTools(spec.Owner) {
		stale = stale || !slices.Contains(keep, p)
	}
	return batchStep{"remove undeclared go tools", toolsScript, append([]string{spec.Root, spec.Owner, "settle"}, keep...)}, stale
}

// installTool builds t for the host's platform on this machine (with the
// newest declared toolchain its module accepts) and streams the binary to the
// host, which checks its hash and renames it into place.
func (h *Host) installTool(ctx context.Context, spec Spec, t gotool.Tool, facts Facts) error {
	if h.Tools == nil {
		return fmt.Errorf("%s: no go tool builder configured", t)
	}
	// The module's go line decides the toolchain: resolve it again (the
	// spec holds only the package and the exact version).
	t, err := h.Tools.Resolve(ctx, gotool.Request{Package: t.Package, Version: t.Version})
	if err != nil {
		return err
	}
	goVersion, ok := gotool.PickToolchain(t.GoVersion, spec.Versions)
	if !ok {
		return fmt.Errorf("%s needs go %s or newer to build; the declared toolchains are %v", t, t.GoVersion, spec.Versions)
	}
	target, err := facts.Platform()
	if err != nil {
		return fmt.Errorf("%s: %w", h.Target.Addr, err)
	}
	start := time.Now()
	source := h.Source
	if source.Kind == gotoolchain.FetchedByHost {
		source.Kind = gotoolchain.FromMirror // the build runs here: verify the archive here
	}
	toolchain, err := source.Fetch(ctx, goVersion, gotool.LocalPlatform())
	if err != nil {
		return err
	}
	bin, err := h.Tools.Build(ctx, t, goVersion, toolchain, target)
	if err != nil {
		return err
	}
	h.took(ctx, "build "+t.String(), start)
	rc, err := bin.Open()
	if err != nil {
		return err
	}
	defer rc.Close()
	dest := toolPath(spec, t)
	start = time.Now()
	step := "install " + t.String()
	if _, err := h.client.RunInput(ctx, step, remote.BashCommand(toolsScript, spec.Root, spec.Owner, "install",
		dest, strconv.FormatInt(bin.Size, 10), bin.SHA256, t.String()), rc); err != nil {
		return err
	}
	h.took(ctx, step, start, "path", dest, "sha256", bin.SHA256)
	return nil
}
