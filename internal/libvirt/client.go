// Package libvirt manages Go build VMs on a libvirt host through go-libvirt's RPC
// client, with every XML document built and read through libvirtxml.
package libvirt

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sync"

	golibvirt "github.com/digitalocean/go-libvirt"
)

// DefaultURI is used when neither the configuration nor LIBVIRT_DEFAULT_URI names one.
const DefaultURI = "qemu:///system"

// ErrNotFound reports that a domain does not exist.
var ErrNotFound = errors.New("not found")

// Client is a lazily opened connection to one libvirt daemon. It reconnects when
// the daemon went away since the last call (libvirtd restarted, for instance).
type Client struct {
	// Log receives progress messages; nil discards them.
	Log Logger

	uri  string
	mu   sync.Mutex
	conn *golibvirt.Libvirt
}

// NewClient returns a client for uri; nothing is dialled until first use.
func NewClient(uri string) *Client {
	if uri == "" {
		uri = DefaultURI
	}
	return &Client{uri: uri}
}

// URI is the libvirt URI the client talks to.
func (c *Client) URI() string { return c.uri }

// connect returns a live connection, dialling or redialling as needed.
func (c *Client) connect(ctx context.Context) (*golibvirt.Libvirt, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn != nil && c.conn.IsConnected() {
		return c.conn, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	conn, err := c.dial()
	if err != nil {
		return nil, err
	}
	c.conn = conn
	return conn, nil
}

// dial opens a new connection to the daemon.
func (c *Client) dial() (*golibvirt.Libvirt, error) {
	u, err := url.Parse(c.uri)
	if err != nil {
		return nil, fmt.Errorf("libvirt URI %q: %w", c.uri, err)
	}
	conn, err := golibvirt.ConnectToURI(u)
	if err != nil {
		return nil, fmt.Errorf("connect to libvirt at %s (is libvirtd running?): %w", c.uri, err)
	}
	return conn, nil
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
	conn, err := c.connect(ctx)
	if err != nil {
		return err
	}
	if _, err := conn.ConnectGetLibVersion(); err != nil {
		return fmt.Errorf("libvirt at %s: %w", c.uri, err)
	}
	return nil
}

func isErrorCode(err error, code golibvirt.ErrorNumber) bool {
	var lerr golibvirt.Error
	return errors.As(err, &lerr) && lerr.Code == uint32(code)
}
