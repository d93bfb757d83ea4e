// Package signature checks detached OpenPGP signatures: against a keyring,
// with the signer's primary key optionally pinned by fingerprint, and with key
// validity judged at the time the signature was made.
package signature

import (
	"bytes"
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

// Verification errors, distinguishable by errors.Is.
var (
	ErrBad         = errors.New("bad OpenPGP signature")
	ErrWrongSigner = errors.New("signed by a key other than the pinned one")
)

// ParseKeyring reads an armored or binary OpenPGP public keyring.
func ParseKeyring(data []byte) (openpgp.EntityList, error) {
	if bytes.Contains(data, []byte("-----BEGIN PGP")) {
		return openpgp.ReadArmoredKeyRing(bytes.NewReader(data))
	}
	return openpgp.ReadKeyRing(bytes.NewReader(data))
}

// Verify checks a detached signature (armored or binary) of signed against
// keyring, and that the signing key belongs to the primary key with
// fingerprint pinned (hex, spaces ignored; empty accepts any key in keyring).
// Key validity is judged at the signature's creation time, so data signed by a
// subkey that has since expired still verifies.
func Verify(keyring openpgp.EntityList, pinned string, signed io.Reader, sig []byte) (*openpgp.Entity, error) {
	body, err := armorBody(sig)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBad, err)
	}
	p, err := signaturePacket(bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBad, err)
	}
	config := &packet.Config{Time: func() time.Time { return p.CreationTime }}
	signer, err := openpgp.CheckDetachedSignature(keyring, signed, bytes.NewReader(body), config)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBad, err)
	}
	if pinned != "" {
		want, got := NormalizeFingerprint(pinned), Fingerprint(signer)
		if got != want {
			return signer, fmt.Errorf("%w: signer %s, pinned %s", ErrWrongSigner, got, want)
		}
	}
	return signer, nil
}

// CheckArmored checks that text is an armored OpenPGP signature, without
// verifying it.
func CheckArmored(text string) error {
	block, err := armor.Decode(strings.NewReader(text))
	if err != nil {
		return fmt.Errorf("not an armored OpenPGP signature: %w", err)
	}
	if block.Type != openpgp.SignatureType {
		return fmt.Errorf("an armored %q, not a %q", block.Type, openpgp.SignatureType)
	}
	if _, err := signaturePacket(block.Body); err != nil {
		return fmt.Errorf("not an OpenPGP signature: %w", err)
	}
	return nil
}

// Fingerprint is the fingerprint of e's primary key in upper-case hex.
func Fingerprint(e *openpgp.Entity) string {
	return strings.ToUpper(hex.EncodeToString(e.PrimaryKey.Fingerprint))
}

// NormalizeFingerprint spells a fingerprint as Fingerprint does: hex digits in
// upper case, without the spaces people group them with.
func NormalizeFingerprint(fp string) string {
	return strings.ToUpper(strings.ReplaceAll(fp, " ", ""))
}

// armorBody returns the binary packets of an armored signature, or data as is.
func armorBody(data []byte) ([]byte, error) {
	if !bytes.Contains(data, []byte("-----BEGIN PGP SIGNATURE")) {
		return data, nil
	}
	block, err := armor.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	return io.ReadAll(block.Body)
}

// signaturePacket reads the packet a detached signature starts with.
func signaturePacket(r io.Reader) (*packet.Signature, error) {
	p, err := packet.NewReader(r).Next()
	if err != nil {
		return nil, err
	}
	s, ok := p.(*packet.Signature)
	if !ok {
		return nil, errors.New("not a signature packet")
	}
	return s, nil
}
