package gotoolchain

import (
	"encoding/hex"
	"strings"
	"testing"
)

func TestEmbeddedKeyringHoldsThePinnedPrimaryKey(t *testing.T) {
	keyring, err := GoReleaseKeyring()
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range keyring {
		if strings.EqualFold(hex.EncodeToString(e.PrimaryKey.Fingerprint), GoReleaseKeyFingerprint) {
			return
		}
	}
	t.Fatalf("no key with fingerprint %s among %d keys", GoReleaseKeyFingerprint, len(keyring))
}
