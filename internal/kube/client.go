// Package kube is Kiln's access to a Kubernetes cluster: connection set-up,
// server-side apply with field manager "kiln", field ownership and drift of the
// fields kiln owns, and rollout. It has no Terraform types.
package kube

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"
)

// FieldManager is the server-side apply field manager of everything kiln applies.
const FieldManager = "kiln"

// ErrNotFound reports that an object kiln looked for does not exist.
var ErrNotFound = errors.New("not found")

// Config says how to reach the cluster: a kubeconfig (path and context), or a
// host with a token or client certificate. An empty Config uses the default
// kubeconfig loading rules (KUBECONFIG, then ~/.kube/config).
type Config struct {
	Kubeconfig string
	Context    string
	Host       string
	Token      string
	CACert     string // PEM
	ClientCert string // PEM
	ClientKey  string // PEM
}

// Client is a lazily opened connection to one cluster.
type Client struct {
	// Log receives progress messages; nil discards them.
	Log *slog.Logger

	cfg     Config
	mu      sync.Mutex
	typed   kubernetes.Interface
	dynamic dynamic.Interface
	mapper  meta.RESTMapper
	reset   func()
}

// NewClient returns a client for cfg; nothing is dialled until first use. The
// schema drift detection needs is parsed in the background meanwhile.
func NewClient(cfg Config) *Client {
	go builtinTypes()
	return &Client{cfg: cfg}
}

func (c *Client) log(ctx context.Context, msg string, args ...any) {
	if c.Log != nil {
		c.Log.InfoContext(ctx, msg, args...)
	}
}

// Describe names the cluster for error messages.
func (c *Client) Describe() string {
	switch {
	case c.cfg.Host != "":
		return c.cfg.Host
	case c.cfg.Kubeconfig != "":
		return "kubeconfig " + c.cfg.Kubeconfig
	default:
		return "the default kubeconfig"
	}
}

func (c *Client) restConfig() (*rest.Config, error) {
	var rc *rest.Config
	if c.cfg.Host != "" {
		rc = &rest.Config{
			Host:        c.cfg.Host,
			BearerToken: c.cfg.Token,
			TLSClientConfig: rest.TLSClientConfig{
				CAData:   []byte(c.cfg.CACert),
				CertData: []byte(c.cfg.ClientCert),
				KeyData:  []byte(c.cfg.ClientKey),
			},
		}
	} else {
		rules := clientcmd.NewDefaultClientConfigLoadingRules()
		if c.cfg.Kubeconfig != "" {
			rules.ExplicitPath = c.cfg.Kubeconfig
		}
		overrides := &clientcmd.ConfigOverrides{CurrentContext: c.cfg.Context}
		var err error
		rc, err = clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides).ClientConfig()
		if err != nil {
			return nil, fmt.Errorf("load kubeconfig: %w", err)
		}
	}
	rc.QPS, rc.Burst = 100, 200
	rc.UserAgent = "terraform-provider-kiln"
	return rc, nil
}

func (c *Client) connect() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.typed != nil {
		return nil
	}
	rc, err := c.restConfig()
	if err != nil {
		return err
	}
	typed, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return fmt.Errorf("kubernetes client for %s: %w", c.Describe(), err)
	}
	dyn, err := dynamic.NewForConfig(rc)
	if err != nil {
		return fmt.Errorf("dynamic client for %s: %w", c.Describe(), err)
	}
	cached := memory.NewMemCacheClient(typed.Discovery())
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(cached)
	c.typed, c.dynamic, c.mapper, c.reset = typed, dyn, mapper, mapper.Reset
	return nil
}

// Typed returns the typed clientset.
func (c *Client) Typed() (kubernetes.Interface, error) {
	if err := c.connect(); err != nil {
		return nil, err
	}
	return c.typed, nil
}
