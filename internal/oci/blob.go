package oci

import (
	"context"
	"fmt"
	"io"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// FetchBlob copies the blob ref names (<repository>@sha256:…, as an
// artifact's file is recorded) to w and returns its size. go-containerregistry
// checks the content against the digest as it reads, so a blob that does not
// match it ends in an error.
func (r Registry) FetchBlob(ctx context.Context, ref string, w io.Writer) (int64, error) {
	d, err := name.NewDigest(ref, r.nameOptions()...)
	if err != nil {
		return 0, fmt.Errorf("%q is not pinned by digest (repository@sha256:…): %w", ref, err)
	}
	layer, err := remote.Layer(d, r.remoteOptions(ctx, d.Context())...)
	if err != nil {
		return 0, fmt.Errorf("fetch %s: %w", ref, err)
	}
	rc, err := layer.Compressed()
	if err != nil {
		return 0, fmt.Errorf("fetch %s: %w", ref, err)
	}
	defer func() { _ = rc.Close() }()
	n, err := io.Copy(w, rc)
	if err != nil {
		return n, fmt.Errorf("fetch %s: %w", ref, err)
	}
	return n, nil
}
