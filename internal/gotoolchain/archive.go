package gotoolchain

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"strings"
)

// Open reads the artifact's archive, hashing it on the way: the read that
// reaches the end fails instead of returning io.EOF when the bytes were not
// the verified ones, so whoever consumes the stream learns it before acting
// on its end.
func (a Artifact) Open() (io.ReadCloser, error) {
	f, err := os.Open(a.Path)
	if err != nil {
		return nil, fmt.Errorf("toolchain cache: %w", err)
	}
	return &verifyingReader{f: f, h: sha256.New(), want: a.SHA256, path: a.Path}, nil
}

type verifyingReader struct {
	f          *os.File
	h          hash.Hash
	want, path string
}

func (r *verifyingReader) Read(p []byte) (int, error) {
	n, err := r.f.Read(p)
	r.h.Write(p[:n])
	if errors.Is(err, io.EOF) {
		if got := hex.EncodeToString(r.h.Sum(nil)); got != r.want {
			// Gone, the object is fetched and verified again on the next use.
			_ = os.Remove(r.path)
			return n, fmt.Errorf("toolchain cache object %s has sha256 %s, want %s (removed)", r.path, got, r.want)
		}
	}
	return n, err
}

func (r *verifyingReader) Close() error { return r.f.Close() }

// Contents is what a release archive holds, as far as installing it goes.
type Contents struct {
	Version  string // first line of go/VERSION, e.g. "go1.24.4"
	GoSHA256 string // of go/bin/go
}

// Inspect reads a release tarball (go/ at the top) and reports its version
// and the hash of its go command. It reads r to the end.
func Inspect(r io.Reader) (Contents, error) {
	defer func() { _, _ = io.Copy(io.Discard, r) }()
	gz, err := gzip.NewReader(r)
	if err != nil {
		return Contents{}, fmt.Errorf("toolchain archive: %w", err)
	}
	var c Contents
	tr := tar.NewReader(gz)
	for c.Version == "" || c.GoSHA256 == "" {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return Contents{}, fmt.Errorf("toolchain archive: %w", err)
		}
		switch strings.TrimPrefix(hdr.Name, "./") {
		case "go/VERSION":
			line, err := bufio.NewReader(io.LimitReader(tr, 4096)).ReadString('\n')
			if err != nil && !errors.Is(err, io.EOF) {
				return Contents{}, fmt.Errorf("toolchain archive: go/VERSION: %w", err)
			}
			c.Version = strings.TrimSpace(line)
		case "go/bin/go":
			h := sha256.New()
			if _, err := io.Copy(h, tr); err != nil {
				return Contents{}, fmt.Errorf("toolchain archive: go/bin/go: %w", err)
			}
			c.GoSHA256 = hex.EncodeToString(h.Sum(nil))
		}
	}
	switch {
	case c.Version == "":
		return Contents{}, errors.New("toolchain archive has no go/VERSION")
	case c.GoSHA256 == "":
		return Contents{}, errors.New("toolchain archive has no go/bin/go")
	}
	return c, nil
}
