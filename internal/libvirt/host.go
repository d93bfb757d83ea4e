package libvirt

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/kilnhq/terraform-provider-kiln/internal/remote"
)

// Host runs scripts as root on the machine libvirtd runs on, for what the
// libvirt API does not offer (qemu-img options libvirt never passes).
type Host interface {
	// Run runs script with bash, its positional parameters set to args, and
	// returns its standard output.
	Run(ctx context.Context, step, script string, args ...string) (string, error)
}

// ErrNoHostAccess is a URI whose transport gives Kiln no way to run commands
// on the libvirt host.
var ErrNoHostAccess = errors.New("no way to run commands on the libvirt host")

// Host is how Kiln runs commands on the libvirt host: on this machine for a
// daemon reached through its local socket; over SSH (the project's one SSH
// path, internal/remote) for a qemu+ssh URI, with the URI's user, port,
// keyfile and known_hosts over d, and ~/.ssh/known_hosts last, as libvirt's
// own ssh transport does. Other transports give ErrNoHostAccess. Nothing is
// dialled here: the errors are the configuration's.
func (c *Client) Host(d remote.Defaults) (Host, error) {
	u, err := url.Parse(c.uri)
	if err != nil {
		return nil, fmt.Errorf("libvirt URI %q: %w", c.uri, err)
	}
	_, transport, _ := strings.Cut(u.Scheme, "+")
	switch {
	case transport == "unix", transport == "" && u.Host == "":
		return localHost{}, nil
	case transport == "ssh", transport == "libssh", transport == "libssh2":
		return sshHost(u, d)
	}
	return nil, fmt.Errorf("%w: libvirt URI %q reaches the daemon over %s, not its local socket or SSH", ErrNoHostAccess, c.uri, cmp.Or(transport, "tls"))
}

func sshHost(u *url.URL, d remote.Defaults) (Host, error) {
	cfg := remote.Config{Endpoint: remote.Endpoint{Host: u.Hostname(), User: u.User.Username(), KnownHostsFile: u.Query().Get("known_hosts")}}
	if p := u.Port(); p != "" {
		port, err := strconv.ParseInt(p, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("libvirt URI port %q: %w", p, err)
		}
		cfg.Port = port
	}
	if file := u.Query().Get("keyfile"); file != "" {
		key, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("libvirt URI keyfile: %w", err)
		}
		cfg.PrivateKey = string(key)
	}
	if d.KnownHostsFile == "" {
		if home, err := os.UserHomeDir(); err == nil {
			if file := filepath.Join(home, ".ssh", "known_hosts"); fileExists(file) {
				d.KnownHostsFile = file
			}
		}
	}
	target, err := cfg.Target(d)
	if err != nil {
		return nil, fmt.Errorf("SSH to the libvirt host %s: %w", u.Hostname(), err)
	}
	return remoteHost{target}, nil
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// localHost runs scripts on this machine, as the provider's user.
type localHost struct{}

func (localHost) Run(ctx context.Context, step, script string, args ...string) (string, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "bash", append([]string{"-c", script, "kiln"}, args...)...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("step %q on this machine: %w: %s", step, err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// remoteHost runs scripts on the libvirt host over SSH, through sudo for a
// user other than root.
type remoteHost struct{ target remote.Target }

func (h remoteHost) Run(ctx context.Context, step, script string, args ...string) (string, error) {
	c, err := remote.Dial(ctx, h.target)
	if err != nil {
		return "", fmt.Errorf("libvirt host: %w", err)
	}
	defer c.Close()
	return c.Run(ctx, step, remote.BashCommand(script, args...))
}
