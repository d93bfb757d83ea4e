package oci_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kilnhq/terraform-provider-kiln/internal/oci"
	"github.com/kilnhq/terraform-provider-kiln/internal/testenv"
)

// TestFetchBlob fetches an artifact's file back by the ref a build records,
// lists the artifact's files from its manifest, and refuses a digest the repository does not hold and a registry it may
// not read.
func TestFetchBlob(t *testing.T) {
	bed := testenv.Registry(t)
	r := registry(bed)
	ctx := context.Background()
	src := filepath.Join(t.TempDir(), "app")
	const content = "#!/bin/sh\necho fetched\n"
	if err := os.WriteFile(src, []byte(content), 0o755); err != nil {
		t.Fatal(err)
	}
	pushed, err := r.PushArtifact(ctx, repoName(t), "", []oci.File{{Path: "dist/app", Source: src}})
	if err != nil {
		t.Fatal(err)
	}
	ref, err := oci.AtDigest(pushed.Ref, pushed.Files[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	n, err := r.FetchBlob(ctx, ref, &got)
	if err != nil || got.String() != content || n != int64(len(content)) {
		t.Fatalf("FetchBlob(%s) = %d, %q, %v; want %q", ref, n, got.String(), err, content)
	}

	missing, err := oci.AtDigest(pushed.Ref, "sha256:"+strings.Repeat("0", 64))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.FetchBlob(ctx, missing, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "fetch "+missing) {
		t.Errorf("a digest the repository does not hold: %v", err)
	}
	if _, err := r.FetchBlob(ctx, bed.Host+"/"+repoName(t)+":latest", &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "not pinned by digest") {
		t.Errorf("a tag: %v", err)
	}
	files, err := r.ArtifactFiles(ctx, pushed.Ref)
	if err != nil || len(files) != 1 || files[0] != pushed.Files[0] {
		t.Errorf("ArtifactFiles(%s) = %+v, %v; want %+v", pushed.Ref, files, err, pushed.Files)
	}
	if _, err := r.ArtifactFiles(ctx, ref); err == nil || !strings.Contains(err.Error(), "fetch the manifest "+ref) {
		t.Errorf("a blob's ref as a manifest: %v", err)
	}
	anonymous := oci.Registry{Host: bed.Host, Insecure: true}
	if _, err := anonymous.FetchBlob(ctx, ref, &bytes.Buffer{}); err == nil {
		t.Error("fetched without the registry's credentials")
	}
}
