// Package signaturetest makes OpenPGP signers for tests.
package signaturetest

import (
	"bytes"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"

	"github.com/kilnhq/terraform-provider-kiln/internal/signature"
)

// Signer is an OpenPGP identity made by a test: a primary key and a signing
// subkey.
type Signer struct{ Entity *openpgp.Entity }

// New makes a signer whose keys are created at created and whose signing
// subkey lives for subkeyLife (for ever when zero).
func New(t testing.TB, created time.Time, subkeyLife time.Duration) Signer {
	t.Helper()
	config := &packet.Config{Time: func() time.Time { return created }, Algorithm: packet.PubKeyAlgoEdDSA}
	e, err := openpgp.NewEntity("Kiln Test Signer", "", "signer@kiln.test", config)
	if err != nil {
		t.Fatal(err)
	}
	sub := *config
	sub.KeyLifetimeSecs = uint32(subkeyLife / time.Second)
	if err := e.AddSigningSubkey(&sub); err != nil {
		t.Fatal(err)
	}
	return Signer{e}
}

// Fingerprint is the signer's primary key fingerprint, as signature.Fingerprint
// spells it.
func (s Signer) Fingerprint() string { return signature.Fingerprint(s.Entity) }

// Keyring holds the signer's keys alone.
func (s Signer) Keyring() openpgp.EntityList { return openpgp.EntityList{s.Entity} }

// Sign is data's armored detached signature, made at the time at.
func (s Signer) Sign(t testing.TB, data []byte, at time.Time) []byte {
	t.Helper()
	var sig bytes.Buffer
	config := &packet.Config{Time: func() time.Time { return at }}
	if err := openpgp.ArmoredDetachSign(&sig, s.Entity, bytes.NewReader(data), config); err != nil {
		t.Fatal(err)
	}
	return sig.Bytes()
}

// PublicKeys is the signers' public keys in one armored block.
func PublicKeys(t testing.TB, signers ...Signer) string {
	t.Helper()
	var b bytes.Buffer
	w, err := armor.Encode(&b, openpgp.PublicKeyType, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range signers {
		if err := s.Entity.Serialize(w); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}
