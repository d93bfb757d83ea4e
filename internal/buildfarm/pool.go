// Package buildfarm is Kiln's build farm: hosts registered in pools (an
// unprivileged build user with its own workspace and caches, the pool's key
// authorized for it), builds run on them in slots (a lock per slot on the
// host), and their outputs pushed to a registry with internal/oci. Pools and
// builds are recorded in a control namespace (labelled Secrets), so builds,
// other configurations and tools find them through the cluster.
package buildfarm

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/kilnhq/terraform-provider-kiln/internal/delivery/label"
	"github.com/kilnhq/terraform-provider-kiln/internal/hostprep"
	"github.com/kilnhq/terraform-provider-kiln/internal/oci"
	"github.com/kilnhq/terraform-provider-kiln/internal/redact"
	"github.com/kilnhq/terraform-provider-kiln/internal/remote"
)

// DefaultBuildUser is the build user of a pool that names none.
const DefaultBuildUser = "kiln-build"

// Farm is the build farm of one control namespace.
type Farm struct {
	Control  string // the control namespace Records keeps
	Records  Store
	Projects Projects // nil when there is no cluster for projects
	Registry oci.Registry
	// Log receives progress messages; nil discards them.
	Log *slog.Logger
}

func (f *Farm) log(ctx context.Context, msg string, args ...any) {
	if f.Log != nil {
		f.Log.InfoContext(ctx, msg, args...)
	}
}

// PoolSpec is a pool as declared.
type PoolSpec struct {
	Name      string
	Labels    map[string]string
	BuildUser string // DefaultBuildUser when empty
	Workspace string // the build user's ~/workspace when empty
	Hosts     []HostSpec
}

// HostSpec is a host of a pool: how an administrator reaches it (root, or a
// user with sudo), and how many builds it runs at once.
type HostSpec struct {
	Admin       remote.Target
	Concurrency int // 1 when 0
}

// Pool is a registered pool, as its record holds it.
type Pool struct {
	Name      string            `json:"name"`
	Labels    map[string]string `json:"labels"`
	BuildUser string            `json:"build_user"`
	// PrivateKey is the pool's key (OpenSSH PEM), authorized for BuildUser on
	// every host: builds and probes log in with it.
	PrivateKey string     `json:"private_key"`
	Hosts      []PoolHost `json:"hosts"`
}

// PoolHost is a registered host.
type PoolHost struct {
	Addr        string `json:"addr"`     // host:port
	HostKey     string `json:"host_key"` // pinned, authorized_keys format
	Concurrency int    `json:"concurrency"`
	Workspace   string `json:"workspace"`
	OS          string `json:"os"`
	Arch        string `json:"arch"`
	// GoVersions are the toolchains kiln_go_host installed there, intact.
	GoVersions []string `json:"go_versions"`
	GoRoot     string   `json:"go_root"` // GoRoot/<version> is a toolchain
}

// HostStatus is a registered host as a probe finds it.
type HostStatus struct {
	Ready      bool
	Problem    string // why it is not ready
	OS, Arch   string
	GoVersions []string
}

func poolRecordName(name string) string { return "kiln-pool-" + name }

// ValidatePool checks what a plan can: names, concurrency.
func ValidatePool(spec PoolSpec) error {
	var errs []error
	if spec.Name == "" {
		errs = append(errs, errors.New("name is required"))
	}
	if u := spec.BuildUser; u != "" && !userName(u) {
		errs = append(errs, fmt.Errorf("build_user %q is not a valid user name", u))
	}
	if w := spec.Workspace; w != "" && hostprep.CheckRoot(w) != nil {
		errs = append(errs, fmt.Errorf("workspace %q: want an absolute, clean path", w))
	}
	if len(spec.Hosts) == 0 {
		errs = append(errs, errors.New("a pool needs at least one host"))
	}
	for i, h := range spec.Hosts {
		if h.Concurrency < 0 {
			errs = append(errs, fmt.Errorf("host %d: concurrency %d: want 1 or more", i+1, h.Concurrency))
		}
	}
	return errors.Join(errs...)
}

var userPattern = regexp.MustCompile(`^[a-z_][a-z0-9_-]{0,31}$`)

func userName(s string) bool { return userPattern.MatchString(s) }

// Register registers spec's hosts: on each, the build user with its
// workspace and caches and the pool's key (kept from the pool's record, or
// new), then the host's platform and toolchains; then it writes the pool's
// record. Registering again repairs what changed.
func (f *Farm) Register(ctx context.Context, spec PoolSpec) (Pool, error) {
	if err := ValidatePool(spec); err != nil {
		return Pool{}, err
	}
	pool := Pool{Name: spec.Name, Labels: spec.Labels, BuildUser: spec.BuildUser}
	if pool.BuildUser == "" {
		pool.BuildUser = DefaultBuildUser
	}
	old, err := f.ReadPool(ctx, spec.Name)
	switch {
	case err == nil:
		pool.PrivateKey = old.PrivateKey
	case !errors.Is(err, ErrNotFound):
		return Pool{}, err
	}
	if pool.PrivateKey == "" {
		if pool.PrivateKey, err = newPoolKey(); err != nil {
			return Pool{}, err
		}
	}
	public, err := publicKey(pool.PrivateKey)
	if err != nil {
		return Pool{}, err
	}
	pool.Hosts = make([]PoolHost, len(spec.Hosts))
	err = eachHost(len(spec.Hosts), func(i int) error {
		h, err := f.registerHost(ctx, spec.Hosts[i], pool.BuildUser, spec.Workspace, public)
		pool.Hosts[i] = h
		return err
	})
	if err != nil {
		return Pool{}, err
	}
	if err := f.writePool(ctx, pool); err != nil {
		return Pool{}, err
	}
	return pool, nil
}

func (f *Farm) registerHost(ctx context.Context, h HostSpec, user, workspace, public string) (PoolHost, error) {
	c, err := remote.Dial(ctx, h.Admin)
	if err != nil {
		return PoolHost{}, err
	}
	defer c.Close()
	f.log(ctx, "register build host", "host", c.Host(), "user", user)
	out, err := c.Run(ctx, "register the build user", remote.BashCommand(poolHostScript, "register", user, workspace, public))
	if err != nil {
		return PoolHost{}, err
	}
	reg := parseKeyValues(out)
	facts, err := hostprep.ReadFactsOn(ctx, c, hostprep.Spec{})
	if err != nil {
		return PoolHost{}, err
	}
	return PoolHost{
		Addr: h.Admin.Addr, HostKey: c.HostKey(), Concurrency: max(h.Concurrency, 1),
		Workspace: reg["workspace"], OS: facts.GOOS, Arch: facts.Arch,
		GoVersions: facts.IntactVersions(), GoRoot: hostprep.DefaultRoot,
	}, nil
}

// Deregister withdraws the pool's key from its hosts (the build user, its
// workspace and its warm caches stay) and deletes the pool's record. A host
// that cannot be reached is reported in the error; the record is deleted
// anyway.
func (f *Farm) Deregister(ctx context.Context, pool Pool, admins []remote.Target) error {
	errs := make([]error, len(admins))
	_ = eachHost(len(admins), func(i int) error {
		c, err := remote.Dial(ctx, admins[i])
		if err == nil {
			_, err = c.Run(ctx, "withdraw the pool key", remote.BashCommand(poolHostScript, "forget", pool.BuildUser, "", ""))
			c.Close()
		}
		errs[i] = err
		return nil
	})
	errs = append(errs, f.Records.Delete(ctx, poolRecordName(pool.Name)))
	return errors.Join(errs...)
}

// ReadPool reads a pool's record; ErrNotFound when there is none.
func (f *Farm) ReadPool(ctx context.Context, name string) (Pool, error) {
	r, err := f.Records.Get(ctx, poolRecordName(name))
	if err != nil {
		return Pool{}, err
	}
	return decodePool(r)
}

func decodePool(r record) (Pool, error) {
	if r.Labels[label.Kind] != kindPool {
		return Pool{}, fmt.Errorf("record %s is not a pool record", r.Name)
	}
	var p Pool
	if err := json.Unmarshal(r.Data, &p); err != nil {
		return Pool{}, fmt.Errorf("pool record %s: %w", r.Name, err)
	}
	if p.Name != r.Labels[labelPool] {
		return Pool{}, fmt.Errorf("pool record %s names pool %q", r.Name, p.Name)
	}
	return p, nil
}

func (f *Farm) writePool(ctx context.Context, p Pool) error {
	data, err := json.Marshal(p)
	if err != nil {
		return err
	}
	return f.Records.Put(ctx, record{
		Name:   poolRecordName(p.Name),
		Labels: map[string]string{label.Kind: kindPool, labelPool: p.Name},
		Data:   data,
	})
}

// pools lists the pools of the control namespace.
func (f *Farm) pools(ctx context.Context) ([]Pool, error) {
	recs, err := f.Records.List(ctx, map[string]string{label.Kind: kindPool})
	if err != nil {
		return nil, err
	}
	var out []Pool
	for _, r := range recs {
		if p, err := decodePool(r); err == nil {
			out = append(out, p)
		}
	}
	return out, nil
}

// probeTimeout bounds a probe's connection to one host.
const probeTimeout = 30 * time.Second

// Probe checks each host of pool the way a build reaches it: the build user,
// logged in with the pool's key, the host key pinned; then which of the
// recorded toolchains are still intact. A host is ready when all are.
func (f *Farm) Probe(ctx context.Context, pool Pool) []HostStatus {
	out := make([]HostStatus, len(pool.Hosts))
	_ = eachHost(len(pool.Hosts), func(i int) error {
		out[i] = f.probeHost(ctx, pool, pool.Hosts[i])
		return nil
	})
	return out
}

func (f *Farm) probeHost(ctx context.Context, pool Pool, h PoolHost) HostStatus {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	c, err := dialBuildUser(ctx, pool, h)
	if err != nil {
		return HostStatus{Problem: err.Error()}
	}
	defer c.Close()
	facts, err := hostprep.ReadFactsOn(ctx, c, hostprep.Spec{Root: h.GoRoot})
	if err != nil {
		return HostStatus{Problem: err.Error()}
	}
	s := HostStatus{Ready: true, OS: facts.GOOS, Arch: facts.Arch, GoVersions: facts.IntactVersions()}
	for _, v := range h.GoVersions {
		if !slices.Contains(s.GoVersions, v) {
			s.Ready = false
			s.Problem = fmt.Sprintf("go%s was registered but is no longer intact on the host", v)
		}
	}
	return s
}

// dialBuildUser connects to h as pool's build user.
func dialBuildUser(ctx context.Context, pool Pool, h PoolHost) (*remote.Client, error) {
	auth, err := remote.KeyAuth([]byte(pool.PrivateKey))
	if err != nil {
		return nil, fmt.Errorf("pool %s: key: %w", pool.Name, err)
	}
	hostKey, err := remote.ParsePublicKey(h.HostKey)
	if err != nil {
		return nil, fmt.Errorf("pool %s: host key of %s: %w", pool.Name, h.Addr, err)
	}
	var secrets redact.Secrets
	secrets.Add(pool.PrivateKey)
	return remote.Dial(ctx, remote.Target{Addr: h.Addr, User: pool.BuildUser, Auth: []ssh.AuthMethod{auth},
		HostKey: remote.PinHostKey(hostKey), Secrets: secrets})
}

// newPoolKey generates a pool key: an ed25519 key in OpenSSH PEM.
func newPoolKey() (string, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", err
	}
	block, err := ssh.MarshalPrivateKey(priv, "kiln build pool")
	if err != nil {
		return "", err
	}
	return string(pem.EncodeToMemory(block)), nil
}

func publicKey(private string) (string, error) {
	signer, err := ssh.ParsePrivateKey([]byte(private))
	if err != nil {
		return "", fmt.Errorf("pool key: %w", err)
	}
	return remote.FormatPublicKey(signer.PublicKey()), nil
}

// eachHost runs fn for 0..n-1 at once and joins the errors.
func eachHost(n int, fn func(i int) error) error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = fn(i)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// parseKeyValues reads "key=value" lines; a repeated key keeps the last.
func parseKeyValues(out string) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			m[k] = v
		}
	}
	return m
}
