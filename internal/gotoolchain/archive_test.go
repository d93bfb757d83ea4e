package gotoolchain

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"strings"
	"testing"
)

func TestArtifactOpenAndInspect(t *testing.T) {
	good := toolchainZip(t, testVersion, "")
	a, err := newFetcher(t).FromModuleProxy(context.Background(), newFakeProxy(t, good, good).source(), testVersion, "linux", "amd64")
	if err != nil {
		t.Fatal(err)
	}
	rc, err := a.Open()
	if err != nil {
		t.Fatal(err)
	}
	c, err := Inspect(rc)
	if err != nil {
		t.Fatal(err)
	}
	if err := rc.Close(); err != nil {
		t.Fatal(err)
	}
	goBin := sha256.Sum256([]byte("#!/bin/sh\necho go version go" + testVersion + "\n"))
	if c.Version != "go"+testVersion || c.GoSHA256 != hex.EncodeToString(goBin[:]) {
		t.Errorf("Inspect = %+v, want go%s and bin/go's hash", c, testVersion)
	}

	// An object changed in the cache after it was verified: the last read
	// fails, so the bytes are never vouched for.
	data, err := os.ReadFile(a.Path)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)-1] ^= 0xff
	if err := os.WriteFile(a.Path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	rc, err = a.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if _, err := io.Copy(io.Discard, rc); err == nil || !strings.Contains(err.Error(), "want "+a.SHA256) {
		t.Errorf("reading a changed object: %v, want a sha256 mismatch", err)
	}
	// The bad object is gone, so the next use fetches and verifies it again.
	if _, err := os.Stat(a.Path); !os.IsNotExist(err) {
		t.Errorf("the changed object is still in the cache: %v", err)
	}
}

func TestInspectRejectsWhatIsNotAToolchain(t *testing.T) {
	if _, err := Inspect(strings.NewReader("not gzip")); err == nil {
		t.Error("Inspect accepted a non-gzip stream")
	}
}
