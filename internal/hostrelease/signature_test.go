package hostrelease

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/kilnhq/terraform-provider-kiln/internal/testenv"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"

	"github.com/kilnhq/terraform-provider-kiln/internal/signature/signaturetest"
)

// newSigner is an OpenPGP key made by the test, valid from an hour ago.
func newSigner(t *testing.T) signaturetest.Signer {
	t.Helper()
	return signaturetest.New(t, time.Now().Add(-time.Hour), 0)
}

func TestFetchArtifact_signature(t *testing.T) {
	binary := []byte("#!/bin/sh\necho release\n")
	tampered := []byte("#!/bin/sh\necho tampered\n")
	signer, other := newSigner(t), newSigner(t)
	goodSig := string(signer.Sign(t, binary, time.Now()))
	url := testenv.ServeFiles(t, map[string][]byte{"/web": binary, "/tampered": tampered, "/web.asc": []byte(goodSig), "/web.sig.html": []byte("<html>")})
	e := &Engine{}
	artifact := func(path string, data []byte) Artifact {
		return Artifact{Version: "1", URL: url + path, SHA256: digestOf(data), PublicKey: signaturetest.PublicKeys(t, signer)}
	}
	fetch := func(a Artifact) error {
		t.Helper()
		_, err := e.fetchArtifact(context.Background(), a, t.TempDir())
		return err
	}

	good := artifact("/web", binary)
	good.Signature = goodSig
	if err := fetch(good); err != nil {
		t.Errorf("good inline signature: %v", err)
	}
	byURL := artifact("/web", binary)
	byURL.SignatureURL = url + "/web.asc"
	got, err := e.fetchArtifact(context.Background(), byURL, t.TempDir())
	if err != nil {
		t.Fatalf("good signature by URL: %v", err)
	}
	if data, err := os.ReadFile(got.path); err != nil || !bytes.Equal(data, binary) || got.size != int64(len(binary)) {
		t.Errorf("fetched %q (%d bytes), %v", data, got.size, err)
	}

	for _, c := range []struct {
		name string
		a    Artifact
		want string
	}{
		{"wrong key", func() Artifact {
			a := artifact("/web", binary)
			a.Signature, a.PublicKey = goodSig, signaturetest.PublicKeys(t, other)
			return a
		}(), "artifact " + url + "/web: the signature does not verify with key " + other.Fingerprint()},
		{"tampered data", func() Artifact {
			a := artifact("/tampered", tampered)
			a.Signature = goodSig
			return a
		}(), "artifact " + url + "/tampered: the signature does not verify with key " + signer.Fingerprint()},
		{"garbage signature", func() Artifact {
			a := artifact("/web", binary)
			a.SignatureURL = url + "/web.sig.html"
			return a
		}(), "the signature does not verify with key " + signer.Fingerprint() + ": bad OpenPGP signature"},
		{"missing signature", func() Artifact {
			a := artifact("/web", binary)
			a.SignatureURL = url + "/none.asc"
			return a
		}(), "signature: download " + url + "/none.asc: 404 Not Found"},
		{"another's signature of the right data", func() Artifact {
			a := artifact("/web", binary)
			a.Signature = string(other.Sign(t, binary, time.Now()))
			return a
		}(), "does not verify with key " + signer.Fingerprint()},
	} {
		err := fetch(c.a)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.HasSuffix(err.Error(), refused) {
			t.Errorf("%s: %v, want %q ending in %q", c.name, err, c.want, refused)
		}
	}
}

func TestSignerFingerprint(t *testing.T) {
	signer, other := newSigner(t), newSigner(t)
	if fp, err := SignerFingerprint(signaturetest.PublicKeys(t, signer)); err != nil || fp != signer.Fingerprint() || len(fp) != 40 {
		t.Errorf("SignerFingerprint = %q, %v; want %s", fp, err, signer.Fingerprint())
	}
	var private bytes.Buffer
	w, err := armor.Encode(&private, openpgp.PrivateKeyType, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := signer.Entity.SerializePrivate(w, nil); err != nil {
		t.Fatal(err)
	}
	_ = w.Close()
	for _, c := range []struct{ name, key, want string }{
		{"garbage", "not a key", "not an armored OpenPGP public key"},
		{"two keys", signaturetest.PublicKeys(t, signer, other), "holds 2 keys"},
		{"private key", private.String(), "is a private key"},
	} {
		if _, err := SignerFingerprint(c.key); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
}
