package hostprep

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/kilnhq/terraform-provider-kiln/internal/gotoolchain"
	"github.com/kilnhq/terraform-provider-kiln/internal/remote"
)

// arm64Facts is what scripts/facts.sh prints on a Debian arm64 host.
const arm64Facts = `os=Debian GNU/Linux 12 (bookworm)
ostype=linux-gnu
kernel=6.1.0-50-arm64
arch=aarch64
cgroupfs=cgroup2fs
swapactive=0
fstabswap=0
`

// An arm64 host is sent the arm64 toolchain: the platform comes from its facts.
func TestArm64HostGetsAnArm64Toolchain(t *testing.T) {
	index := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		files := []gotoolchain.File{}
		for arch, digit := range map[string]string{"amd64": "a", "arm64": "b"} {
			files = append(files, gotoolchain.File{Filename: gotoolchain.TarballName("1.24.4", "linux", arch),
				OS: "linux", Arch: arch, Kind: "archive", SHA256: strings.Repeat(digit, 64)})
		}
		_ = json.NewEncoder(w).Encode([]gotoolchain.Release{{Version: "go1.24.4", Stable: true, Files: files}})
	}))
	defer index.Close()
	h := &Host{Target: remote.Target{Addr: "arm.test:22"}, Source: gotoolchain.Source{Kind: gotoolchain.FetchedByHost,
		Mirror: gotoolchain.Mirror{URL: "http://mirror.test/", IndexURL: index.URL}}}

	a, err := h.fetch(context.Background(), "1.24.4", parseFacts(arm64Facts))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(a.URL, "/go1.24.4.linux-arm64.tar.gz") || a.SHA256 != strings.Repeat("b", 64) {
		t.Errorf("an arm64 host gets %s (sha256 %s), want the linux-arm64 tarball", a.URL, a.SHA256)
	}
}

func TestUnsupportedPlatformsAreRefused(t *testing.T) {
	for name, facts := range map[string]string{
		"unknown architecture": strings.Replace(arm64Facts, "arch=aarch64", "arch=sparc64", 1),
		"not Linux":            strings.Replace(arm64Facts, "ostype=linux-gnu", "ostype=freebsd14.1", 1),
	} {
		h := &Host{Target: remote.Target{Addr: "odd.test:22"}}
		if _, err := h.fetch(context.Background(), "1.24.4", parseFacts(facts)); err == nil {
			t.Errorf("%s: a toolchain was fetched", name)
		}
	}
	if p, err := LinuxPlatform("armv6l"); err != nil || p.String() != "linux/armv6l" {
		t.Errorf("LinuxPlatform(armv6l) = %v, %v", p, err)
	}
}
