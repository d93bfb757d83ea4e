// Package vsphere manages Go build VMs on vCenter or ESXi through govmomi: clones
// from templates, reconfiguration, power state, guest customization, and the
// inventory look-ups the provider's data sources need.
package vsphere

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/vmware/govmomi/fault"
	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/session"
	"github.com/vmware/govmomi/session/keepalive"
	"github.com/vmware/govmomi/vapi/rest"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// ErrNotFound reports that an inventory object does not exist.
var ErrNotFound = errors.New("not found")

// KeepAliveInterval is how often an idle session is refreshed.
const KeepAliveInterval = 5 * time.Minute

// Config says where and as whom to log in.
type Config struct {
	// Server is a host name, host:port, or an https URL of the SDK endpoint.
	Server             string
	User               string
	Password           string
	AllowUnverifiedSSL bool
	// Datacenter is the default datacenter for inventory paths; empty means the
	// only datacenter there is.
	Datacenter string
}

// Client is one lazily opened vSphere session, shared by every resource of a
// provider instance and kept alive while idle. It logs in again when the session
// was lost (a vCenter restart, an expired session).
type Client struct {
	// Log receives progress messages; nil discards them.
	Log *slog.Logger

	cfg Config
	mu  sync.Mutex
	vim *vim25.Client
	ka  *keepalive.HandlerSOAP
	// rest is the vAPI (REST) session of the same user, for content
	// libraries; opened on first use and dropped with the SOAP session.
	rest *rest.Client
}

// NewClient returns a client for cfg; nothing is dialled until first use.
func NewClient(cfg Config) *Client {
	return &Client{cfg: cfg}
}

// Server is the server the client talks to, as configured.
func (c *Client) Server() string { return c.cfg.Server }

func (c *Client) log(ctx context.Context, msg string, args ...any) {
	if c.Log != nil {
		c.Log.InfoContext(ctx, msg, args...)
	}
}

// sdkURL turns the configured server into the SDK endpoint URL.
func sdkURL(server string) (*url.URL, error) {
	if server == "" {
		return nil, errors.New("no vSphere server configured: set the vsphere block's server or VSPHERE_SERVER")
	}
	raw := server
	if !strings.Contains(raw, "://") {
		raw = "https://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("vSphere server %q: %w", server, err)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = vim25.Path
	}
	return u, nil
}

// connect returns a logged-in client, logging in (again) as needed.
func (c *Client) connect(ctx context.Context) (*vim25.Client, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.vim != nil {
		if us, err := session.NewManager(c.vim).UserSession(ctx); err == nil && us != nil {
			return c.vim, nil
		}
		c.dropLocked(ctx)
	}
	u, err := sdkURL(c.cfg.Server)
	if err != nil {
		return nil, err
	}
	sc := soap.NewClient(u, c.cfg.AllowUnverifiedSSL)
	vc, err := vim25.NewClient(ctx, sc)
	if err != nil {
		if soap.IsCertificateUntrusted(err) {
			return nil, fmt.Errorf("connect to vSphere at %s: the server's certificate does not verify "+
				"(set allow_unverified_ssl or VSPHERE_ALLOW_UNVERIFIED_SSL to accept it): %w", u.Host, err)
		}
		return nil, fmt.Errorf("connect to vSphere at %s: %w", u.Host, err)
	}
	ka := keepalive.NewHandlerSOAP(vc.RoundTripper, KeepAliveInterval, nil)
	vc.RoundTripper = ka
	if err := session.NewManager(vc).Login(ctx, url.UserPassword(c.cfg.User, c.cfg.Password)); err != nil {
		if fault.Is(err, &types.InvalidLogin{}) {
			return nil, fmt.Errorf("log in to vSphere at %s as %q: user name or password rejected", u.Host, c.cfg.User)
		}
		return nil, fmt.Errorf("log in to vSphere at %s as %q: %w", u.Host, c.cfg.User, err)
	}
	c.log(ctx, "vSphere session opened", "server", u.Host, "user", c.cfg.User)
	c.vim, c.ka = vc, ka
	return vc, nil
}

func (c *Client) dropLocked(ctx context.Context) {
	if c.vim == nil {
		return
	}
	if c.rest != nil {
		_ = c.rest.Logout(ctx)
		c.rest = nil
	}
	_ = session.NewManager(c.vim).Logout(ctx)
	if c.ka != nil {
		c.ka.Stop()
	}
	c.vim, c.ka = nil, nil
}

// restClient returns the vAPI client, logged in over the SOAP session's
// connection with the same credentials: vCenter's REST endpoints (content
// libraries) take a session of their own.
func (c *Client) restClient(ctx context.Context) (*rest.Client, error) {
	vc, err := c.connect(ctx)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.rest != nil {
		if s, err := c.rest.Session(ctx); err == nil && s != nil {
			return c.rest, nil
		}
		c.rest = nil
	}
	rc := rest.NewClient(vc)
	if err := rc.Login(ctx, url.UserPassword(c.cfg.User, c.cfg.Password)); err != nil {
		return nil, fmt.Errorf("log in to the vSphere REST API at %s as %q: %w", c.cfg.Server, c.cfg.User, err)
	}
	c.rest = rc
	return rc, nil
}

// Close logs out, if logged in.
func (c *Client) Close(ctx context.Context) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dropLocked(ctx)
}

// Ping logs in (if needed) and checks that the session is alive.
func (c *Client) Ping(ctx context.Context) error {
	_, err := c.connect(ctx)
	return err
}

// finder returns a finder scoped to the datacenter dc (or the configured default,
// or the only one).
func (c *Client) finder(ctx context.Context, dc string) (*vim25.Client, *find.Finder, *object.Datacenter, error) {
	vc, err := c.connect(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	f := find.NewFinder(vc, true)
	if dc == "" {
		dc = c.cfg.Datacenter
	}
	var d *object.Datacenter
	if dc == "" {
		d, err = f.DefaultDatacenter(ctx)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("find default datacenter (set datacenter when there are several): %w", notFound(err))
		}
	} else {
		d, err = f.Datacenter(ctx, dc)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("find datacenter %q: %w", dc, notFound(err))
		}
	}
	f.SetDatacenter(d)
	return vc, f, d, nil
}

// notFound marks finder "not found" errors with ErrNotFound, keeping the text
// that names what was looked up.
func notFound(err error) error {
	var nf *find.NotFoundError
	if errors.As(err, &nf) {
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	return err
}

// waitTask waits for a task and names the step on failure.
func waitTask(ctx context.Context, task *object.Task, step string) error {
	if _, err := task.WaitForResult(ctx); err != nil {
		return fmt.Errorf("%s: %w", step, err)
	}
	return nil
}
