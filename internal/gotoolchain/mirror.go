package gotoolchain

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"github.com/ProtonMail/go-crypto/openpgp"

	"github.com/kilnhq/terraform-provider-kiln/internal/signature"
)

// DefaultMirror serves the official release files.
const DefaultMirror = "https://dl.google.com/go/"

// Mirror fetches official release tarballs (go<version>.<os>-<arch>.tar.gz) from
// go.dev's download host or a mirror that uses the same file names, checks their
// SHA-256 against the release index (or a pinned value) and their detached .asc
// signature against a keyring with the signer's primary key pinned.
type Mirror struct {
	URL string // base URL of the files; DefaultMirror when empty
	// IndexURL is the release index giving each file's SHA-256; DefaultIndexURL when empty.
	IndexURL string
	// Keyring verifies the .asc signatures; the embedded Go release keys when nil.
	Keyring openpgp.EntityList
	// Fingerprint is the pinned primary key; GoReleaseKeyFingerprint when empty
	// and Keyring is nil, none (any key of Keyring) when empty and Keyring is set.
	Fingerprint string
}

func (m Mirror) baseURL() string {
	if m.URL == "" {
		return DefaultMirror
	}
	return strings.TrimSuffix(m.URL, "/") + "/"
}

func (m Mirror) indexURL() string {
	if m.IndexURL == "" {
		return DefaultIndexURL
	}
	return m.IndexURL
}

func (m Mirror) keyring() (openpgp.EntityList, string, error) {
	if m.Keyring != nil {
		return m.Keyring, m.Fingerprint, nil
	}
	k, err := GoReleaseKeyring()
	fp := m.Fingerprint
	if fp == "" {
		fp = GoReleaseKeyFingerprint
	}
	return k, fp, err
}

// policy names what a tarball fetched from m is verified against: the pinned
// SHA-256 or the release index, the keyring (by a digest of its keys) and the
// pinned signer.
func (m Mirror) policy(wantSHA256 string) (string, error) {
	keyring, pinned, err := m.keyring()
	if err != nil {
		return "", fmt.Errorf("keyring: %w", err)
	}
	h := sha256.New()
	for _, e := range keyring {
		if err := e.Serialize(h); err != nil {
			return "", fmt.Errorf("keyring: %w", err)
		}
	}
	hashFrom := "sha256 " + strings.ToLower(wantSHA256)
	if wantSHA256 == "" {
		hashFrom = "index " + m.indexURL()
	}
	return fmt.Sprintf("%s keyring %x signer %s", hashFrom, h.Sum(nil), signature.NormalizeFingerprint(pinned)), nil
}

// TarballName is the release file name for a version and platform.
func TarballName(version, goos, goarch string) string {
	return fmt.Sprintf("go%s.%s-%s.tar.gz", version, goos, goarch)
}

// ArchiveURL is where the mirror serves the tarball of a version and platform.
func (m Mirror) ArchiveURL(version, goos, goarch string) string {
	return m.baseURL() + TarballName(version, goos, goarch)
}

// ExpectedSHA256 reads the release index for the archive's SHA-256.
func (m Mirror) ExpectedSHA256(ctx context.Context, client *http.Client, version, goos, goarch string) (string, error) {
	releases, err := FetchIndex(ctx, client, m.indexURL())
	if err != nil {
		return "", err
	}
	for _, r := range releases {
		if strings.TrimPrefix(r.Version, "go") != version {
			continue
		}
		if f, ok := r.Archive(goos, goarch); ok {
			return f.SHA256, nil
		}
	}
	return "", fmt.Errorf("release index %s has no archive for go%s %s/%s", m.indexURL(), version, goos, goarch)
}

// Fetch downloads the tarball and its signature, checks the SHA-256 (wantSHA256,
// or the release index's when empty) and the signature, and only then copies
// the archive to w.
func (m Mirror) Fetch(ctx context.Context, client *http.Client, scratch, version, goos, goarch, wantSHA256 string, w io.Writer) (Artifact, error) {
	name := TarballName(version, goos, goarch)
	url := m.ArchiveURL(version, goos, goarch)
	if wantSHA256 == "" {
		var err error
		if wantSHA256, err = m.ExpectedSHA256(ctx, client, version, goos, goarch); err != nil {
			return Artifact{}, err
		}
	}
	tmp, err := os.CreateTemp(scratch, "tarball-*")
	if err != nil {
		return Artifact{}, err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	h := sha256.New()
	if err := download(ctx, client, url, io.MultiWriter(tmp, h)); err != nil {
		return Artifact{}, err
	}
	if got := hex.EncodeToString(h.Sum(nil)); !strings.EqualFold(got, wantSHA256) {
		return Artifact{}, fmt.Errorf("%w: %s has sha256 %s, want %s", ErrChecksumMismatch, url, got, wantSHA256)
	}
	sig, err := get(ctx, client, url+".asc")
	if err != nil {
		return Artifact{}, fmt.Errorf("signature of %s: %w", name, err)
	}
	keyring, pinned, err := m.keyring()
	if err != nil {
		return Artifact{}, fmt.Errorf("keyring: %w", err)
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return Artifact{}, err
	}
	signer, err := signature.Verify(keyring, pinned, tmp, sig)
	if err != nil {
		return Artifact{}, fmt.Errorf("verify %s.asc: %w", url, err)
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return Artifact{}, err
	}
	if _, err := io.Copy(w, tmp); err != nil {
		return Artifact{}, err
	}
	return Artifact{
		Version: version, OS: goos, Arch: goarch, Source: url,
		Evidence: fmt.Sprintf("sha256 %s; OpenPGP signature by %s", wantSHA256, signature.Fingerprint(signer)),
	}, nil
}
