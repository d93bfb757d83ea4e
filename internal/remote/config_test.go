package remote

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

func TestConfigTargetMergesDefaults(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	key := string(pem.EncodeToMemory(block))
	hostKey, _ := NewHostKey()

	target, err := Config{Endpoint: Endpoint{Host: "10.0.0.7", HostKey: hostKey.Public}}.Target(Defaults{PrivateKey: key})
	if err != nil {
		t.Fatal(err)
	}
	if target.Addr != "10.0.0.7:22" || target.User != "root" || len(target.Auth) != 1 || target.ConnectTimeout != ConnectRetry {
		t.Errorf("with empty defaults: %s@%s, %d auth methods, retry %s", target.User, target.Addr, len(target.Auth), target.ConnectTimeout)
	}
	target, err = Config{Endpoint: Endpoint{Host: "::1", HostKey: hostKey.Public}}.Target(Defaults{User: "debian", Port: 2222, PrivateKey: key})
	if err != nil || target.Addr != "[::1]:2222" || target.User != "debian" {
		t.Errorf("with defaults: %s@%s, %v", target.User, target.Addr, err)
	}

	for want, cfg := range map[string]Config{
		"ssh.host is required":         {},
		"ssh.bastion.host is required": {Endpoint: Endpoint{Host: "h", PrivateKey: key, HostKey: hostKey.Public}, Bastion: &Endpoint{}},
		"set ssh.private_key":          {Endpoint: Endpoint{Host: "h", HostKey: hostKey.Public}},
		"ssh.private_key: parse":       {Endpoint: Endpoint{Host: "h", PrivateKey: "junk", HostKey: hostKey.Public}},
		"set ssh.host_key":             {Endpoint: Endpoint{Host: "h", PrivateKey: key}},
	} {
		if _, err := cfg.Target(Defaults{}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("got %v, want an error saying %q", err, want)
		}
	}
}
