package remote

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
)

// Target is an SSH server to run commands on, with its host key pinned.
type Target struct {
	Addr    string // host:port
	User    string
	Signer  ssh.Signer
	HostKey ssh.PublicKey
}

// Client is an SSH connection to one Target.
type Client struct {
	target Target
	conn   *ssh.Client
}

// Dial connects to t, refusing any host key but t.HostKey.
func Dial(ctx context.Context, t Target) (*Client, error) {
	if t.HostKey == nil {
		return nil, fmt.Errorf("ssh %s: no host key pinned", t.Addr)
	}
	var d net.Dialer
	raw, err := d.DialContext(ctx, "tcp", t.Addr)
	if err != nil {
		return nil, fmt.Errorf("ssh %s: %w", t.Addr, err)
	}
	config := &ssh.ClientConfig{
		User:              t.User,
		Auth:              []ssh.AuthMethod{ssh.PublicKeys(t.Signer)},
		HostKeyCallback:   ssh.FixedHostKey(t.HostKey),
		HostKeyAlgorithms: []string{t.HostKey.Type()},
	}
	if deadline, ok := ctx.Deadline(); ok {
		_ = raw.SetDeadline(deadline)
	}
	c, chans, reqs, err := ssh.NewClientConn(raw, t.Addr, config)
	if err != nil {
		raw.Close()
		return nil, fmt.Errorf("ssh %s@%s: %w", t.User, t.Addr, err)
	}
	_ = raw.SetDeadline(time.Time{})
	return &Client{target: t, conn: ssh.NewClient(c, chans, reqs)}, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// CommandError is a command that ran and exited non-zero.
type CommandError struct {
	Addr, Command string
	ExitCode      int
	Stderr        string
}

func (e *CommandError) Error() string {
	return fmt.Sprintf("%s: %q exited %d: %s", e.Addr, e.Command, e.ExitCode, tail(e.Stderr, 2048))
}

// Run runs cmd and returns its standard output. It stops the command when ctx ends.
func (c *Client) Run(ctx context.Context, cmd string) (string, error) {
	session, err := c.conn.NewSession()
	if err != nil {
		return "", fmt.Errorf("%s: open session for %q: %w", c.target.Addr, cmd, err)
	}
	defer session.Close()
	var stdout, stderr bytes.Buffer
	session.Stdout, session.Stderr = &stdout, &stderr
	done := make(chan error, 1)
	go func() { done <- session.Run(cmd) }()
	select {
	case <-ctx.Done():
		_ = session.Signal(ssh.SIGKILL)
		return stdout.String(), fmt.Errorf("%s: %q: %w", c.target.Addr, cmd, ctx.Err())
	case err = <-done:
	}
	var exit *ssh.ExitError
	if errors.As(err, &exit) {
		return stdout.String(), &CommandError{Addr: c.target.Addr, Command: cmd, ExitCode: exit.ExitStatus(), Stderr: stderr.String()}
	}
	if err != nil {
		return stdout.String(), fmt.Errorf("%s: %q: %w", c.target.Addr, cmd, err)
	}
	return stdout.String(), nil
}

func tail(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}
