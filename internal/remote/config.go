package remote

import (
	"cmp"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"
)

// Config is how a user describes the way to a host: the host's SSH server and,
// optionally, a bastion to jump through. Empty fields take the Defaults.
type Config struct {
	Endpoint
	// Bastion is dialled first; the host is then dialled from it. It
	// authenticates through the agent when the host's endpoint does.
	Bastion *Endpoint
}

// Endpoint is one SSH server of a Config.
type Endpoint struct {
	Host       string
	Port       int64 // 0 takes the default
	User       string
	PrivateKey string // PEM or OpenSSH
	UseAgent   bool   // also authenticate through the agent at SSH_AUTH_SOCK
	// HostKey pins the server's key (authorized_keys format); without it the
	// key must be listed in KnownHostsFile.
	HostKey        string
	KnownHostsFile string
}

// Defaults fill what a Config leaves empty: settings shared by every host.
// Their own zero values fall back to user root on port 22.
type Defaults struct {
	User           string
	Port           int64
	PrivateKey     string
	UseAgent       bool
	KnownHostsFile string
}

// ErrNoCredentials is a Config that gives no way to log in: no private key and
// no agent, on the endpoint or in the Defaults.
var ErrNoCredentials = errors.New("no SSH credentials")

// ConnectRetry is how long Dial keeps retrying a resolved Config's host: long
// enough for a host that is still booting.
const ConnectRetry = 2 * time.Minute

// Target resolves c over d. Errors name the field at fault the way Kiln's
// configuration spells it (ssh.private_key, ssh.bastion.host_key).
func (c Config) Target(d Defaults) (Target, error) {
	if c.Host == "" {
		return Target{}, errors.New("ssh.host is required")
	}
	t, err := c.resolve(d, "ssh")
	if err != nil || c.Bastion == nil {
		return t, err
	}
	bastion := *c.Bastion
	if bastion.Host == "" {
		return t, errors.New("ssh.bastion.host is required")
	}
	bastion.UseAgent = c.UseAgent
	jump, err := bastion.resolve(d, "ssh.bastion")
	if err != nil {
		return t, err
	}
	t.Jump = &jump
	return t, nil
}

// resolve resolves e over d; field names e's fields in errors.
func (e Endpoint) resolve(d Defaults, field string) (Target, error) {
	port := cmp.Or(e.Port, d.Port, 22)
	t := Target{
		Addr:           net.JoinHostPort(e.Host, strconv.FormatInt(port, 10)),
		User:           cmp.Or(e.User, d.User, "root"),
		ConnectTimeout: ConnectRetry,
	}
	if key := cmp.Or(e.PrivateKey, d.PrivateKey); key != "" {
		auth, err := KeyAuth([]byte(key))
		if err != nil {
			return t, fmt.Errorf("%s.private_key: %w", field, err)
		}
		t.Auth = append(t.Auth, auth)
	}
	if e.UseAgent || d.UseAgent {
		auth, err := AgentAuth()
		if err != nil {
			return t, err
		}
		t.Auth = append(t.Auth, auth)
	}
	if len(t.Auth) == 0 {
		return t, fmt.Errorf("%w for %s: set %s.private_key, use_agent, or the provider's ssh block", ErrNoCredentials, t.Addr, field)
	}
	switch knownHosts := cmp.Or(e.KnownHostsFile, d.KnownHostsFile); {
	case e.HostKey != "":
		key, err := ParsePublicKey(e.HostKey)
		if err != nil {
			return t, fmt.Errorf("%s.host_key: %w", field, err)
		}
		t.HostKey = PinHostKey(key)
	case knownHosts != "":
		check, err := KnownHosts(knownHosts)
		if err != nil {
			return t, err
		}
		t.HostKey = check
	default:
		return t, fmt.Errorf("the host key of %s is not pinned: set %s.host_key or a known_hosts_file", t.Addr, field)
	}
	return t, nil
}
