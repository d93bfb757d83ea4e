package hostrelease

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"github.com/kilnhq/terraform-provider-kiln/internal/oci"
	"github.com/kilnhq/terraform-provider-kiln/internal/redact"
)

// fetched is the artifact downloaded to this machine and verified.
type fetched struct {
	path string
	size int64
}

// refused ends every error of an artifact that no host received.
const refused = "refused, no host was changed"

// source names the artifact in messages, URL credentials hidden.
func (a Artifact) source() string {
	if a.OCIRef != "" {
		return a.OCIRef
	}
	return redact.URLCredentials(a.URL)
}

// Signed is whether the artifact comes with a signature to check.
func (a Artifact) Signed() bool { return a.PublicKey != "" }

// fetchArtifact copies the artifact from its source into dir, hashing it on
// the way in, and keeps it only when its SHA-256 is the one expected and, for
// a signed artifact, its signature verifies: anything else is refused before
// any host receives a byte.
func (e *Engine) fetchArtifact(ctx context.Context, a Artifact, dir string) (fetched, error) {
	f, err := os.CreateTemp(dir, "artifact-")
	if err != nil {
		return fetched{}, err
	}
	defer f.Close()
	h := sha256.New()
	var size int64
	if a.OCIRef != "" {
		var blob string
		if blob, err = e.blobRef(ctx, a); err == nil {
			size, err = e.Registry.FetchBlob(ctx, blob, io.MultiWriter(f, h))
		}
	} else {
		size, err = download(ctx, a.URL, io.MultiWriter(f, h))
	}
	if err != nil {
		return fetched{}, fmt.Errorf("artifact %s: %w: %s", a.source(), err, refused)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != a.Digest() {
		return fetched{}, fmt.Errorf("artifact %s has sha256 %s, want %s: %s", a.source(), got, a.Digest(), refused)
	}
	if err := f.Close(); err != nil {
		return fetched{}, err
	}
	if a.Signed() {
		if err := e.checkSignature(ctx, a, f.Name()); err != nil {
			return fetched{}, err
		}
	}
	return fetched{path: f.Name(), size: size}, nil
}

// blobRef is the blob of the executable a.OCIRef names: the ref itself when
// its digest is the executable's, else the file of the artifact manifest it
// names whose digest is the executable's.
func (e *Engine) blobRef(ctx context.Context, a Artifact) (string, error) {
	d, err := oci.DigestOf(a.OCIRef)
	if err != nil {
		return "", err
	}
	want := "sha256:" + a.Digest()
	if d == want {
		return a.OCIRef, nil
	}
	files, err := e.Registry.ArtifactFiles(ctx, a.OCIRef)
	if err != nil {
		return "", fmt.Errorf("%w (a ref whose digest is not the executable's sha256 must name an artifact's manifest)", err)
	}
	var have []string
	for _, f := range files {
		if f.Digest == want {
			return oci.AtDigest(a.OCIRef, f.Digest)
		}
		have = append(have, fmt.Sprintf("%s has %s", f.Path, f.Digest))
	}
	if len(have) == 0 {
		have = []string{"it has none"}
	}
	return "", fmt.Errorf("no file of the artifact has sha256 %s (%s)", a.Digest(), strings.Join(have, ", "))
}

// download copies url's body to w.
func download(ctx context.Context, url string, w io.Writer) (int64, error) {
	body, err := get(ctx, url)
	if err != nil {
		return 0, err
	}
	defer body.Close()
	return io.Copy(w, body)
}

// get opens url's body: a 200 answer, or an error without URL credentials.
func get(ctx context.Context, url string) (io.ReadCloser, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, redact.Secrets{}.Error(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("download: %w", redact.Secrets{}.Error(err))
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, errors.New("download " + redact.URLCredentials(url) + ": " + resp.Status)
	}
	return resp.Body, nil
}
