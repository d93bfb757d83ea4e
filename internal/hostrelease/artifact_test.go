package hostrelease

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kilnhq/terraform-provider-kiln/internal/oci"
	"github.com/kilnhq/terraform-provider-kiln/internal/testenv"
)

func digestOf(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// TestFetchArtifact_registry fetches an artifact file from the test registry
// by the ref a build records and through the artifact's manifest, and refuses
// a manifest without a file of digest sha256, and a blob whose digest is not
// sha256.
func TestFetchArtifact_registry(t *testing.T) {
	bed := testenv.Registry(t)
	reg := oci.Registry{Host: bed.Host, Username: bed.Username, Password: bed.Password, Insecure: true}
	binary := []byte("#!/bin/sh\necho from the registry\n")
	src := filepath.Join(t.TempDir(), "app")
	if err := os.WriteFile(src, binary, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	pushed, err := reg.PushArtifact(ctx, "kiln-test/host-release-fetch", "", []oci.File{{Path: "dist/app", Source: src}})
	if err != nil {
		t.Fatal(err)
	}
	ref, err := oci.AtDigest(pushed.Ref, pushed.Files[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	e := &Engine{Registry: reg}
	got, err := e.fetchArtifact(ctx, Artifact{Version: "1", OCIRef: ref, SHA256: pushed.Files[0].Digest}, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if data, err := os.ReadFile(got.path); err != nil || !bytes.Equal(data, binary) {
		t.Errorf("fetched %q, %v", data, err)
	}
	// The artifact's manifest: its file with the executable's digest.
	got, err = e.fetchArtifact(ctx, Artifact{Version: "1", OCIRef: pushed.Ref, SHA256: pushed.Files[0].Digest}, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if data, err := os.ReadFile(got.path); err != nil || !bytes.Equal(data, binary) {
		t.Errorf("fetched %q through the manifest, %v", data, err)
	}
	wrong := strings.Repeat("0", 64)
	_, err = e.fetchArtifact(ctx, Artifact{Version: "1", OCIRef: pushed.Ref, SHA256: wrong}, t.TempDir())
	if want := "artifact " + pushed.Ref + ": no file of the artifact has sha256 " + wrong + " (dist/app has " +
		pushed.Files[0].Digest + "): " + refused; err == nil || err.Error() != want {
		t.Errorf("a manifest without the executable: %v, want %q", err, want)
	}
	// A blob's ref with another sha256 names no manifest.
	_, err = e.fetchArtifact(ctx, Artifact{Version: "1", OCIRef: ref, SHA256: wrong}, t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "fetch the manifest "+ref) ||
		!strings.Contains(err.Error(), "must name an artifact's manifest") || !strings.HasSuffix(err.Error(), refused) {
		t.Errorf("a sha256 other than the blob's: %v", err)
	}
}
