package hostrelease

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"

	"github.com/kilnhq/terraform-provider-kiln/internal/redact"
)

// fetched is the artifact downloaded to this machine and verified.
type fetched struct {
	path string
	size int64
}

// fetchArtifact downloads a's URL into dir, hashing it on the way in, and
// keeps it only when its SHA-256 is the one expected: a mismatch is refused
// before any host receives a byte.
func fetchArtifact(ctx context.Context, a Artifact, dir string) (fetched, error) {
	url := redact.URLCredentials(a.URL)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.URL, nil)
	if err != nil {
		return fetched{}, fmt.Errorf("artifact %s: %w", url, redact.Secrets{}.Error(err))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fetched{}, fmt.Errorf("download artifact: %w", redact.Secrets{}.Error(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fetched{}, fmt.Errorf("download artifact %s: %s", url, resp.Status)
	}
	f, err := os.CreateTemp(dir, "artifact-")
	if err != nil {
		return fetched{}, err
	}
	defer f.Close()
	h := sha256.New()
	size, err := io.Copy(io.MultiWriter(f, h), resp.Body)
	if err != nil {
		return fetched{}, fmt.Errorf("download artifact %s: %w", url, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != a.Digest() {
		return fetched{}, fmt.Errorf("artifact %s has sha256 %s, want %s: refused, no host was changed", url, got, a.Digest())
	}
	return fetched{path: f.Name(), size: size}, f.Close()
}
