package oci_test

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/kilnhq/terraform-provider-kiln/internal/oci"
	"github.com/kilnhq/terraform-provider-kiln/internal/testenv"
)

func TestPinAndCopy(t *testing.T) {
	bed := testenv.Registry(t)
	r := registry(bed)
	ctx := context.Background()
	img, err := random.Image(512, 1)
	if err != nil {
		t.Fatal(err)
	}
	repo := repoName(t)
	pushed, err := r.Push(ctx, repo, img, "1.0")
	if err != nil {
		t.Fatal(err)
	}

	pinned, err := r.Pin(ctx, bed.Host+"/"+repo+":1.0")
	if err != nil || pinned != pushed.Ref {
		t.Errorf("Pin(tag 1.0) = %s, %v; want %s", pinned, err, pushed.Ref)
	}
	if again, err := r.Pin(ctx, pushed.Ref); err != nil || again != pushed.Ref {
		t.Errorf("Pin(a digest reference) = %s, %v; want it as it is", again, err)
	}
	if _, err := r.Pin(ctx, bed.Host+"/"+repo+":nope"); err == nil || !strings.Contains(err.Error(), `tag "nope" does not resolve`) {
		t.Errorf("Pin(a tag that does not exist) = %v, want it not resolved", err)
	}

	dst := bed.Host + "/" + repo + "-copy/api"
	copied, err := r.Copy(ctx, pushed.Ref, dst, "v1")
	if err != nil {
		t.Fatal(err)
	}
	if copied.Ref != dst+"@"+pushed.Digest || copied.Digest != pushed.Digest {
		t.Errorf("copy %s (%s), want %s@%s", copied.Ref, copied.Digest, dst, pushed.Digest)
	}
	if tagged, err := r.Pin(ctx, dst+":v1"); err != nil || tagged != copied.Ref {
		t.Errorf("the copy's tag v1 pins to %s, %v; want %s", tagged, err, copied.Ref)
	}
	if _, err := r.Copy(ctx, bed.Host+"/"+repo+":1.0", dst); err == nil {
		t.Error("Copy of a tag: want an error, a copy is by digest")
	}
}

func TestReferenceHelpers(t *testing.T) {
	const digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	if got, err := oci.AtDigest("r.test:5000/team/api:1.0", digest); err != nil || got != "r.test:5000/team/api@"+digest {
		t.Errorf("AtDigest = %s, %v", got, err)
	}
	if got, err := oci.DigestOf("r.test/api@" + digest); err != nil || got != digest {
		t.Errorf("DigestOf = %s, %v", got, err)
	}
	if _, err := oci.DigestOf("r.test/api:1.0"); err == nil {
		t.Error("DigestOf(a tag): want an error")
	}
	for repo, ok := range map[string]bool{
		"r.test/releases":                      true,
		"127.0.0.1:5000/qa":                    true,
		"releases":                             false, // no registry: it would read as Docker Hub's
		"r.test/Releases":                      false,
		"r.test/releases:1.0":                  false,
		"r.test/releases@sha256:" + digest[7:]: false,
	} {
		if err := oci.CheckRepository(repo); (err == nil) != ok {
			t.Errorf("CheckRepository(%q) = %v, want ok %t", repo, err, ok)
		}
	}
}
