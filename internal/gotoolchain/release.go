// Package gotoolchain resolves Go versions, fetches toolchain archives once into
// a content-addressed cache, and verifies them before anything touches a host:
// by SHA-256 and OpenPGP signature for release tarballs, or against the Go
// checksum database for the golang.org/toolchain modules.
package gotoolchain

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
)

// DefaultIndexURL lists every Go release with its files and their SHA-256.
const DefaultIndexURL = "https://go.dev/dl/?mode=json&include=all"

// Release is one entry of the release index.
type Release struct {
	Version string `json:"version"` // "go1.24.4"
	Stable  bool   `json:"stable"`
	Files   []File `json:"files"`
}

// File is one downloadable file of a release.
type File struct {
	Filename string `json:"filename"`
	OS       string `json:"os"`
	Arch     string `json:"arch"`
	Version  string `json:"version"`
	SHA256   string `json:"sha256"`
	Size     int64  `json:"size"`
	Kind     string `json:"kind"` // "archive", "installer", "source"
}

// Archive returns the release's archive for goos/goarch.
func (r Release) Archive(goos, goarch string) (File, bool) {
	for _, f := range r.Files {
		if f.Kind == "archive" && f.OS == goos && f.Arch == goarch {
			return f, true
		}
	}
	return File{}, false
}

// FetchIndex reads the release index at url.
func FetchIndex(ctx context.Context, client *http.Client, url string) ([]Release, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch Go release index %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch Go release index %s: %s", url, resp.Status)
	}
	var releases []Release
	if err := json.NewDecoder(resp.Body).Decode(&releases); err != nil {
		return nil, fmt.Errorf("parse Go release index %s: %w", url, err)
	}
	return releases, nil
}

// Version is a parsed Go release version such as 1.24.4 (patch 0 for "1.24").
type Version struct{ Major, Minor, Patch int }

func (v Version) String() string { return fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Patch) }

func (v Version) less(o Version) bool {
	if v.Major != o.Major {
		return v.Major < o.Major
	}
	if v.Minor != o.Minor {
		return v.Minor < o.Minor
	}
	return v.Patch < o.Patch
}

// parseRelease parses "go1.24.4", "1.24.4" and, before Go 1.21's scheme, "1.20"
// (which is 1.20.0). Pre-releases ("1.25rc1") do not parse.
func parseRelease(s string) (Version, bool) {
	s = strings.TrimPrefix(s, "go")
	parts := strings.Split(s, ".")
	if len(parts) < 2 || len(parts) > 3 {
		return Version{}, false
	}
	var n [3]int
	for i, p := range parts {
		v, err := strconv.Atoi(p)
		if err != nil || v < 0 {
			return Version{}, false
		}
		n[i] = v
	}
	return Version{n[0], n[1], n[2]}, true
}

// Resolve picks the release a version request names: an exact release
// ("1.24.4"), the newest patch of a minor version ("1.24"), or the newest
// stable release ("stable"). It returns the release's version without "go".
func Resolve(request string, releases []Release) (string, error) {
	type candidate struct {
		v       Version
		version string
	}
	var all []candidate
	for _, r := range releases {
		if v, ok := parseRelease(r.Version); ok && r.Stable {
			all = append(all, candidate{v, strings.TrimPrefix(r.Version, "go")})
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[j].v.less(all[i].v) })

	request = strings.TrimPrefix(strings.TrimSpace(request), "go")
	if request == "stable" {
		if len(all) == 0 {
			return "", fmt.Errorf("the release index lists no stable release")
		}
		return all[0].version, nil
	}
	parts := strings.Split(request, ".")
	want, ok := parseRelease(request)
	if !ok {
		return "", fmt.Errorf("go version %q: want 1.N.P, 1.N or stable", request)
	}
	for _, c := range all {
		switch {
		case len(parts) == 3 && c.v == want:
			return c.version, nil
		case len(parts) == 2 && c.v.Major == want.Major && c.v.Minor == want.Minor:
			return c.version, nil // newest first
		}
	}
	return "", fmt.Errorf("go version %q: no such stable release in the index", request)
}
