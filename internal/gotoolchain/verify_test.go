package gotoolchain

import (
	"bytes"
	"encoding/hex"
	"errors"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// testSigner is an OpenPGP identity made by the test: a primary key and a
// signing subkey that lives for subkeyLife from created.
type testSigner struct {
	entity  *openpgp.Entity
	created time.Time
}

func newTestSigner(t *testing.T, created time.Time, subkeyLife time.Duration) testSigner {
	t.Helper()
	config := &packet.Config{Time: func() time.Time { return created }, Algorithm: packet.PubKeyAlgoEdDSA}
	e, err := openpgp.NewEntity("Kiln Test Release Signer", "", "release@kiln.test", config)
	if err != nil {
		t.Fatal(err)
	}
	sub := *config
	sub.KeyLifetimeSecs = uint32(subkeyLife / time.Second)
	if err := e.AddSigningSubkey(&sub); err != nil {
		t.Fatal(err)
	}
	return testSigner{entity: e, created: created}
}

func (s testSigner) fingerprint() string { return hex.EncodeToString(s.entity.PrimaryKey.Fingerprint) }

func (s testSigner) keyring() openpgp.EntityList { return openpgp.EntityList{s.entity} }

func (s testSigner) sign(t *testing.T, data []byte, at time.Time) []byte {
	t.Helper()
	var sig bytes.Buffer
	config := &packet.Config{Time: func() time.Time { return at }}
	if err := openpgp.ArmoredDetachSign(&sig, s.entity, bytes.NewReader(data), config); err != nil {
		t.Fatal(err)
	}
	return sig.Bytes()
}

func TestVerifySignature(t *testing.T) {
	created := time.Now().Add(-48 * time.Hour)
	good := newTestSigner(t, created, 10*365*24*time.Hour)
	other := newTestSigner(t, created, 10*365*24*time.Hour)
	archive := []byte("go1.99.0.linux-amd64.tar.gz contents")
	sig := good.sign(t, archive, created.Add(time.Hour))

	t.Run("good", func(t *testing.T) {
		if _, err := VerifySignature(good.keyring(), good.fingerprint(), bytes.NewReader(archive), sig); err != nil {
			t.Fatalf("VerifySignature: %v", err)
		}
	})
	t.Run("tampered archive", func(t *testing.T) {
		tampered := append(bytes.Clone(archive), '!')
		_, err := VerifySignature(good.keyring(), good.fingerprint(), bytes.NewReader(tampered), sig)
		if !errors.Is(err, ErrBadSignature) {
			t.Fatalf("err = %v, want ErrBadSignature", err)
		}
	})
	t.Run("signer not pinned", func(t *testing.T) {
		both := openpgp.EntityList{good.entity, other.entity}
		_, err := VerifySignature(both, other.fingerprint(), bytes.NewReader(archive), sig)
		if !errors.Is(err, ErrWrongSigner) {
			t.Fatalf("err = %v, want ErrWrongSigner", err)
		}
	})
	t.Run("signer not in keyring", func(t *testing.T) {
		_, err := VerifySignature(other.keyring(), "", bytes.NewReader(archive), sig)
		if !errors.Is(err, ErrBadSignature) {
			t.Fatalf("err = %v, want ErrBadSignature", err)
		}
	})
	t.Run("garbage signature", func(t *testing.T) {
		_, err := VerifySignature(good.keyring(), "", bytes.NewReader(archive), []byte("not a signature"))
		if !errors.Is(err, ErrBadSignature) {
			t.Fatalf("err = %v, want ErrBadSignature", err)
		}
	})
}

// A release signed while its subkey was valid must still verify after the
// subkey expired: that is how old Go releases stay installable.
func TestVerifySignatureJudgesSubkeyAtSigningTime(t *testing.T) {
	created := time.Now().Add(-30 * 24 * time.Hour)
	signer := newTestSigner(t, created, 24*time.Hour) // expired 29 days ago
	archive := []byte("old release")
	sig := signer.sign(t, archive, created.Add(time.Hour))

	if _, err := VerifySignature(signer.keyring(), signer.fingerprint(), bytes.NewReader(archive), sig); err != nil {
		t.Fatalf("VerifySignature of a signature made while the subkey was valid: %v", err)
	}
	// Judged now, as a naive check would, the same signature fails.
	body, err := armorBody(sig)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := openpgp.CheckDetachedSignature(signer.keyring(), bytes.NewReader(archive), bytes.NewReader(body), nil); err == nil {
		t.Fatal("expected the expired subkey to fail when judged at the current time")
	}
}
