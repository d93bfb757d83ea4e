package oci

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// AppDir is where the binary lies in an image, as ko lays it out.
const AppDir = "/ko-app"

// Image is what a Go image is made of.
type Image struct {
	Binary string // the binary, a file on this machine
	Name   string // its name in the image: AppDir/Name, the entrypoint
	// Base is "" for scratch, else a reference pinned by digest
	// ("repo@sha256:…"); a multi-platform base gives its Platform image.
	Base     string
	Platform string // "linux/amd64" when empty
	// Created is the time of every file in the layer and of the image's
	// config: SOURCE_DATE_EPOCH, the commit time for a git source. Zero is
	// the Unix epoch.
	Created time.Time
}

// Assemble makes img's image: the base, plus one layer holding AppDir and the
// binary (mode 0755, owner 0, time Created), with the entrypoint set. Nothing
// in it depends on the machine or the time of day, so the same binary, base
// and Created give the same digest anywhere.
func (r Registry) Assemble(ctx context.Context, img Image) (v1.Image, error) {
	if img.Name == "" || path.Base(img.Name) != img.Name {
		return nil, fmt.Errorf("image binary name %q: want a plain file name", img.Name)
	}
	if img.Platform == "" {
		img.Platform = "linux/amd64"
	}
	platform, err := v1.ParsePlatform(img.Platform)
	if err != nil {
		return nil, fmt.Errorf("platform %q: %w", img.Platform, err)
	}
	base, annotations, err := r.base(ctx, img.Base, *platform)
	if err != nil {
		return nil, err
	}
	baseType, err := base.MediaType()
	if err != nil {
		return nil, fmt.Errorf("base %s: %w", img.Base, err)
	}
	// A layer's media type follows the base's manifest, as ko does.
	layerType := types.OCILayer
	if baseType == types.DockerManifestSchema2 {
		layerType = types.DockerLayer
	}
	created := img.Created.UTC().Truncate(time.Second)
	if img.Created.IsZero() {
		created = time.Unix(0, 0).UTC()
	}
	entrypoint := AppDir + "/" + img.Name
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return binaryLayer(img.Binary, entrypoint, created)
	}, tarball.WithMediaType(layerType))
	if err != nil {
		return nil, fmt.Errorf("layer of %s: %w", img.Binary, err)
	}
	out, err := mutate.Append(base, mutate.Addendum{
		Layer:     layer,
		History:   v1.History{Created: v1.Time{Time: created}, CreatedBy: "kiln: " + entrypoint},
		MediaType: layerType,
	})
	if err != nil {
		return nil, fmt.Errorf("image of %s: %w", img.Binary, err)
	}
	cf, err := out.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("image of %s: %w", img.Binary, err)
	}
	cf = cf.DeepCopy()
	cf.Created = v1.Time{Time: created}
	cf.OS, cf.Architecture, cf.Variant = platform.OS, platform.Architecture, platform.Variant
	cf.Config.Entrypoint = []string{entrypoint}
	cf.Config.Cmd = nil
	out, err = mutate.ConfigFile(out, cf)
	if err != nil {
		return nil, fmt.Errorf("image of %s: %w", img.Binary, err)
	}
	// Docker manifests have no annotations.
	if len(annotations) > 0 && baseType == types.OCIManifestSchema1 {
		out = mutate.Annotations(out, annotations).(v1.Image)
	}
	return out, nil
}

// base is the base image for ref on platform, with the annotations naming it
// (the OCI base-image annotations, as ko writes them).
func (r Registry) base(ctx context.Context, ref string, platform v1.Platform) (v1.Image, map[string]string, error) {
	if ref == "" {
		scratch := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
		return mutate.ConfigMediaType(scratch, types.OCIConfigJSON), nil, nil
	}
	digest, err := name.NewDigest(ref, r.nameOptions()...)
	if err != nil {
		return nil, nil, fmt.Errorf("base %q: not a reference pinned by digest (repo@sha256:…): %w", ref, err)
	}
	opts := append(r.remoteOptions(ctx, digest.Context()), remote.WithPlatform(platform))
	img, err := remote.Image(digest, opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("base %s: %w", ref, err)
	}
	return img, map[string]string{
		"org.opencontainers.image.base.name":   digest.Context().Name(),
		"org.opencontainers.image.base.digest": digest.DigestStr(),
	}, nil
}

// binaryLayer streams the layer's tar: AppDir, then the binary at entrypoint.
func binaryLayer(binary, entrypoint string, created time.Time) (io.ReadCloser, error) {
	f, err := os.Open(binary)
	if err != nil {
		return nil, err
	}
	info, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, err
	}
	pr, pw := io.Pipe()
	go func() {
		defer func() { _ = f.Close() }()
		tw := tar.NewWriter(pw)
		err := tw.WriteHeader(&tar.Header{Name: AppDir[1:] + "/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: created})
		if err == nil {
			err = tw.WriteHeader(&tar.Header{Name: entrypoint[1:], Typeflag: tar.TypeReg, Mode: 0o755, Size: info.Size(), ModTime: created})
		}
		if err == nil {
			_, err = io.Copy(tw, f)
		}
		if err == nil {
			err = tw.Close()
		}
		pw.CloseWithError(err)
	}()
	return pr, nil
}

// Push pushes img to repo on r by digest, then tags it with tags.
func (r Registry) Push(ctx context.Context, repo string, img v1.Image, tags ...string) (Pushed, error) {
	repository, err := r.repository(repo)
	if err != nil {
		return Pushed{}, err
	}
	digest, err := img.Digest()
	if err != nil {
		return Pushed{}, fmt.Errorf("push to %s: %w", repository, err)
	}
	ref := repository.Digest(digest.String())
	opts := r.remoteOptions(ctx, repository)
	if err := remote.Write(ref, img, opts...); err != nil {
		return Pushed{}, fmt.Errorf("push %s: %w", ref, err)
	}
	if err := r.tag(repository, img, tags, opts); err != nil {
		return Pushed{}, err
	}
	return Pushed{Ref: ref.String(), Digest: digest.String()}, nil
}

func (r Registry) tag(repository name.Repository, t remote.Taggable, tags []string, opts []remote.Option) error {
	for _, tag := range tags {
		ref, err := name.NewTag(repository.String()+":"+tag, r.nameOptions()...)
		if err != nil {
			return fmt.Errorf("tag %q: %w", tag, err)
		}
		if err := remote.Tag(ref, t, opts...); err != nil {
			return fmt.Errorf("tag %s:%s: %w", repository, tag, err)
		}
	}
	return nil
}
