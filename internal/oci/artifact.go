package oci

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The media types of an OCI 1.1 artifact: an empty config, and each file a
// layer of its own, its path in the title annotation (as ORAS writes them).
const (
	EmptyConfigType     types.MediaType = "application/vnd.oci.empty.v1+json"
	FileType            types.MediaType = "application/octet-stream"
	TitleAnnotation                     = "org.opencontainers.image.title"
	DefaultArtifactType                 = "application/vnd.kiln.build.artifacts.v1"
)

// File is one file of an artifact.
type File struct {
	Path   string // its path in the artifact, e.g. "dist/app"
	Source string // the file on this machine
}

// PushedFile is a file in the registry.
type PushedFile struct {
	Path   string
	Digest string // sha256:… of the content, as pushed (no compression)
	Size   int64
}

// Artifact is an artifact in the registry.
type Artifact struct {
	Pushed
	Files []PushedFile // sorted by Path
}

// rawManifest is a manifest go-containerregistry pushes as it is.
type rawManifest []byte

func (m rawManifest) RawManifest() ([]byte, error)        { return m, nil }
func (m rawManifest) MediaType() (types.MediaType, error) { return types.OCIManifestSchema1, nil }

// PushArtifact pushes files to repo on r as one OCI artifact of type
// artifactType (DefaultArtifactType when empty), each file a blob of its own
// content, and tags it with tags. The manifest lists the files sorted by path
// and holds no time, so the same files give the same digest.
func (r Registry) PushArtifact(ctx context.Context, repo, artifactType string, files []File, tags ...string) (Artifact, error) {
	if artifactType == "" {
		artifactType = DefaultArtifactType
	}
	repository, err := r.repository(repo)
	if err != nil {
		return Artifact{}, err
	}
	opts := r.remoteOptions(ctx, repository)
	sorted := append([]File(nil), files...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Path < sorted[j].Path })

	config := static.NewLayer([]byte("{}"), EmptyConfigType)
	configDigest, err := config.Digest()
	if err != nil {
		return Artifact{}, err
	}
	if err := remote.WriteLayer(repository, config, opts...); err != nil {
		return Artifact{}, fmt.Errorf("push to %s: empty config: %w", repository, err)
	}
	manifest := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		ArtifactType:  artifactType,
		Config:        v1.Descriptor{MediaType: EmptyConfigType, Size: 2, Digest: configDigest},
	}
	var pushed []PushedFile
	for i, f := range sorted {
		if i > 0 && f.Path == sorted[i-1].Path {
			return Artifact{}, fmt.Errorf("push to %s: %s given twice", repository, f.Path)
		}
		blob, err := newFileBlob(f.Source)
		if err != nil {
			return Artifact{}, fmt.Errorf("push to %s: %s: %w", repository, f.Path, err)
		}
		if err := remote.WriteLayer(repository, blob, opts...); err != nil {
			return Artifact{}, fmt.Errorf("push to %s: %s: %w", repository, f.Path, err)
		}
		manifest.Layers = append(manifest.Layers, v1.Descriptor{
			MediaType:   FileType,
			Size:        blob.size,
			Digest:      blob.digest,
			Annotations: map[string]string{TitleAnnotation: f.Path},
		})
		pushed = append(pushed, PushedFile{Path: f.Path, Digest: blob.digest.String(), Size: blob.size})
	}
	raw, err := json.Marshal(manifest)
	if err != nil {
		return Artifact{}, err
	}
	digest, _, err := v1.SHA256(bytes.NewReader(raw))
	if err != nil {
		return Artifact{}, err
	}
	ref := repository.Digest(digest.String())
	if err := remote.Put(ref, rawManifest(raw), opts...); err != nil {
		return Artifact{}, fmt.Errorf("push %s: %w", ref, err)
	}
	if err := r.tag(repository, rawManifest(raw), tags, opts); err != nil {
		return Artifact{}, err
	}
	return Artifact{Pushed: Pushed{Ref: ref.String(), Digest: digest.String()}, Files: pushed}, nil
}

// fileBlob is a file pushed as it is: its digest is its content's sha256.
type fileBlob struct {
	path   string
	digest v1.Hash
	size   int64
}

func newFileBlob(path string) (*fileBlob, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	h := sha256.New()
	size, err := io.Copy(h, f)
	if err != nil {
		return nil, err
	}
	digest := v1.Hash{Algorithm: "sha256", Hex: fmt.Sprintf("%x", h.Sum(nil))}
	return &fileBlob{path: path, digest: digest, size: size}, nil
}

func (b *fileBlob) Digest() (v1.Hash, error)             { return b.digest, nil }
func (b *fileBlob) DiffID() (v1.Hash, error)             { return b.digest, nil }
func (b *fileBlob) Size() (int64, error)                 { return b.size, nil }
func (b *fileBlob) MediaType() (types.MediaType, error)  { return FileType, nil }
func (b *fileBlob) Compressed() (io.ReadCloser, error)   { return os.Open(b.path) }
func (b *fileBlob) Uncompressed() (io.ReadCloser, error) { return os.Open(b.path) }
