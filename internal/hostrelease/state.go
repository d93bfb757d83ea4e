package hostrelease

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// HostState is a service as found on one host, read in one round trip.
type HostState struct {
	// Foreign is set when the install dir exists but Kiln's marker does not
	// name this service there: Kiln neither releases into it nor removes it.
	Foreign bool
	// Current and Previous are the releases the symlinks point to; empty
	// when missing. A symlink pointing outside releases/ reads as its target.
	Current, Previous string
	// BinarySHA256 is the hash of the current binary; empty when missing.
	BinarySHA256 string
	// WantedSHA256 is the hash of the wanted release's staged binary.
	WantedSHA256 string
	// Active and Enabled are systemctl's is-active and is-enabled answers.
	Active, Enabled string
	Releases        []string
	// Installed is the manifest: path -> SHA-256 as Kiln installed them.
	Installed map[string]string
	// Changed are the installed files whose content differs now (or that
	// are gone).
	Changed []string
	// MissingData are the data directories that do not exist.
	MissingData []string
	// Health is one probe's verdict: Healthy, or "unhealthy: <why>"; empty
	// when not probed (no health check, or nothing released).
	Health string
	// RolledBack is set when the current release's unit and files were
	// restored after new ones failed their health check, until a release
	// succeeds.
	RolledBack bool
}

// Healthy is the verdict of a probe that passed.
const Healthy = "healthy"

// parseState reads read.sh's output.
func parseState(out string) (HostState, error) {
	s := HostState{Installed: map[string]string{}}
	for line := range strings.Lines(out) {
		key, value, _ := strings.Cut(strings.TrimRight(line, "\n"), " ")
		switch key {
		case "foreign":
			s.Foreign = true
		case "current":
			s.Current = releaseOf(value)
		case "previous":
			s.Previous = releaseOf(value)
		case "binary":
			s.BinarySHA256 = value
		case "wanted":
			s.WantedSHA256 = value
		case "active":
			s.Active = value
		case "enabled":
			s.Enabled = value
		case "release":
			s.Releases = append(s.Releases, value)
		case "installed":
			sum, p, ok := strings.Cut(value, " ")
			if !ok {
				return HostState{}, fmt.Errorf("malformed manifest line %q", line)
			}
			s.Installed[strings.TrimPrefix(p, " ")] = sum
		case "changed":
			s.Changed = append(s.Changed, value)
		case "nodata":
			s.MissingData = append(s.MissingData, value)
		case "health":
			s.Health = value
		case "rolledback":
			s.RolledBack = true
		case "":
		default:
			return HostState{}, fmt.Errorf("unexpected line %q in the service's state", line)
		}
	}
	return s, nil
}

// releaseOf is the release a symlink target names ("releases/<release>").
func releaseOf(target string) string {
	if r, ok := strings.CutPrefix(target, "releases/"); ok && r != "" && !strings.Contains(r, "/") {
		return r
	}
	return target
}

// Drift lists how the host differs from the release of digest it should
// run from installDir, in words for a plan: empty when it runs that release
// as installed.
func (s HostState) Drift(installDir, release, digest string) []string {
	var out []string
	switch {
	case s.Current == "":
		return []string{"not released"}
	case s.Current != release:
		out = append(out, fmt.Sprintf("current release is %s, want %s", s.Current, release))
	}
	switch s.BinarySHA256 {
	case digest:
	case "":
		out = append(out, "the current binary is missing")
	default:
		out = append(out, fmt.Sprintf("the current binary has sha256 %s, want %s", s.BinarySHA256, digest))
	}
	if s.Active != "active" {
		out = append(out, fmt.Sprintf("the unit is %s, not active", orUnknown(s.Active)))
	}
	if s.Enabled != "enabled" {
		out = append(out, fmt.Sprintf("the unit is %s, not enabled", orUnknown(s.Enabled)))
	}
	// A unit that is not active fails its check too: that is said above.
	if s.Active == "active" && s.Health != "" && s.Health != Healthy {
		out = append(out, "the health check fails: "+strings.TrimPrefix(s.Health, "unhealthy: "))
	}
	// A replaced binary is reported once, by its hash, above.
	releases := installDir + "/releases/"
	for _, p := range s.Changed {
		if !strings.HasPrefix(p, releases) {
			out = append(out, p+" was changed or removed")
		}
	}
	for _, d := range s.MissingData {
		out = append(out, "data directory "+d+" is missing")
	}
	if s.RolledBack {
		out = append(out, "rolled back: the last release's unit and files failed their health check")
	}
	return out
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// inSync is whether the host runs spec's release exactly as spec would
// install it: then a release leaves it alone.
func (s HostState) inSync(spec Spec) bool {
	if len(s.Drift(spec.installDir(), spec.Artifact.Release(), spec.Artifact.Digest())) > 0 {
		return false
	}
	return maps.Equal(s.Installed, spec.installed())
}

// hasRelease reports whether r is staged on the host.
func (s HostState) hasRelease(r string) bool { return slices.Contains(s.Releases, r) }
