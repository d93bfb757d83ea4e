// Package libvirt manages Go build VMs on a libvirt host through go-libvirt's RPC
// client, with every XML document built and read through libvirtxml.
package libvirt

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"sync"
	"syscall"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"

	"github.com/kilnhq/terraform-provider-kiln/internal/wait"
)

// DefaultURI is used when neither the configuration nor LIBVIRT_DEFAULT_URI names one.
const DefaultURI = "qemu:///system"

// RedialTimeout bounds how long a call waits for libvirtd to accept connections
// again; a restart (by an operator, a package upgrade) takes seconds.
const RedialTimeout = 30 * time.Second

// readAttempts bounds how often a read is repeated on a new connection.
const readAttempts = 3

// ErrNotFound reports that a domain does not exist.
var ErrNotFound = errors.New("not found")

// Client is a lazily opened connection to one libvirt daemon that rides through
// a daemon restart: it redials a lost connection, waiting up to RedialTimeout
// for libvirtd to come back, and repeats a read the restart cut. A change the
// restart cut is not repeated, since it may have taken effect.
type Client struct {
	// Log receives progress messages; nil discards them.
	Log *slog.Logger

	uri string
	// dialOnce opens one connection; the unit tests put a fake daemon here.
	dialOnce      func() (*golibvirt.Libvirt, error)
	redialTimeout time.Duration

	mu   sync.Mutex
	conn *golibvirt.Libvirt
}

// NewClient returns a client for uri; nothing is dialled until first use.
func NewClient(uri string) *Client {
	if uri == "" {
		uri = DefaultURI
	}
	c := &Client{uri: uri, redialTimeout: RedialTimeout}
	c.dialOnce = c.dialURI
	return c
}

// URI is the libvirt URI the client talks to.
func (c *Client) URI() string { return c.uri }

// Local reports whether the URI names libvirtd on this machine: a user-mode
// interface's SSH port is forwarded on the libvirt host's 127.0.0.1, which only
// then is the 127.0.0.1 Kiln picks a free port on and connects to.
func (c *Client) Local() bool {
	u, err := url.Parse(c.uri)
	if err != nil {
		return false
	}
	switch u.Hostname() {
	case "", "localhost", "127.0.0.1", "::1":
		return true
	}
	return false
}

func (c *Client) log(ctx context.Context, msg string, args ...any) {
	if c.Log != nil {
		c.Log.InfoContext(ctx, msg, args...)
	}
}

// connect returns a live connection, dialling or redialling as needed.
func (c *Client) connect(ctx context.Context) (*golibvirt.Libvirt, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn != nil && c.conn.IsConnected() {
		return c.conn, nil
	}
	conn, err := c.dial(ctx)
	if err != nil {
		return nil, err
	}
	c.conn = conn
	return conn, nil
}

// dial opens a new connection, retrying while nothing answers at the URI
// (libvirtd restarting is away for a moment), for up to the redial timeout.
func (c *Client) dial(ctx context.Context) (*golibvirt.Libvirt, error) {
	ctx, cancel := context.WithTimeout(ctx, c.redialTimeout)
	defer cancel()
	var conn *golibvirt.Libvirt
	err := wait.Until(ctx, "libvirtd to accept a connection", wait.Default, func(context.Context) (bool, error) {
		var err error
		conn, err = c.dialOnce()
		if disconnected(err) {
			return false, wait.Transient(err)
		}
		return err == nil, err
	})
	if err != nil {
		return nil, fmt.Errorf("connect to libvirt at %s (is libvirtd running?): %w", c.uri, err)
	}
	return conn, nil
}

func (c *Client) dialURI() (*golibvirt.Libvirt, error) {
	u, err := url.Parse(c.uri)
	if err != nil {
		return nil, fmt.Errorf("libvirt URI %q: %w", c.uri, err)
	}
	return golibvirt.ConnectToURI(u)
}

// read runs fn, which only reads, on a live connection, and runs it again on a
// new one when the connection was lost under it: repeating a read is harmless.
func (c *Client) read(ctx context.Context, fn func(*golibvirt.Libvirt) error) error {
	for attempt := 1; ; attempt++ {
		conn, err := c.connect(ctx)
		if err != nil {
			return err
		}
		err = fn(conn)
		if !disconnected(err) {
			return err
		}
		c.drop(conn)
		if attempt == readAttempts {
			return err
		}
		c.log(ctx, "lost the connection to libvirtd; reading again on a new one", "uri", c.uri, "error", err.Error())
	}
}

// change runs fn, which changes something, once on a live connection. When the
// connection is lost under it, the change may or may not have taken effect, so
// it is not repeated; the next call redials.
func (c *Client) change(ctx context.Context, fn func(*golibvirt.Libvirt) error) error {
	conn, err := c.connect(ctx)
	if err != nil {
		return err
	}
	err = fn(conn)
	if disconnected(err) {
		c.drop(conn)
	}
	return err
}

// drop forgets conn if it is still the client's connection. go-libvirt may
// fail a call before it marks its connection closed, so connect alone could
// hand the dead one out again.
func (c *Client) drop(conn *golibvirt.Libvirt) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn == conn {
		c.conn = nil
		_ = conn.Disconnect()
	}
}

// disconnected reports whether err says that libvirtd was not there or went
// away (no socket, refused, connection closed mid-call) rather than that
// libvirt answered with an error.
func disconnected(err error) bool {
	var lerr golibvirt.Error
	if err == nil || errors.As(err, &lerr) {
		return false
	}
	for _, target := range []error{
		golibvirt.ErrInterrupted, syscall.ENOENT, syscall.ECONNREFUSED, syscall.ECONNRESET,
		syscall.EPIPE, syscall.EINVAL, io.EOF, io.ErrUnexpectedEOF, io.ErrClosedPipe, net.ErrClosed,
	} {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}

// Close drops the connection, if any.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn == nil {
		return nil
	}
	err := c.conn.Disconnect()
	c.conn = nil
	return err
}

// Ping checks that the daemon answers.
func (c *Client) Ping(ctx context.Context) error {
	return c.read(ctx, func(conn *golibvirt.Libvirt) error {
		if _, err := conn.ConnectGetLibVersion(); err != nil {
			return fmt.Errorf("libvirt at %s: %w", c.uri, err)
		}
		return nil
	})
}

func isErrorCode(err error, code golibvirt.ErrorNumber) bool {
	var lerr golibvirt.Error
	return errors.As(err, &lerr) && lerr.Code == uint32(code)
}
