package gotoolchain

import (
	"bytes"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// GoReleaseKeyFingerprint is the primary key of "Google Inc. (Linux Packages
// Signing Authority)", which signs every Go release tarball. Its signing subkeys
// rotate; the primary key is what is pinned.
const GoReleaseKeyFingerprint = "EB4C1BFD4F042F6DDDCCEC917721F63BD38B4796"

//go:embed keys/google-linux-packages-signing-key.asc
var goReleaseKeyBundle []byte

// GoReleaseKeyring is the embedded public key bundle of the Go release signers.
func GoReleaseKeyring() (openpgp.EntityList, error) {
	return ParseKeyring(goReleaseKeyBundle)
}

// ParseKeyring reads an armored or binary OpenPGP public keyring.
func ParseKeyring(data []byte) (openpgp.EntityList, error) {
	if bytes.Contains(data, []byte("-----BEGIN PGP")) {
		return openpgp.ReadArmoredKeyRing(bytes.NewReader(data))
	}
	return openpgp.ReadKeyRing(bytes.NewReader(data))
}

// Signature verification errors, distinguishable by errors.Is.
var (
	ErrBadSignature = errors.New("bad OpenPGP signature")
	ErrWrongSigner  = errors.New("signed by a key other than the pinned one")
)

// VerifySignature checks a detached signature (armored or binary) of signed
// against keyring, and that the signing key belongs to the primary key with
// fingerprint pinned (hex, spaces ignored; empty accepts any key in keyring).
// Key validity is judged at the signature's creation time, so releases signed by
// a subkey that has since expired still verify.
func VerifySignature(keyring openpgp.EntityList, pinned string, signed io.Reader, signature []byte) (*openpgp.Entity, error) {
	sigData, err := armorBody(signature)
	if err != nil {
		return nil, err
	}
	created, err := signatureTime(sigData)
	if err != nil {
		return nil, err
	}
	config := &packet.Config{Time: func() time.Time { return created }}
	signer, err := openpgp.CheckDetachedSignature(keyring, signed, bytes.NewReader(sigData), config)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadSignature, err)
	}
	if pinned != "" {
		want := normalizeFingerprint(pinned)
		got := strings.ToUpper(hex.EncodeToString(signer.PrimaryKey.Fingerprint))
		if got != want {
			return signer, fmt.Errorf("%w: signer %s, pinned %s", ErrWrongSigner, got, want)
		}
	}
	return signer, nil
}

// normalizeFingerprint spells a fingerprint as hex digits in upper case,
// without the spaces people group them with.
func normalizeFingerprint(fp string) string { return strings.ToUpper(strings.ReplaceAll(fp, " ", "")) }

// armorBody returns the binary packets of an armored signature, or data as is.
func armorBody(data []byte) ([]byte, error) {
	if !bytes.Contains(data, []byte("-----BEGIN PGP SIGNATURE")) {
		return data, nil
	}
	block, err := armor.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadSignature, err)
	}
	body, err := io.ReadAll(block.Body)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadSignature, err)
	}
	return body, nil
}

func signatureTime(sig []byte) (time.Time, error) {
	p, err := packet.NewReader(bytes.NewReader(sig)).Next()
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: %v", ErrBadSignature, err)
	}
	s, ok := p.(*packet.Signature)
	if !ok {
		return time.Time{}, fmt.Errorf("%w: not a signature packet", ErrBadSignature)
	}
	return s.CreationTime, nil
}
