package libvirt

import (
	"bytes"
	"testing"

	"github.com/kilnhq/terraform-provider-kiln/internal/remote"
)

func TestSeedISOWithoutHostKey(t *testing.T) {
	key, err := remote.NewHostKey()
	if err != nil {
		t.Fatal(err)
	}
	vm := sampleVM()
	first, err := seedISO(vm, key)
	if err != nil {
		t.Fatal(err)
	}
	scrubbed, err := seedISO(vm, remote.HostKey{})
	if err != nil {
		t.Fatal(err)
	}
	const pem = "BEGIN OPENSSH PRIVATE KEY"
	if !bytes.Contains(first, []byte(pem)) {
		t.Fatal("the first boot's seed does not hold the host key")
	}
	if bytes.Contains(scrubbed, []byte(pem)) {
		t.Error("the scrubbed seed still holds a private key")
	}
	if !bytes.Contains(scrubbed, []byte("instance-id: "+vm.UUID)) {
		t.Error("the scrubbed seed lost the instance ID, so cloud-init would take the guest for a new instance")
	}
	if len(scrubbed) > len(first) {
		t.Errorf("the scrubbed seed (%d bytes) outgrew the first (%d bytes)", len(scrubbed), len(first))
	}
}
