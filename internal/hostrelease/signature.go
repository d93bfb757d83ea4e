package hostrelease

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/ProtonMail/go-crypto/openpgp"

	"github.com/kilnhq/terraform-provider-kiln/internal/signature"
)

// maxSignature bounds a downloaded signature: a detached signature is a few
// hundred bytes, so anything near this is not one.
const maxSignature = 1 << 20

// SignerFingerprint parses an armored OpenPGP public key, the one key of an
// artifact's signer, and returns its primary key's fingerprint in upper-case
// hex. A private key is refused: it does not belong in a configuration.
func SignerFingerprint(armored string) (string, error) {
	keys, err := signerKey(armored)
	if err != nil {
		return "", err
	}
	return signature.Fingerprint(keys[0]), nil
}

// CheckPublicKey checks an artifact signer's armored public key.
func CheckPublicKey(armored string) error {
	_, err := signerKey(armored)
	return err
}

func signerKey(armored string) (openpgp.EntityList, error) {
	keys, err := openpgp.ReadArmoredKeyRing(strings.NewReader(armored))
	if err != nil {
		return nil, fmt.Errorf("not an armored OpenPGP public key: %w", err)
	}
	if len(keys) != 1 {
		return nil, fmt.Errorf("holds %d keys, want the signer's key alone", len(keys))
	}
	if keys[0].PrivateKey != nil {
		return nil, errors.New("is a private key: give the signer's public key")
	}
	return keys, nil
}

// checkSignature verifies the artifact at path against its detached
// signature (inline, or downloaded from SignatureURL) and its signer's key.
func (e *Engine) checkSignature(ctx context.Context, a Artifact, path string) error {
	keys, err := signerKey(a.PublicKey)
	if err != nil {
		return fmt.Errorf("artifact %s: public key %w: %s", a.source(), err, refused)
	}
	sig := []byte(a.Signature)
	if a.SignatureURL != "" {
		if sig, err = fetchSignature(ctx, a.SignatureURL); err != nil {
			return fmt.Errorf("artifact %s: signature: %w: %s", a.source(), err, refused)
		}
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := signature.Verify(keys, "", f, sig); err != nil {
		return fmt.Errorf("artifact %s: the signature does not verify with key %s: %w: %s", a.source(), signature.Fingerprint(keys[0]), err, refused)
	}
	return nil
}

func fetchSignature(ctx context.Context, url string) ([]byte, error) {
	body, err := get(ctx, url)
	if err != nil {
		return nil, err
	}
	defer body.Close()
	sig, err := io.ReadAll(io.LimitReader(body, maxSignature+1))
	if err != nil {
		return nil, err
	}
	if len(sig) > maxSignature {
		return nil, fmt.Errorf("more than %d bytes: not a detached signature", maxSignature)
	}
	return bytes.TrimSpace(sig), nil
}
