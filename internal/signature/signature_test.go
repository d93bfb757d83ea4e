package signature_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"

	"github.com/kilnhq/terraform-provider-kiln/internal/signature"
	"github.com/kilnhq/terraform-provider-kiln/internal/signature/signaturetest"
)

func TestVerify(t *testing.T) {
	created := time.Now().Add(-48 * time.Hour)
	good := signaturetest.New(t, created, 10*365*24*time.Hour)
	other := signaturetest.New(t, created, 10*365*24*time.Hour)
	archive := []byte("go1.99.0.linux-amd64.tar.gz contents")
	sig := good.Sign(t, archive, created.Add(time.Hour))

	t.Run("good", func(t *testing.T) {
		if _, err := signature.Verify(good.Keyring(), good.Fingerprint(), bytes.NewReader(archive), sig); err != nil {
			t.Fatalf("Verify: %v", err)
		}
	})
	t.Run("pinned in lower case with spaces", func(t *testing.T) {
		var spaced []string
		for fp := strings.ToLower(good.Fingerprint()); fp != ""; fp = fp[4:] {
			spaced = append(spaced, fp[:4])
		}
		if _, err := signature.Verify(good.Keyring(), strings.Join(spaced, " "), bytes.NewReader(archive), sig); err != nil {
			t.Fatalf("Verify: %v", err)
		}
	})
	t.Run("tampered archive", func(t *testing.T) {
		tampered := append(bytes.Clone(archive), '!')
		_, err := signature.Verify(good.Keyring(), good.Fingerprint(), bytes.NewReader(tampered), sig)
		if !errors.Is(err, signature.ErrBad) {
			t.Fatalf("err = %v, want ErrBad", err)
		}
	})
	t.Run("signer not pinned", func(t *testing.T) {
		both := openpgp.EntityList{good.Entity, other.Entity}
		_, err := signature.Verify(both, other.Fingerprint(), bytes.NewReader(archive), sig)
		if !errors.Is(err, signature.ErrWrongSigner) {
			t.Fatalf("err = %v, want ErrWrongSigner", err)
		}
	})
	t.Run("signer not in keyring", func(t *testing.T) {
		_, err := signature.Verify(other.Keyring(), "", bytes.NewReader(archive), sig)
		if !errors.Is(err, signature.ErrBad) {
			t.Fatalf("err = %v, want ErrBad", err)
		}
	})
	t.Run("garbage signature", func(t *testing.T) {
		_, err := signature.Verify(good.Keyring(), "", bytes.NewReader(archive), []byte("not a signature"))
		if !errors.Is(err, signature.ErrBad) {
			t.Fatalf("err = %v, want ErrBad", err)
		}
	})
}

// Data signed while its subkey was valid must still verify after the subkey
// expired: that is how old Go releases stay installable.
func TestVerifyJudgesSubkeyAtSigningTime(t *testing.T) {
	created := time.Now().Add(-30 * 24 * time.Hour)
	signer := signaturetest.New(t, created, 24*time.Hour) // expired 29 days ago
	archive := []byte("old release")
	sig := signer.Sign(t, archive, created.Add(time.Hour))

	if _, err := signature.Verify(signer.Keyring(), signer.Fingerprint(), bytes.NewReader(archive), sig); err != nil {
		t.Fatalf("Verify of a signature made while the subkey was valid: %v", err)
	}
	// Judged now, as a naive check would, the same signature fails.
	if _, err := openpgp.CheckArmoredDetachedSignature(signer.Keyring(), bytes.NewReader(archive), bytes.NewReader(sig), nil); err == nil {
		t.Fatal("expected the expired subkey to fail when judged at the current time")
	}
}

func TestParseKeyring(t *testing.T) {
	signer := signaturetest.New(t, time.Now().Add(-time.Hour), 0)
	var binary bytes.Buffer
	if err := signer.Entity.Serialize(&binary); err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{
		"armored": []byte(signaturetest.PublicKeys(t, signer)),
		"binary":  binary.Bytes(),
	} {
		keys, err := signature.ParseKeyring(data)
		if err != nil || len(keys) != 1 || signature.Fingerprint(keys[0]) != signer.Fingerprint() {
			t.Errorf("%s: %d keys, %v; want the signer's key", name, len(keys), err)
		}
	}
	if _, err := signature.ParseKeyring([]byte("not a keyring")); err == nil {
		t.Error("garbage parsed as a keyring")
	}
}

func TestCheckArmoredSignature(t *testing.T) {
	signer := signaturetest.New(t, time.Now().Add(-time.Hour), 0)
	if err := signature.CheckArmored(string(signer.Sign(t, []byte("x"), time.Now()))); err != nil {
		t.Errorf("a signature: %v", err)
	}
	for _, c := range []struct{ name, text, want string }{
		{"garbage", "garbage", "not an armored OpenPGP signature"},
		{"a key", signaturetest.PublicKeys(t, signer), `not a "PGP SIGNATURE"`},
	} {
		if err := signature.CheckArmored(c.text); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
}
