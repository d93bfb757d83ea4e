package libvirt

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/kilnhq/terraform-provider-kiln/internal/remote"
)

// A local daemon's host is this machine; a qemu+ssh daemon's is reached over
// SSH with what the URI and the provider's defaults give; other transports
// give no access, and say so before anything is dialled.
func TestHostByURI(t *testing.T) {
	dir := t.TempDir()
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	block, err := ssh.MarshalPrivateKey(key, "")
	if err != nil {
		t.Fatal(err)
	}
	keyFile, knownHosts := filepath.Join(dir, "id"), filepath.Join(dir, "known_hosts")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(knownHosts, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("HOME", dir) // no ~/.ssh/known_hosts to fall back on
	withKey := remote.Defaults{PrivateKey: string(pem.EncodeToMemory(block)), KnownHostsFile: knownHosts}

	for uri, c := range map[string]struct {
		d       remote.Defaults
		want    string // "local", a host:port and user "addr user", or an error's text
		wantErr error
	}{
		"qemu:///system":      {want: "local"},
		"qemu+unix:///system": {want: "local"},
		"qemu+ssh://kvm@virt.example:2222/system?keyfile=" + keyFile + "&known_hosts=" + knownHosts: {want: "virt.example:2222 kvm"},
		"qemu+ssh://virt.example/system":                      {d: withKey, want: "virt.example:22 root"},
		"qemu+libssh2://virt.example/system":                  {d: withKey, want: "virt.example:22 root"},
		"qemu+ssh://virt.example/system?x=1":                  {d: remote.Defaults{KnownHostsFile: knownHosts}, wantErr: remote.ErrNoCredentials},
		"qemu+ssh://virt.example/system?y=1":                  {d: remote.Defaults{PrivateKey: withKey.PrivateKey}, want: "not pinned"},
		"qemu+tcp://virt.example/system":                      {wantErr: ErrNoHostAccess, want: "over tcp"},
		"qemu://virt.example/system":                          {wantErr: ErrNoHostAccess, want: "over tls"},
		"qemu+ssh://virt.example/system?keyfile=/nonexistent": {d: withKey, want: "keyfile"},
	} {
		h, err := NewClient(uri).Host(c.d)
		var got string
		switch h := h.(type) {
		case localHost:
			got = "local"
		case remoteHost:
			got = h.target.Addr + " " + h.target.User
		}
		switch {
		case c.wantErr != nil && !errors.Is(err, c.wantErr):
			t.Errorf("%s: error %v, want %v", uri, err, c.wantErr)
		case err != nil && !strings.Contains(err.Error(), c.want):
			t.Errorf("%s: error %v, want one saying %q", uri, err, c.want)
		case err == nil && got != c.want:
			t.Errorf("%s: host %q, want %q", uri, got, c.want)
		}
	}
}

func TestLocalHostRunsScriptsWithArguments(t *testing.T) {
	out, err := localHost{}.Run(context.Background(), "echo", `printf '%s|' "$@"`, "a b", "c")
	if err != nil || out != "a b|c|" {
		t.Fatalf("output %q, error %v", out, err)
	}
	_, err = localHost{}.Run(context.Background(), "fail", "echo broken >&2; exit 3")
	if err == nil || !strings.Contains(err.Error(), `step "fail"`) || !strings.Contains(err.Error(), "broken") {
		t.Fatalf("error %v, want the step and its stderr", err)
	}
}
