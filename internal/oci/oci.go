// Package oci is Kiln's one store for build outputs: Go images assembled the
// way ko does (one layer holding the binary on a base image, reproducible by
// construction, no Docker daemon) and files pushed as OCI artifacts, in a
// registry reached with go-containerregistry; and the one HEAD that tells
// whether an output is still there.
package oci

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// Registry is a registry outputs are pushed to.
type Registry struct {
	Host     string // "registry.example.com" or "127.0.0.1:5000"
	Username string // basic auth; empty for anonymous access
	Password string
	// Insecure speaks plain HTTP; meant for a registry on the loopback or a
	// test network (go-containerregistry already does for localhost, loopback
	// and private addresses).
	Insecure bool
}

// Pushed is an output in the registry.
type Pushed struct {
	Ref    string // repository@sha256:…
	Digest string // sha256:…
}

func (r Registry) nameOptions() []name.Option {
	if r.Insecure {
		return []name.Option{name.Insecure}
	}
	return nil
}

// remoteOptions authenticate to r for references on r's host and go
// anonymously elsewhere (a public base image), so r's password never leaves
// for another registry.
func (r Registry) remoteOptions(ctx context.Context, repo name.Repository) []remote.Option {
	auth := authn.Anonymous
	if r.owns(repo) && (r.Username != "" || r.Password != "") {
		auth = authn.FromConfig(authn.AuthConfig{Username: r.Username, Password: r.Password})
	}
	return []remote.Option{remote.WithContext(ctx), remote.WithAuth(auth)}
}

func (r Registry) owns(repo name.Repository) bool {
	reg, err := name.NewRegistry(r.Host, r.nameOptions()...)
	return err == nil && reg.RegistryStr() == repo.RegistryStr()
}

// repository is repo (a path such as "team/backend") on r.
func (r Registry) repository(repo string) (name.Repository, error) {
	ref, err := name.NewRepository(r.Host+"/"+repo, r.nameOptions()...)
	if err != nil {
		return name.Repository{}, fmt.Errorf("repository %q on %s: %w", repo, r.Host, err)
	}
	return ref, nil
}

// Exists reports whether ref (repository@sha256:… or :tag) is in the
// registry, with one HEAD request. A missing manifest is (false, nil); any
// other failure is an error, so an unreachable registry never reads as
// "deleted".
func (r Registry) Exists(ctx context.Context, ref string) (bool, error) {
	parsed, err := name.ParseReference(ref, r.nameOptions()...)
	if err != nil {
		return false, fmt.Errorf("reference %q: %w", ref, err)
	}
	_, err = remote.Head(parsed, r.remoteOptions(ctx, parsed.Context())...)
	var terr *transport.Error
	if errors.As(err, &terr) && terr.StatusCode == http.StatusNotFound {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("head %s: %w", ref, err)
	}
	return true, nil
}
