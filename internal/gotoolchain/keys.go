package gotoolchain

import (
	_ "embed"

	"github.com/ProtonMail/go-crypto/openpgp"

	"github.com/kilnhq/terraform-provider-kiln/internal/signature"
)

// GoReleaseKeyFingerprint is the primary key of "Google Inc. (Linux Packages
// Signing Authority)", which signs every Go release tarball. Its signing subkeys
// rotate; the primary key is what is pinned.
const GoReleaseKeyFingerprint = "EB4C1BFD4F042F6DDDCCEC917721F63BD38B4796"

//go:embed keys/google-linux-packages-signing-key.asc
var goReleaseKeyBundle []byte

// GoReleaseKeyring is the embedded public key bundle of the Go release signers.
func GoReleaseKeyring() (openpgp.EntityList, error) {
	return signature.ParseKeyring(goReleaseKeyBundle)
}
