package hostprep

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/kilnhq/terraform-provider-kiln/internal/gotoolchain"
)

// sealedArchive is the stdin of a streamed install: the archive, then one
// verdict line. While the archive goes out, it is inspected here (its go/VERSION
// and the hash of go/bin/go) and the reader it comes from checks its SHA-256 at
// the end; the verdict is "commit <bin/go sha256>" only when all of that holds.
type sealedArchive struct {
	version     string
	archive     io.Reader
	toInspector *io.PipeWriter
	inspected   chan inspection
	verdict     io.Reader

	mu      sync.Mutex
	refused error
}

type inspection struct {
	contents gotoolchain.Contents
	err      error
}

func sealArchive(archive io.Reader, version string) *sealedArchive {
	pr, pw := io.Pipe()
	s := &sealedArchive{version: version, archive: archive, toInspector: pw, inspected: make(chan inspection, 1)}
	go func() {
		c, err := gotoolchain.Inspect(pr)
		s.inspected <- inspection{c, err}
	}()
	return s
}

func (s *sealedArchive) Read(p []byte) (int, error) {
	if s.verdict != nil {
		return s.verdict.Read(p)
	}
	n, err := s.archive.Read(p)
	if n > 0 {
		if _, werr := s.toInspector.Write(p[:n]); werr != nil && err == nil {
			err = werr
		}
	}
	switch {
	case errors.Is(err, io.EOF):
		s.toInspector.Close()
		s.verdict = strings.NewReader(s.judge())
		if n > 0 {
			return n, nil
		}
		return s.verdict.Read(p)
	case err != nil:
		s.refuse(err)
		s.toInspector.CloseWithError(err)
	}
	return n, err
}

// judge waits for the inspection and returns the verdict line.
func (s *sealedArchive) judge() string {
	in := <-s.inspected
	switch {
	case in.err != nil:
		s.refuse(in.err)
	case in.contents.Version != "go"+s.version:
		s.refuse(fmt.Errorf("the archive of go%s holds %s", s.version, in.contents.Version))
	default:
		return "commit " + in.contents.GoSHA256 + "\n"
	}
	return "refuse\n"
}

func (s *sealedArchive) refuse(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.refused == nil {
		s.refused = err
	}
}

// refusal is why the archive was not vouched for, nil when it was (or the
// stream stopped for another reason).
func (s *sealedArchive) refusal() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refused
}

// stop releases the inspector when the stream ended early.
func (s *sealedArchive) stop() { s.toInspector.CloseWithError(errors.New("stream stopped")) }
