package hostprep

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"strings"
	"testing"
)

func releaseTarball(t *testing.T, version string) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, f := range []struct{ name, body string }{
		{"go/VERSION", version + "\ntime 2025-01-01T00:00:00Z\n"},
		{"go/bin/go", "the go command"},
		{"go/src/fmt/print.go", "package fmt\n"},
	} {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o755, Size: int64(len(f.body))}); err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(tw, f.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// failingAtEnd is a reader whose last read fails, like a cache object that
// does not hash to what it should.
type failingAtEnd struct{ r io.Reader }

func (f failingAtEnd) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if errors.Is(err, io.EOF) {
		return n, errors.New("sha256 mismatch")
	}
	return n, err
}

func TestSealedArchiveVerdict(t *testing.T) {
	archive := releaseTarball(t, "go1.24.4")
	goSum := sha256.Sum256([]byte("the go command"))

	for _, c := range []struct {
		name    string
		source  io.Reader
		version string
		verdict string // the line after the archive
		refusal string
	}{
		{"vouched", bytes.NewReader(archive), "1.24.4", "commit " + hex.EncodeToString(goSum[:]) + "\n", ""},
		{"another version inside", bytes.NewReader(archive), "1.23.10", "refuse\n", "holds go1.24.4"},
		{"changed in the cache", failingAtEnd{bytes.NewReader(archive)}, "1.24.4", "", "sha256 mismatch"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := sealArchive(c.source, c.version)
			defer s.stop()
			got, err := io.ReadAll(s)
			if c.verdict == "" {
				if err == nil {
					t.Fatal("the stream ended cleanly")
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(got, archive) || string(got[len(archive):]) != c.verdict {
				t.Errorf("after the archive came %q, want %q", got[min(len(got), len(archive)):], c.verdict)
			}
			if r := s.refusal(); (c.refusal == "") != (r == nil) || (r != nil && !strings.Contains(r.Error(), c.refusal)) {
				t.Errorf("refusal = %v, want %q", r, c.refusal)
			}
		})
	}
}
