package remote

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/kilnhq/terraform-provider-kiln/internal/redact"
	"github.com/kilnhq/terraform-provider-kiln/internal/wait"
)

// Target is an SSH server to run commands on.
type Target struct {
	Addr string // host:port
	User string
	// Auth holds the login methods: KeyAuth, AgentAuth.
	Auth []ssh.AuthMethod
	// HostKey checks the server's key: PinHostKey or KnownHosts. Required.
	HostKey HostKeyCheck
	// Jump, when set, is the bastion the connection goes through.
	Jump *Target
	// ConnectTimeout bounds the retries of a connection that is refused or
	// times out (a host still booting); zero tries once.
	ConnectTimeout time.Duration
	// Secrets are hidden from step errors, as are URL credentials.
	Secrets redact.Secrets
}

// HostKeyCheck verifies a server's host key.
type HostKeyCheck struct {
	callback   ssh.HostKeyCallback
	algorithms []string
}

// PinHostKey accepts exactly key.
func PinHostKey(key ssh.PublicKey) HostKeyCheck {
	return HostKeyCheck{
		callback: func(host string, _ net.Addr, got ssh.PublicKey) error {
			if !bytes.Equal(got.Marshal(), key.Marshal()) {
				return &HostKeyError{Host: host, Got: FormatPublicKey(got), Want: FormatPublicKey(key)}
			}
			return nil
		},
		algorithms: []string{key.Type()},
	}
}

// KnownHosts accepts the keys listed for the host in an OpenSSH known_hosts file.
func KnownHosts(file string) (HostKeyCheck, error) {
	cb, err := knownhosts.New(file)
	if err != nil {
		return HostKeyCheck{}, fmt.Errorf("known_hosts %s: %w", file, err)
	}
	return HostKeyCheck{callback: func(host string, remote net.Addr, key ssh.PublicKey) error {
		err := cb(host, remote, key)
		var ke *knownhosts.KeyError
		if errors.As(err, &ke) {
			he := &HostKeyError{Host: host, Got: FormatPublicKey(key), KnownHosts: file}
			if len(ke.Want) > 0 {
				he.Want = FormatPublicKey(ke.Want[0].Key)
			}
			return he
		}
		return err
	}}, nil
}

// HostKeyError is a host key that is unknown or differs from the pinned one.
type HostKeyError struct {
	Host, Got, Want, KnownHosts string
}

func (e *HostKeyError) Error() string {
	switch {
	case e.Want != "":
		return fmt.Sprintf("host key of %s changed: it presented %s, expected %s", e.Host, e.Got, e.Want)
	default:
		return fmt.Sprintf("host key of %s is unknown (%s is not in %s): refusing to connect", e.Host, e.Got, e.KnownHosts)
	}
}

// KeyAuth logs in with a PEM or OpenSSH private key.
func KeyAuth(privateKey []byte) (ssh.AuthMethod, error) {
	signer, err := ssh.ParsePrivateKey(privateKey)
	var locked *ssh.PassphraseMissingError
	if errors.As(err, &locked) {
		return nil, errors.New("the SSH private key is protected by a passphrase, which Kiln cannot ask for: " +
			"give the key without one, or load it into an agent (ssh-add) and set use_agent")
	}
	if err != nil {
		return nil, fmt.Errorf("parse SSH private key: %w", err)
	}
	return ssh.PublicKeys(signer), nil
}

// SignerAuth logs in with a signer.
func SignerAuth(s ssh.Signer) ssh.AuthMethod { return ssh.PublicKeys(s) }

// AgentAuth logs in through the agent at SSH_AUTH_SOCK.
func AgentAuth() (ssh.AuthMethod, error) {
	sock := os.Getenv("SSH_AUTH_SOCK")
	if sock == "" {
		return nil, errors.New("SSH agent: SSH_AUTH_SOCK is not set")
	}
	conn, err := net.Dial("unix", sock)
	if err != nil {
		return nil, fmt.Errorf("SSH agent at %s: %w", sock, err)
	}
	return ssh.PublicKeysCallback(agent.NewClient(conn).Signers), nil
}

// Client is an SSH connection to one Target.
type Client struct {
	target Target
	conn   *ssh.Client
	jump   *Client
	closed chan struct{}
	once   sync.Once
	lost   atomic.Bool // the server stopped answering keepalives
	// hostKey is the key the server showed, and the check accepted.
	hostKey ssh.PublicKey
}

// HostKey is the host key the server presented (and the check accepted), in
// authorized_keys format: what a record pins for later connections.
func (c *Client) HostKey() string { return FormatPublicKey(c.hostKey) }

// A connection is probed every keepAliveInterval and counts as dead when a
// probe goes unanswered for keepAliveTimeout: long enough for a busy,
// emulated host to work through the data queued ahead of the probe.
var (
	keepAliveInterval = 15 * time.Second
	keepAliveTimeout  = time.Minute
)

// keepAlive closes the connection when the server stops answering. A host that
// reboots or falls off the network does not always reset the TCP connection
// (QEMU's user-mode network, for one, keeps it open), and a command waiting on
// it would wait forever.
func (c *Client) keepAlive() {
	tick := time.NewTicker(keepAliveInterval)
	defer tick.Stop()
	for {
		select {
		case <-c.closed:
			return
		case <-tick.C:
		}
		answered := make(chan error, 1)
		go func() {
			_, _, err := c.conn.SendRequest("keepalive@openssh.com", true, nil)
			answered <- err
		}()
		select {
		case <-c.closed:
			return
		case err := <-answered:
			if err == nil {
				continue
			}
		case <-time.After(keepAliveTimeout):
		}
		c.lost.Store(true)
		c.conn.Close()
		return
	}
}

// ciphers is OpenSSH's order of preference rather than x/crypto's: a host
// without AES instructions (an emulated CPU, a small ARM board) decrypts
// ChaCha20-Poly1305 markedly faster than AES-GCM, and toolchain archives are
// large (75 MB took 8.6 s against 12.8 s into a qemu64 guest).
var ciphers = []string{
	ssh.CipherChaCha20Poly1305, ssh.CipherAES128GCM, ssh.CipherAES256GCM,
	ssh.CipherAES128CTR, ssh.CipherAES192CTR, ssh.CipherAES256CTR,
}

// dialBackoff paces Dial's retries.
var dialBackoff = wait.Backoff{Initial: 500 * time.Millisecond, Max: 5 * time.Second}

// Dial connects to t, retrying refused or timed-out connections within
// t.ConnectTimeout. A host key or authentication failure is not retried.
func Dial(ctx context.Context, t Target) (*Client, error) {
	if t.HostKey.callback == nil {
		return nil, fmt.Errorf("ssh %s: no host key check configured", t.Addr)
	}
	if t.ConnectTimeout <= 0 {
		return dialOnce(ctx, t)
	}
	ctx, cancel := context.WithTimeout(ctx, t.ConnectTimeout)
	defer cancel()
	var c *Client
	err := wait.Until(ctx, "SSH at "+t.Addr, dialBackoff, func(ctx context.Context) (bool, error) {
		var err error
		c, err = dialOnce(ctx, t)
		var hk *HostKeyError
		switch {
		case err == nil:
			return true, nil
		case errors.As(err, &hk) || strings.Contains(err.Error(), "unable to authenticate"):
			return false, err
		}
		return false, wait.Transient(err)
	})
	return c, err
}

func dialOnce(ctx context.Context, t Target) (*Client, error) {
	var (
		raw  net.Conn
		jump *Client
		err  error
	)
	if t.Jump != nil {
		if jump, err = dialOnce(ctx, *t.Jump); err != nil {
			return nil, fmt.Errorf("jump host: %w", err)
		}
		raw, err = jump.conn.DialContext(ctx, "tcp", t.Addr)
	} else {
		var d net.Dialer
		raw, err = d.DialContext(ctx, "tcp", t.Addr)
	}
	if err != nil {
		if jump != nil {
			jump.Close()
		}
		return nil, fmt.Errorf("ssh %s: %w", t.Addr, err)
	}
	var seen ssh.PublicKey
	config := &ssh.ClientConfig{
		Config: ssh.Config{Ciphers: ciphers},
		User:   t.User,
		Auth:   t.Auth,
		HostKeyCallback: func(host string, remote net.Addr, key ssh.PublicKey) error {
			err := t.HostKey.callback(host, remote, key)
			if err == nil {
				seen = key
			}
			return err
		},
		HostKeyAlgorithms: t.HostKey.algorithms,
		Timeout:           30 * time.Second,
	}
	_ = raw.SetDeadline(time.Now().Add(config.Timeout))
	c, chans, reqs, err := ssh.NewClientConn(raw, t.Addr, config)
	if err != nil {
		raw.Close()
		if jump != nil {
			jump.Close()
		}
		return nil, fmt.Errorf("ssh %s@%s: %w", t.User, t.Addr, err)
	}
	_ = raw.SetDeadline(time.Time{})
	client := &Client{target: t, conn: ssh.NewClient(c, chans, reqs), jump: jump, closed: make(chan struct{}), hostKey: seen}
	go client.keepAlive()
	return client, nil
}

// Close closes the connection (and the jump host's).
func (c *Client) Close() error {
	c.once.Do(func() { close(c.closed) })
	err := c.conn.Close()
	if c.jump != nil {
		c.jump.Close()
	}
	return err
}

// Host names the target in errors and logs.
func (c *Client) Host() string { return c.target.Addr }

// StepError is a command that failed on a host during a named step. Its
// message hides the target's secrets and URL credentials: commands carry
// configuration values, and stderr often repeats them.
type StepError struct {
	Host, Step, Command string
	ExitCode            int // -1 when the command did not exit (connection lost, timeout)
	Stderr              string
	Err                 error
	secrets             redact.Secrets
}

func (e *StepError) Error() string { return e.secrets.Text(e.message()) }

func (e *StepError) message() string {
	msg := fmt.Sprintf("%s: step %q: command %q", e.Host, e.Step, shorten(e.Command, 200))
	if e.ExitCode >= 0 {
		msg += fmt.Sprintf(" exited %d", e.ExitCode)
	} else if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	if s := tail(e.Stderr, 1024); s != "" {
		msg += ": " + s
	}
	return msg
}

func (e *StepError) Unwrap() error { return e.Err }

// Run runs cmd as root (through sudo -n for other users) and returns its
// standard output. The command is killed when ctx ends.
func (c *Client) Run(ctx context.Context, step, cmd string) (string, error) {
	return c.RunInput(ctx, step, cmd, nil)
}

// RunInput is Run with stdin fed to the command.
func (c *Client) RunInput(ctx context.Context, step, cmd string, stdin io.Reader) (string, error) {
	full := cmd
	if c.target.User != "root" {
		full = "sudo -n -- sh -c " + ShellQuote(cmd)
	}
	return c.run(ctx, step, cmd, full, stdin)
}

// RunAsUser runs cmd as the login user, without sudo: what that user sees
// (limits of its session, its environment).
func (c *Client) RunAsUser(ctx context.Context, step, cmd string) (string, error) {
	return c.run(ctx, step, cmd, cmd, nil)
}

// Stream runs cmd as the login user, without sudo, with stdin fed to it and
// its standard output written to stdout as it comes (a large result, hashed
// in flight). It returns the standard error. When ctx ends, the command is
// signalled and the session closed, so the command's standard input ends.
func (c *Client) Stream(ctx context.Context, step, cmd string, stdin io.Reader, stdout io.Writer) (string, error) {
	var stderr bytes.Buffer
	err := c.session(ctx, step, cmd, cmd, stdin, stdout, &stderr)
	return stderr.String(), err
}

// run runs full; errors name cmd, the command as the caller wrote it.
func (c *Client) run(ctx context.Context, step, cmd, full string, stdin io.Reader) (string, error) {
	var stdout, stderr bytes.Buffer
	err := c.session(ctx, step, cmd, full, stdin, &stdout, &stderr)
	return stdout.String(), err
}

// session runs full in a session of its own, its output going to stdout and
// stderr.
func (c *Client) session(ctx context.Context, step, cmd, full string, stdin io.Reader, stdout io.Writer, stderr *bytes.Buffer) error {
	session, err := c.conn.NewSession()
	if err != nil {
		return &StepError{Host: c.Host(), Step: step, Command: cmd, secrets: c.target.Secrets, ExitCode: -1, Err: err}
	}
	defer session.Close()
	session.Stdout, session.Stderr, session.Stdin = stdout, stderr, stdin
	done := make(chan error, 1)
	go func() { done <- session.Run(full) }()
	select {
	case <-ctx.Done():
		_ = session.Signal(ssh.SIGKILL)
		return &StepError{Host: c.Host(), Step: step, Command: cmd, secrets: c.target.Secrets, ExitCode: -1, Stderr: stderr.String(), Err: ctx.Err()}
	case err = <-done:
	}
	var exit *ssh.ExitError
	switch {
	case errors.As(err, &exit):
		return &StepError{Host: c.Host(), Step: step, Command: cmd, secrets: c.target.Secrets, ExitCode: exit.ExitStatus(), Stderr: stderr.String(), Err: err}
	case err != nil && c.lost.Load():
		err = fmt.Errorf("connection lost: no answer within %s (host down or rebooting?): %w", keepAliveTimeout, err)
		return &StepError{Host: c.Host(), Step: step, Command: cmd, secrets: c.target.Secrets, ExitCode: -1, Stderr: stderr.String(), Err: err}
	case err != nil:
		return &StepError{Host: c.Host(), Step: step, Command: cmd, secrets: c.target.Secrets, ExitCode: -1, Stderr: stderr.String(), Err: err}
	}
	return nil
}

// BashCommand is the command line that runs script with bash, its positional
// parameters set to args ($0 is "kiln"): values reach the script as they are,
// never spliced into its text.
func BashCommand(script string, args ...string) string {
	var b strings.Builder
	b.WriteString("bash -c " + ShellQuote(script) + " kiln")
	for _, a := range args {
		b.WriteString(" " + ShellQuote(a))
	}
	return b.String()
}

// ShellQuote quotes s for a POSIX shell.
func ShellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func tail(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

func shorten(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
