package provider

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/acctest"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"golang.org/x/crypto/ssh"

	"github.com/kilnhq/terraform-provider-kiln/internal/cloudinit"
	"github.com/kilnhq/terraform-provider-kiln/internal/libvirt"
	"github.com/kilnhq/terraform-provider-kiln/internal/remote"
	"github.com/kilnhq/terraform-provider-kiln/internal/testenv"
)

// sharedHost is the guest the Go host behaviour tests of one test process
// share. An emulated guest takes a minute or more to boot, so each process
// boots one, and each test starts where the previous one left the host: the
// tests' kiln_go_host keeps what it installed on destroy, and every test's
// first step applies the state it starts from.
type sharedHost struct {
	vm         libvirt.VM
	uri        string
	keyFile    string // the login key; keyFile+".pub" is its public half
	knownHosts string // the guest's pinned host key, for the provider's ssh block
	signer     ssh.Signer
	slot       *testenv.GuestSlot // where its state was saved or restored from, released on remove
}

var (
	sharedHostOnce sync.Once
	sharedHostVal  sharedHost
	sharedHostErr  error
	sharedHostTook time.Duration
	sharedHostUsed atomic.Bool
)

// prebootSharedHost starts the shared guest's boot in the background, so that
// it overlaps whatever runs before the first Go host test. The guest processes
// of make testacc ask for it (KILN_TEST_PREBOOT): both run Go host tests.
func prebootSharedHost() {
	sharedHostUsed.Store(true)
	go startSharedHost()
}

// startSharedHost boots the shared guest, once per process.
func startSharedHost() {
	sharedHostUsed.Store(true)
	sharedHostOnce.Do(func() {
		start := time.Now()
		bed, err := testenv.LibvirtEnv()
		if err != nil {
			sharedHostErr = fmt.Errorf("libvirt test bed: %w", err)
			return
		}
		sharedHostVal, sharedHostErr = bootSharedHost(bed)
		sharedHostTook = time.Since(start)
	})
}

// goHostGuest returns this process's shared guest, booting it on first use or
// waiting for the boot TestMain started.
func goHostGuest(t *testing.T) sharedHost {
	t.Helper()
	start := time.Now()
	startSharedHost()
	if sharedHostErr != nil {
		t.Fatalf("shared guest: %v", sharedHostErr)
	}
	if waited := time.Since(start); waited > time.Second {
		t.Logf("shared guest %s ready in %s; this test waited %s for it", sharedHostVal.vm.Name,
			sharedHostTook.Round(time.Second), waited.Round(time.Second))
	}
	return sharedHostVal
}

// sharedGuestSpec describes the guests bootSharedHost makes, for the slots
// their saved states are kept in.
const sharedGuestSpec = "kiln-host: 2 vCPU, 1024 MiB, 6 GiB disk, user-mode network, login key, v1"

// bootSharedHost brings up a freshly booted guest: restored from the state
// saved after an earlier process's boot when there is one (seconds), else
// booted (one to three minutes under emulation) and saved for the next.
func bootSharedHost(bed testenv.LibvirtBed) (sharedHost, error) {
	dir, err := os.MkdirTemp("", "kiln-shared-host-")
	if err != nil {
		return sharedHost{}, err
	}
	slot, err := bed.ClaimGuestSlot(sharedGuestSpec)
	if err != nil {
		fmt.Fprintf(os.Stderr, "shared guest: no saved state kept: %v\n", err)
	}
	if slot != nil {
		host, err := restoreSharedHost(bed, slot, dir)
		if err == nil {
			return host, nil
		}
		if !errors.Is(err, testenv.ErrNoSavedGuest) {
			fmt.Fprintf(os.Stderr, "shared guest: booting one, the saved one did not restore: %v\n", err)
		}
	}
	host, err := bootFreshHost(bed, dir)
	host.slot = slot
	if err != nil {
		host.remove()
		return sharedHost{}, err
	}
	if slot != nil {
		if err := host.save(); err != nil {
			fmt.Fprintf(os.Stderr, "shared guest: not saved for the next run: %v\n", err)
		}
	}
	return host, nil
}

// bootFreshHost boots a guest from the base volume with a new login key in dir.
func bootFreshHost(bed testenv.LibvirtBed, dir string) (sharedHost, error) {
	keyFile, signer, err := newLoginKeyFile(dir)
	if err != nil {
		return sharedHost{}, err
	}
	name := acctest.RandomWithPrefix("kiln-host")
	client := libvirt.NewClient(bed.URI)
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	vm, err := client.CreateVM(ctx, libvirt.VM{
		Name: name, Type: bed.DomainType, Pool: bed.Pool, BaseVolume: bed.BaseVolume,
		DiskBytes: 6 << 30, VCPU: 2, MemoryMiB: 1024, Running: true, BootTimeout: 3 * time.Minute,
		Interfaces: []libvirt.Interface{{UserMode: true}},
		CloudInit: cloudinit.Config{Hostname: name,
			SSHAuthorizedKeys: []string{remote.FormatPublicKey(signer.PublicKey())}},
	})
	host := sharedHost{vm: vm, uri: bed.URI, keyFile: keyFile, knownHosts: filepath.Join(dir, "known_hosts"), signer: signer}
	if err != nil {
		return host, err
	}
	return host, host.writeKnownHosts()
}

// save keeps the guest in its slot, its page cache dropped first so that the
// saved memory is what the boot left, not what the copy-in read.
func (h sharedHost) save() error {
	if _, err := loginOutput(h.vm.SSHHost, h.vm.SSHPort, h.vm.SSHHostKey, h.signer,
		"sync && echo 3 | sudo -n tee /proc/sys/vm/drop_caches >/dev/null"); err != nil {
		return err
	}
	return h.slot.Save(h.vm.Name, []string{h.vm.RootVolume, h.vm.SeedVolume}, []string{h.keyFile, h.keyFile + ".pub"})
}

// restoreSharedHost restores the guest saved in slot, with its login key
// copied into dir, and checks that it answers.
func restoreSharedHost(bed testenv.LibvirtBed, slot *testenv.GuestSlot, dir string) (sharedHost, error) {
	name, err := slot.Restore(dir)
	if err != nil {
		return sharedHost{}, err
	}
	client := libvirt.NewClient(bed.URI)
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	host := sharedHost{uri: bed.URI, keyFile: filepath.Join(dir, "id_ed25519"), knownHosts: filepath.Join(dir, "known_hosts"), slot: slot}
	host.vm, err = client.ReadVM(ctx, name)
	if err == nil {
		host.signer, err = readLoginKey(host.keyFile)
	}
	if err == nil {
		err = host.writeKnownHosts()
	}
	if err == nil {
		_, err = loginOutput(host.vm.SSHHost, host.vm.SSHPort, host.vm.SSHHostKey, host.signer, "true")
	}
	if err != nil {
		slot.Discard()
		return sharedHost{}, err
	}
	return host, nil
}

// readLoginKey reads the private key newLoginKeyFile wrote.
func readLoginKey(path string) (ssh.Signer, error) {
	pemBytes, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ssh.ParsePrivateKey(pemBytes)
}

// writeKnownHosts pins the guest's host key for the provider's ssh block.
func (h sharedHost) writeKnownHosts() error {
	line := fmt.Sprintf("[%s]:%d %s\n", h.vm.SSHHost, h.vm.SSHPort, h.vm.SSHHostKey)
	return os.WriteFile(h.knownHosts, []byte(line), 0o644)
}

// remove deletes the guest and its volumes, and the login key, and releases
// its slot.
func (h sharedHost) remove() {
	defer h.slot.Release()
	if h.vm.Name != "" {
		client := libvirt.NewClient(h.uri)
		defer client.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		if err := client.DeleteVM(ctx, h.vm); err != nil {
			fmt.Fprintf(os.Stderr, "remove shared guest %s: %v\n", h.vm.Name, err)
		}
	}
	if h.keyFile != "" {
		_ = os.RemoveAll(filepath.Dir(h.keyFile))
	}
}

// removeSharedHost removes this process's shared guest, if one was booted,
// after waiting for a boot still under way.
func removeSharedHost() {
	if !sharedHostUsed.Load() {
		return
	}
	startSharedHost()
	if sharedHostErr == nil {
		sharedHostVal.remove()
	}
}

// check runs cmd on the guest as the login user and compares its output.
func (h sharedHost) check(cmd, want string) resource.TestCheckFunc {
	return func(*terraform.State) error {
		got, err := loginOutput(h.vm.SSHHost, h.vm.SSHPort, h.vm.SSHHostKey, h.signer, cmd)
		if err != nil {
			return err
		}
		if got != want {
			return fmt.Errorf("host: %q printed %q, want %q", cmd, got, want)
		}
		return nil
	}
}

// loginOutput runs cmd as the login user (a fresh login, so limits apply) on
// the guest at host:port, reached with its pinned host key, and returns the
// output, trimmed.
func loginOutput(host string, port int, hostKeyLine string, signer ssh.Signer, cmd string) (string, error) {
	hostKey, err := remote.ParsePublicKey(hostKeyLine)
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := remote.Dial(ctx, remote.Target{Addr: fmt.Sprintf("%s:%d", host, port), User: "debian",
		Auth: []ssh.AuthMethod{remote.SignerAuth(signer)}, HostKey: remote.PinHostKey(hostKey)})
	if err != nil {
		return "", err
	}
	defer c.Close()
	out, err := c.RunAsUser(ctx, "check host", cmd)
	return strings.TrimSpace(out), err
}

// newLoginKeyFile writes a fresh ed25519 login key pair into dir.
func newLoginKeyFile(dir string) (string, ssh.Signer, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", nil, err
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		return "", nil, err
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return "", nil, err
	}
	path := filepath.Join(dir, "id_ed25519")
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		return "", nil, err
	}
	pub := remote.FormatPublicKey(signer.PublicKey()) + "\n"
	return path, signer, os.WriteFile(path+".pub", []byte(pub), 0o644)
}
