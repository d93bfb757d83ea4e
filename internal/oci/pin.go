package oci

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// Pin returns ref pinned by digest (repository@sha256:…). A reference that
// already holds a digest is returned as it is, without asking the registry; a
// tag is resolved with one HEAD request, so a tag that does not resolve is an
// error.
func (r Registry) Pin(ctx context.Context, ref string) (string, error) {
	parsed, err := name.ParseReference(ref, r.nameOptions()...)
	if err != nil {
		return "", fmt.Errorf("reference %q: %w", ref, err)
	}
	if _, ok := parsed.(name.Digest); ok {
		return ref, nil
	}
	desc, err := remote.Head(parsed, r.remoteOptions(ctx, parsed.Context())...)
	var terr *transport.Error
	if errors.As(err, &terr) && terr.StatusCode == http.StatusNotFound {
		return "", fmt.Errorf("tag %q does not resolve: %s has no such tag", parsed.Identifier(), parsed.Context())
	}
	if err != nil {
		return "", fmt.Errorf("resolve %s: %w", ref, err)
	}
	return parsed.Context().Digest(desc.Digest.String()).String(), nil
}

// DigestOf returns the digest (sha256:…) of a reference pinned by digest.
func DigestOf(pinned string) (string, error) {
	d, err := name.NewDigest(pinned)
	if err != nil {
		return "", fmt.Errorf("%q is not pinned by digest (repository@sha256:…): %w", pinned, err)
	}
	return d.DigestStr(), nil
}

// AtDigest returns the repository of ref (a tag or a digest reference) at
// digest.
func AtDigest(ref, digest string) (string, error) {
	parsed, err := name.ParseReference(ref)
	if err != nil {
		return "", fmt.Errorf("reference %q: %w", ref, err)
	}
	return parsed.Context().Digest(digest).String(), nil
}

// CheckRepository checks that repo is a repository with its registry
// ("registry.example.com/team/app").
func CheckRepository(repo string) error {
	parsed, err := name.NewRepository(repo, name.StrictValidation)
	if err != nil {
		return fmt.Errorf("%q is not a repository (registry/path): %w", repo, err)
	}
	if parsed.Name() != repo {
		return fmt.Errorf("%q is not a repository with its registry: it reads as %s", repo, parsed.Name())
	}
	return nil
}

// Copy copies the image or index pinned is pinned to into the repository dst
// ("registry/path") under the same digest, and tags it there with tags. The
// manifest is copied as it is, so the digest cannot change; blobs already in
// the destination are not sent again.
func (r Registry) Copy(ctx context.Context, pinned, dst string, tags ...string) (Pushed, error) {
	src, err := name.NewDigest(pinned, r.nameOptions()...)
	if err != nil {
		return Pushed{}, fmt.Errorf("copy %q: not pinned by digest: %w", pinned, err)
	}
	repository, err := name.NewRepository(dst, r.nameOptions()...)
	if err != nil {
		return Pushed{}, fmt.Errorf("copy to %q: %w", dst, err)
	}
	desc, err := remote.Get(src, r.remoteOptions(ctx, src.Context())...)
	if err != nil {
		return Pushed{}, fmt.Errorf("copy %s: %w", pinned, err)
	}
	ref := repository.Digest(src.DigestStr())
	opts := r.remoteOptions(ctx, repository)
	var taggable remote.Taggable = desc
	if desc.MediaType.IsIndex() {
		idx, err := desc.ImageIndex()
		if err == nil {
			err = remote.WriteIndex(ref, idx, opts...)
		}
		if err != nil {
			return Pushed{}, fmt.Errorf("copy %s to %s: %w", pinned, ref, err)
		}
	} else {
		img, err := desc.Image()
		if err == nil {
			err = remote.Write(ref, img, opts...)
		}
		if err != nil {
			return Pushed{}, fmt.Errorf("copy %s to %s: %w", pinned, ref, err)
		}
	}
	if err := r.tag(repository, taggable, tags, opts); err != nil {
		return Pushed{}, err
	}
	return Pushed{Ref: ref.String(), Digest: src.DigestStr()}, nil
}
