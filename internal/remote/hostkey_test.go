package remote

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// serveSSH runs an SSH server on 127.0.0.1 that completes key exchange with key
// and then refuses every login.
func serveSSH(t *testing.T, key HostKey) string {
	t.Helper()
	signer, err := ssh.ParsePrivateKey([]byte(key.PrivatePEM))
	if err != nil {
		t.Fatal(err)
	}
	config := &ssh.ServerConfig{
		PasswordCallback: func(ssh.ConnMetadata, []byte) (*ssh.Permissions, error) {
			return nil, errors.New("no logins here")
		},
	}
	config.AddHostKey(signer)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				_, _, _, _ = ssh.NewServerConn(conn, config)
			}()
		}
	}()
	return ln.Addr().String()
}

func TestWaitForHostKeyAcceptsThePinnedKey(t *testing.T) {
	key, err := NewHostKey()
	if err != nil {
		t.Fatal(err)
	}
	addr := serveSSH(t, key)
	pub, err := ParsePublicKey(key.Public)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := WaitForHostKey(ctx, addr, pub); err != nil {
		t.Fatalf("WaitForHostKey: %v", err)
	}
}

func TestWaitForHostKeyRefusesAnotherKey(t *testing.T) {
	served, _ := NewHostKey()
	pinned, _ := NewHostKey()
	addr := serveSSH(t, served)
	pub, err := ParsePublicKey(pinned.Public)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 600*time.Millisecond)
	defer cancel()
	err = WaitForHostKey(ctx, addr, pub)
	if err == nil {
		t.Fatal("WaitForHostKey accepted a host key other than the pinned one")
	}
	if !strings.Contains(err.Error(), "presented host key "+served.Public) {
		t.Fatalf("error %q does not name the key the server presented", err)
	}
}
