package oci

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
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

// ArtifactFiles lists the files of the artifact whose manifest ref names
// (<repository>@sha256:…), as PushArtifact wrote them: each layer a file, its
// path in the title annotation. go-containerregistry checks the manifest
// against the digest, so a manifest that does not match it ends in an error.
func (r Registry) ArtifactFiles(ctx context.Context, ref string) ([]PushedFile, error) {
	d, err := name.NewDigest(ref, r.nameOptions()...)
	if err != nil {
		return nil, fmt.Errorf("%q is not pinned by digest (repository@sha256:…): %w", ref, err)
	}
	desc, err := remote.Get(d, r.remoteOptions(ctx, d.Context())...)
	if err != nil {
		return nil, fmt.Errorf("fetch the manifest %s: %w", ref, err)
	}
	if !desc.MediaType.IsImage() {
		return nil, fmt.Errorf("%s is a %s, not an artifact's manifest", ref, desc.MediaType)
	}
	var m v1.Manifest
	if err := json.Unmarshal(desc.Manifest, &m); err != nil {
		return nil, fmt.Errorf("the manifest %s: %w", ref, err)
	}
	files := make([]PushedFile, len(m.Layers))
	for i, l := range m.Layers {
		files[i] = PushedFile{Path: l.Annotations[TitleAnnotation], Digest: l.Digest.String(), Size: l.Size}
	}
	return files, nil
}
