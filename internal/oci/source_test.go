package oci_test

import (
	"archive/tar"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/kilnhq/terraform-provider-kiln/internal/gitsource"
	"github.com/kilnhq/terraform-provider-kiln/internal/oci"
	"github.com/kilnhq/terraform-provider-kiln/internal/testenv"
)

// TestSourceToImage_reproducible is a build without a build host: the sample
// committed to the git server, resolved, archived and built twice in two
// different directories, each binary assembled into an image with the commit
// time. Both give one digest, which is pushed.
func TestSourceToImage_reproducible(t *testing.T) {
	g := testenv.GitServer(t)
	r := g.NewRepo(t)
	r.Commit(t, "the sample backend", testenv.SampleService(t))
	src := gitsource.Repository{URL: r.URL, Credentials: gitsource.Credentials{Username: g.Username, Password: g.Password}}
	ctx := context.Background()
	ref, err := src.Resolve(ctx, "main")
	if err != nil {
		t.Fatal(err)
	}
	bed := testenv.Registry(t)
	reg := registry(bed)
	var digests []string
	for range 2 {
		dir := t.TempDir()
		pr, pw := io.Pipe()
		done := make(chan gitsource.Commit, 1)
		go func() {
			c, err := src.Archive(ctx, ref.Commit, pw)
			pw.CloseWithError(err)
			done <- c
		}()
		untar(t, pr, dir)
		commit := <-done
		binary := goBuild(t, dir, commit.Time)
		img, err := reg.Assemble(ctx, oci.Image{Binary: binary, Name: "backend", Created: commit.Time})
		if err != nil {
			t.Fatal(err)
		}
		d, err := img.Digest()
		if err != nil {
			t.Fatal(err)
		}
		digests = append(digests, d.String())
		if len(digests) == 2 {
			pushed, err := reg.Push(ctx, repoName(t), img)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("commit %s built in two directories: %s", ref.Commit[:12], pushed.Ref)
		}
	}
	if digests[0] != digests[1] {
		t.Errorf("one commit, two digests: %s, %s", digests[0], digests[1])
	}
}

// goBuild builds the main package in dir as a build host would: trimpath,
// no build id, the build stamp and SOURCE_DATE_EPOCH from the commit time.
func goBuild(t *testing.T, dir string, commitTime time.Time) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "backend")
	cmd := exec.Command("go", "build", "-trimpath", "-o", out,
		"-ldflags", "-buildid= -X main.buildStamp="+commitTime.UTC().Format(time.RFC3339), ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-mod=readonly",
		"SOURCE_DATE_EPOCH="+strconv.FormatInt(commitTime.Unix(), 10))
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build in %s: %v\n%s", dir, err, b)
	}
	return out
}

func untar(t *testing.T, r io.Reader, dir string) {
	t.Helper()
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, filepath.FromSlash(hdr.Name))
		switch hdr.Typeflag {
		case tar.TypeDir:
			err = os.MkdirAll(path, 0o755)
		case tar.TypeReg:
			var f *os.File
			if f, err = os.OpenFile(path, os.O_CREATE|os.O_WRONLY, os.FileMode(hdr.Mode)); err == nil {
				_, err = io.Copy(f, tr)
				if cerr := f.Close(); err == nil {
					err = cerr
				}
			}
		default:
			t.Fatalf("%s: unexpected entry type %c", hdr.Name, hdr.Typeflag)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}
