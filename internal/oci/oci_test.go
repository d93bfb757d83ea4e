package oci_test

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/kilnhq/terraform-provider-kiln/internal/oci"
	"github.com/kilnhq/terraform-provider-kiln/internal/testenv"
)

// The commit time the sample is built for, as a build would take it.
var commitTime = time.Date(2026, 11, 29, 9, 0, 0, 0, time.UTC)

func TestAssemble_reproducible(t *testing.T) {
	binary := sampleBinary(t)
	r := oci.Registry{}
	spec := oci.Image{Binary: binary, Name: "backend", Created: commitTime}
	first := digest(t, r, spec)
	if again := digest(t, r, spec); again != first {
		t.Errorf("same inputs, two digests: %s, %s", first, again)
	}
	// A copy of the binary elsewhere, made now: neither its path nor its
	// time on disk reaches the image.
	cp := filepath.Join(t.TempDir(), "copy")
	copyFile(t, binary, cp)
	if other := digest(t, r, oci.Image{Binary: cp, Name: "backend", Created: commitTime}); other != first {
		t.Errorf("the binary's path or time changed the digest: %s, %s", other, first)
	}
	if later := digest(t, r, oci.Image{Binary: binary, Name: "backend", Created: commitTime.Add(time.Second)}); later == first {
		t.Error("another commit time gave the same digest")
	}
	t.Logf("digest %s, stable over 3 assemblies", first)

	undated, err := r.Assemble(context.Background(), oci.Image{Binary: binary, Name: "backend"})
	if err != nil {
		t.Fatal(err)
	}
	cf, err := undated.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if !cf.Created.Equal(time.Unix(0, 0)) {
		t.Errorf("no time given: created %v, want the Unix epoch", cf.Created)
	}

	if _, err := r.Assemble(context.Background(), oci.Image{Binary: binary, Name: "bin/backend"}); err == nil {
		t.Error("a binary name with a slash was accepted")
	}
}

func TestPush_scratch(t *testing.T) {
	bed := testenv.Registry(t)
	r := registry(bed)
	ctx := context.Background()
	binary := sampleBinary(t)
	img, err := r.Assemble(ctx, oci.Image{Binary: binary, Name: "backend", Created: commitTime})
	if err != nil {
		t.Fatal(err)
	}
	repo := repoName(t)
	start := time.Now()
	pushed, err := r.Push(ctx, repo, img, "20261129-090000-main")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("pushed %s (%d MB binary) in %v", pushed.Ref, size(t, binary)>>20, time.Since(start).Round(time.Millisecond))
	if !strings.HasPrefix(pushed.Ref, bed.Host+"/"+repo+"@sha256:") || !strings.HasSuffix(pushed.Ref, pushed.Digest) {
		t.Errorf("ref %s, digest %s", pushed.Ref, pushed.Digest)
	}

	// Read back from the registry, not from img.
	got := pull(t, bed, pushed.Ref)
	if mt, _ := got.MediaType(); mt != types.OCIManifestSchema1 {
		t.Errorf("manifest media type %s", mt)
	}
	cf, err := got.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(cf.Config.Entrypoint, " ") != "/ko-app/backend" || !cf.Created.Equal(commitTime) ||
		cf.OS != "linux" || cf.Architecture != "amd64" {
		t.Errorf("config: entrypoint %q created %v platform %s/%s", cf.Config.Entrypoint, cf.Created, cf.OS, cf.Architecture)
	}
	layers, err := got.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("%d layers, %v; want 1", len(layers), err)
	}
	extracted := filepath.Join(t.TempDir(), "backend")
	hdrs := extract(t, layers[0], "ko-app/backend", extracted)
	if want := "ko-app/ 755, ko-app/backend 755"; hdrs != want {
		t.Errorf("layer entries %q, want %q", hdrs, want)
	}
	if a, b := fileSHA256(t, extracted), fileSHA256(t, binary); a != b {
		t.Errorf("binary in the layer has sha256 %s, the built one %s", a, b)
	}
	if got := buildstamp(t, extracted); got != commitTime.Format(time.RFC3339) {
		t.Errorf("/api/buildstamp of the pulled binary = %q", got)
	}

	for _, ref := range []string{pushed.Ref, bed.Host + "/" + repo + ":20261129-090000-main"} {
		if ok, err := r.Exists(ctx, ref); !ok || err != nil {
			t.Errorf("Exists(%s) = %v, %v", ref, ok, err)
		}
	}
	wrong := r
	wrong.Password = "wrong"
	if ok, err := wrong.Exists(ctx, pushed.Ref); err == nil {
		t.Errorf("Exists with a wrong password = %v, nil; want an error, not an answer", ok)
	}
	deleteManifest(t, bed, pushed.Ref)
	if ok, err := r.Exists(ctx, pushed.Ref); ok || err != nil {
		t.Errorf("Exists after the delete = %v, %v; want false, nil", ok, err)
	}
}

func TestPush_base(t *testing.T) {
	bed := testenv.Registry(t)
	r := registry(bed)
	ctx := context.Background()
	repo := repoName(t)

	// A base image of our own, in the test registry: one file, a user.
	base, err := mutate.Append(mutate.MediaType(empty.Image, types.OCIManifestSchema1), mutate.Addendum{
		Layer: layerOf(t, "etc/passwd", "nonroot:x:65532:65532::/home/nonroot:/sbin/nologin\n"),
	})
	if err != nil {
		t.Fatal(err)
	}
	base, err = mutate.Config(base, v1.Config{User: "65532", Env: []string{"PATH=/usr/bin"}})
	if err != nil {
		t.Fatal(err)
	}
	pushedBase, err := r.Push(ctx, repo+"/base", base)
	if err != nil {
		t.Fatal(err)
	}

	binary := sampleBinary(t)
	spec := oci.Image{Binary: binary, Name: "backend", Base: pushedBase.Ref, Created: commitTime}
	img, err := r.Assemble(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	if a, b := digest(t, r, spec), digest(t, r, spec); a != b {
		t.Errorf("same inputs on a base, two digests: %s, %s", a, b)
	}
	pushed, err := r.Push(ctx, repo, img)
	if err != nil {
		t.Fatal(err)
	}
	got := pull(t, bed, pushed.Ref)
	layers, err := got.Layers()
	if err != nil || len(layers) != 2 {
		t.Fatalf("%d layers, %v; want the base's and the binary's", len(layers), err)
	}
	cf, err := got.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.Config.User != "65532" || cf.Config.Entrypoint[0] != "/ko-app/backend" {
		t.Errorf("config: user %q entrypoint %q; want the base's user and the binary", cf.Config.User, cf.Config.Entrypoint)
	}
	m, err := got.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	if m.Annotations["org.opencontainers.image.base.digest"] != pushedBase.Digest {
		t.Errorf("annotations %v, want the base's digest", m.Annotations)
	}

	tagged := bed.Host + "/" + repo + "/base:latest"
	if _, err := r.Assemble(ctx, oci.Image{Binary: binary, Name: "backend", Base: tagged}); err == nil || !strings.Contains(err.Error(), "pinned by digest") {
		t.Errorf("a base by tag = %v, want it refused", err)
	}
}

func TestPushArtifact(t *testing.T) {
	bed := testenv.Registry(t)
	r := registry(bed)
	ctx := context.Background()
	repo := repoName(t)
	dir := t.TempDir()
	files := map[string]string{"dist/app": "#!/bin/sh\necho app\n", "dist/app.sha256": "abc\n", "README": "notes\n"}
	var list []oci.File
	for path, content := range files {
		src := filepath.Join(dir, strings.ReplaceAll(path, "/", "_"))
		if err := os.WriteFile(src, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		list = append(list, oci.File{Path: path, Source: src})
	}
	start := time.Now()
	first, err := r.PushArtifact(ctx, repo, "", list, "v1")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("pushed artifact %s in %v", first.Ref, time.Since(start).Round(time.Millisecond))
	second, err := r.PushArtifact(ctx, repo, "", []oci.File{list[2], list[0], list[1]})
	if err != nil {
		t.Fatal(err)
	}
	if second.Digest != first.Digest {
		t.Errorf("the same files in another order: %s, %s", second.Digest, first.Digest)
	}

	ref, err := name.ParseReference(first.Ref)
	if err != nil {
		t.Fatal(err)
	}
	desc, err := remote.Get(ref, remote.WithAuth(auth(bed)))
	if err != nil {
		t.Fatal(err)
	}
	var m v1.Manifest
	if err := json.Unmarshal(desc.Manifest, &m); err != nil {
		t.Fatal(err)
	}
	if m.ArtifactType != oci.DefaultArtifactType || m.Config.MediaType != oci.EmptyConfigType || len(m.Layers) != len(files) {
		t.Fatalf("manifest %s", desc.Manifest)
	}
	for i, pf := range first.Files {
		l := m.Layers[i]
		if l.Annotations[oci.TitleAnnotation] != pf.Path || l.Digest.String() != pf.Digest {
			t.Errorf("layer %d: %s %s, reported %+v", i, l.Annotations[oci.TitleAnnotation], l.Digest, pf)
		}
		sum := sha256.Sum256([]byte(files[pf.Path]))
		if pf.Digest != "sha256:"+hex.EncodeToString(sum[:]) || pf.Size != int64(len(files[pf.Path])) {
			t.Errorf("%s: %+v, want the content's sha256 and size", pf.Path, pf)
		}
		blob, err := remote.Layer(ref.Context().Digest(pf.Digest), remote.WithAuth(auth(bed)))
		if err != nil {
			t.Fatal(err)
		}
		rc, err := blob.Compressed()
		if err != nil {
			t.Fatal(err)
		}
		content, err := io.ReadAll(rc)
		_ = rc.Close()
		if err != nil || string(content) != files[pf.Path] {
			t.Errorf("%s fetched back: %q, %v", pf.Path, content, err)
		}
	}
	if ok, err := r.Exists(ctx, bed.Host+"/"+repo+":v1"); !ok || err != nil {
		t.Errorf("tag v1: %v, %v", ok, err)
	}
}

func registry(bed testenv.RegistryBed) oci.Registry {
	return oci.Registry{Host: bed.Host, Username: bed.Username, Password: bed.Password, Insecure: true}
}

func auth(bed testenv.RegistryBed) authn.Authenticator {
	return authn.FromConfig(authn.AuthConfig{Username: bed.Username, Password: bed.Password})
}

func repoName(t *testing.T) string {
	return "kiln-test/" + strings.ToLower(strings.ReplaceAll(t.Name(), "_", "-"))
}

func digest(t *testing.T, r oci.Registry, spec oci.Image) string {
	t.Helper()
	img, err := r.Assemble(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

func pull(t *testing.T, bed testenv.RegistryBed, ref string) v1.Image {
	t.Helper()
	parsed, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(parsed, remote.WithAuth(auth(bed)))
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func deleteManifest(t *testing.T, bed testenv.RegistryBed, ref string) {
	t.Helper()
	parsed, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Delete(parsed, remote.WithAuth(auth(bed))); err != nil {
		t.Fatal(err)
	}
}

// sampleBinary builds the sample service from the repository's copy.
func sampleBinary(t *testing.T) string {
	t.Helper()
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return goBuild(t, filepath.Join(root, "internal", "testenv", "sample"), commitTime)
}

// extract writes the layer's entry name to dest and lists the layer's
// entries with their modes, checking every time is the commit time.
func extract(t *testing.T, layer v1.Layer, entry, dest string) string {
	t.Helper()
	rc, err := layer.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = rc.Close() }()
	var list []string
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return strings.Join(list, ", ")
		}
		if err != nil {
			t.Fatal(err)
		}
		list = append(list, fmt.Sprintf("%s %o", hdr.Name, hdr.Mode))
		if !hdr.ModTime.Equal(commitTime) || hdr.Uid != 0 || hdr.Gid != 0 {
			t.Errorf("%s: time %v owner %d:%d", hdr.Name, hdr.ModTime, hdr.Uid, hdr.Gid)
		}
		if hdr.Name == entry {
			f, err := os.OpenFile(dest, os.O_CREATE|os.O_WRONLY, 0o755)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.Copy(f, tr); err != nil {
				t.Fatal(err)
			}
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// buildstamp runs the binary on a free port of 127.0.0.1 and asks it.
func buildstamp(t *testing.T, binary string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	cmd := exec.Command(binary, "-listen", addr)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		resp, err := http.Get("http://" + addr + "/api/buildstamp")
		if err != nil {
			continue
		}
		var body struct{ Buildstamp string }
		err = json.NewDecoder(resp.Body).Decode(&body)
		_ = resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		return body.Buildstamp
	}
	t.Fatal("the sample did not answer within 10s")
	return ""
}

func layerOf(t *testing.T, path, content string) v1.Layer {
	t.Helper()
	pr, pw := io.Pipe()
	go func() {
		tw := tar.NewWriter(pw)
		err := tw.WriteHeader(&tar.Header{Name: path, Mode: 0o644, Size: int64(len(content)), ModTime: commitTime})
		if err == nil {
			_, err = tw.Write([]byte(content))
		}
		if err == nil {
			err = tw.Close()
		}
		pw.CloseWithError(err)
	}()
	b, err := io.ReadAll(pr)
	if err != nil {
		t.Fatal(err)
	}
	return static.NewLayer(b, types.OCIUncompressedLayer)
}

func fileSHA256(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o755); err != nil {
		t.Fatal(err)
	}
}

func size(t *testing.T, path string) int64 {
	t.Helper()
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return info.Size()
}
