package provider

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/acctest"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"
	"golang.org/x/crypto/ssh"

	"github.com/kilnhq/terraform-provider-kiln/internal/remote"
	"github.com/kilnhq/terraform-provider-kiln/internal/testenv"
)

const hostAddr = "kiln_go_host.test"

type goHostConfig struct {
	bed        testenv.LibvirtBed
	name       string
	keyFile    string
	knownHosts string
	versions   []string
	mirror     *testenv.GoMirror
	// keyringFile holds the mirror's armored public keys.
	keyringFile string
}

func (c goHostConfig) String() string {
	source := `source = "module_proxy"`
	if c.mirror != nil {
		source = fmt.Sprintf(`source          = "dl"
    mirror_url      = %q
    index_url       = %q
    key_fingerprint = %q
    keyring         = file(%q)`, c.mirror.URL, c.mirror.IndexURL, c.mirror.Fingerprint, c.keyringFile)
	}
	return fmt.Sprintf(`
provider "kiln" {
  libvirt {
    uri = %[1]q
  }
  ssh {
    user             = "debian"
    private_key      = file(%[5]q)
    known_hosts_file = %[6]q
  }
}

resource "kiln_libvirt_vm" "test" {
  name          = %[2]q
  pool          = %[3]q
  base_volume   = %[4]q
  vcpu          = 2
  memory_mib    = 1024
  disk_size_gib = 6

  network_interface {
    user_mode = true
  }

  cloud_init {
    hostname            = %[2]q
    ssh_authorized_keys = [trimspace(file(%[7]q))]
  }
}

resource "kiln_go_host" "test" {
  ssh {
    host     = kiln_libvirt_vm.test.ssh_host
    port     = kiln_libvirt_vm.test.ssh_port
    host_key = kiln_libvirt_vm.test.ssh_host_public_key
  }

  go {
    versions = %[8]s
    default  = "1.24.4"
    %[9]s
  }

  env = {
    GOPROXY   = "https://proxy.golang.org"
    GOPRIVATE = "git.kiln.test/*"
  }

  hardening {
    swap_off  = true
    nofile    = 65536
    sysctls   = { "vm.swappiness" = "1" }
    cgroup_v2 = "verify"
  }

  verify {
    build = true
  }
}
`, c.bed.URI, c.name, c.bed.Pool, c.bed.BaseVolume, c.keyFile, c.knownHosts, c.keyFile+".pub", hclList(c.versions), source)
}

func hclList(values []string) string {
	quoted := make([]string, len(values))
	for i, v := range values {
		quoted[i] = fmt.Sprintf("%q", v)
	}
	return "[" + strings.Join(quoted, ", ") + "]"
}

// TestAccGoHost_lifecycle provisions a real guest: two toolchains through the
// real module proxy and checksum database, a third through a local mirror of
// tarballs the test signed, drift repaired, a bad signature refused with the
// host left as it was, and import.
func TestAccGoHost_lifecycle(t *testing.T) {
	testAccPreCheck(t)
	bed := testenv.Libvirt(t)
	mirror := testenv.StartGoMirror(t, []string{"1.24.4", "1.23.10", "1.22.12", "1.21.13"}, "1.21.13")
	dir := t.TempDir()
	keyFile, signer := writeLoginKey(t, dir)
	cfg := goHostConfig{bed: bed, name: acctest.RandomWithPrefix("kiln-host"), keyFile: keyFile,
		knownHosts: filepath.Join(dir, "known_hosts"), versions: []string{"1.24.4", "1.23.10"}}
	withMirror := cfg
	withMirror.mirror = &mirror
	withMirror.keyringFile = filepath.Join(dir, "mirror-keys.asc")
	if err := os.WriteFile(withMirror.keyringFile, []byte(mirror.Keyring), 0o644); err != nil {
		t.Fatal(err)
	}
	withMirror.versions = []string{"1.24.4", "1.23.10", "1.22.12"}
	badSignature := withMirror
	badSignature.versions = []string{"1.24.4", "1.23.10", "1.22.12", "1.21.13"}
	guest := func(cmd, want string) resource.TestCheckFunc { return checkHost(signer, cmd, want) }

	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		CheckDestroy:             checkVMGone(bed, cfg.name),
		Steps: []resource.TestStep{
			{
				Config: cfg.String(),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(hostAddr, tfjsonpath.New("verification").AtMapKey("build_output"), knownvalue.StringExact("kiln-verify-ok")),
					statecheck.ExpectKnownValue(hostAddr, tfjsonpath.New("verification").AtMapKey("go_version"), knownvalue.StringExact("go version go1.24.4 linux/amd64")),
					statecheck.ExpectKnownValue(hostAddr, tfjsonpath.New("facts").AtMapKey("cgroup_mode"), knownvalue.StringExact("cgroup2fs")),
					statecheck.ExpectKnownValue(hostAddr, tfjsonpath.New("installed"), knownvalue.ListSizeExact(2)),
				},
				Check: resource.ComposeTestCheckFunc(
					writeKnownHosts(cfg.knownHosts),
					guest("go version", "go version go1.24.4 linux/amd64"),
					guest("/usr/local/go/1.23.10/bin/go version", "go version go1.23.10 linux/amd64"),
					guest("go env GOPROXY GOPRIVATE GOSUMDB", "https://proxy.golang.org\ngit.kiln.test/*\nsum.golang.org"),
					guest("tail -n +2 /proc/swaps | wc -l", "0"),
					guest("ulimit -n", "65536"),
					guest("stat -fc %T /sys/fs/cgroup", "cgroup2fs"),
					guest("cat /proc/sys/vm/swappiness", "1"),
				),
			},
			{
				// A third version from the signed local mirror: only it is fetched and installed.
				Config: withMirror.String(),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction(hostAddr, plancheck.ResourceActionUpdate)},
				},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(hostAddr, tfjsonpath.New("installed"), knownvalue.ListSizeExact(3)),
				},
				Check: guest("/usr/local/go/1.22.12/bin/go version", "go version go1.22.12 linux/amd64"),
			},
			{
				// Drift: swap back on, bin/go overwritten, limits edited.
				PreConfig: func() {
					runOnHost(t, signer, cfg.knownHosts, `set -e
fallocate -l 32M /swapfile && chmod 600 /swapfile && mkswap -q /swapfile && swapon /swapfile
echo broken >/usr/local/go/1.23.10/bin/go
sed -i 's/65536/1024/' /etc/security/limits.d/90-kiln.conf`)
				},
				Config: withMirror.String(),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction(hostAddr, plancheck.ResourceActionUpdate)},
				},
				Check: resource.ComposeTestCheckFunc(
					guest("tail -n +2 /proc/swaps | wc -l", "0"),
					guest("/usr/local/go/1.23.10/bin/go version", "go version go1.23.10 linux/amd64"),
					guest("ulimit -n", "65536"),
				),
			},
			{
				Config: withMirror.String(),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
			},
			{
				// A tarball signed by another key than the pinned one is refused
				// before it reaches the host.
				Config:      badSignature.String(),
				ExpectError: regexp.MustCompile(`(?s)go1\.21\.13.*signed by a key other than the pinned one`),
			},
			{
				Config: withMirror.String(),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
				Check: resource.ComposeTestCheckFunc(
					guest("test -e /usr/local/go/1.21.13 && echo present || echo absent", "absent"),
					guest("ls -A /usr/local/go | grep -c kiln-tmp || true", "0"),
					guest("go version", "go version go1.24.4 linux/amd64"),
				),
			},
			{
				ResourceName:      hostAddr,
				ImportState:       true,
				ImportStateIdFunc: func(s *terraform.State) (string, error) { return s.RootModule().Resources[hostAddr].Primary.ID, nil },
				ImportStateVerify: true,
				ImportStateVerifyIgnore: []string{
					"timeouts", "ssh", "env", "hardening", "verify", "verification", "go.source", "go.mirror_url",
					"go.index_url", "go.keyring", "go.key_fingerprint", "go.versions",
				},
			},
		},
	})
}

func writeLoginKey(t *testing.T, dir string) (string, ssh.Signer) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "id_ed25519")
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path+".pub", []byte(remote.FormatPublicKey(signer.PublicKey())+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return path, signer
}

// writeKnownHosts records the VM's pinned host key for the steps that reach
// the host outside Terraform and for import.
func writeKnownHosts(file string) resource.TestCheckFunc {
	return func(s *terraform.State) error {
		a := s.RootModule().Resources[vmAddr].Primary.Attributes
		line := fmt.Sprintf("[%s]:%s %s\n", a["ssh_host"], a["ssh_port"], a["ssh_host_public_key"])
		return os.WriteFile(file, []byte(line), 0o644)
	}
}

func hostTarget(signer ssh.Signer, knownHosts string) (remote.Target, error) {
	data, err := os.ReadFile(knownHosts)
	if err != nil {
		return remote.Target{}, err
	}
	check, err := remote.KnownHosts(knownHosts)
	if err != nil {
		return remote.Target{}, err
	}
	addr := strings.NewReplacer("[", "", "]", "").Replace(strings.Fields(string(data))[0])
	return remote.Target{Addr: addr, User: "debian", Auth: []ssh.AuthMethod{remote.SignerAuth(signer)}, HostKey: check}, nil
}

func runOnHost(t *testing.T, signer ssh.Signer, knownHosts, script string) {
	t.Helper()
	target, err := hostTarget(signer, knownHosts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := remote.Dial(ctx, target)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Run(ctx, "test set-up", script); err != nil {
		t.Fatal(err)
	}
}

// checkHost runs cmd on the host as the login user (a fresh login, so limits
// apply) and compares its output.
func checkHost(signer ssh.Signer, cmd, want string) resource.TestCheckFunc {
	return func(s *terraform.State) error {
		a := s.RootModule().Resources[vmAddr].Primary.Attributes
		hostKey, err := remote.ParsePublicKey(a["ssh_host_public_key"])
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		c, err := remote.Dial(ctx, remote.Target{Addr: a["ssh_host"] + ":" + a["ssh_port"], User: "debian",
			Auth: []ssh.AuthMethod{remote.SignerAuth(signer)}, HostKey: remote.PinHostKey(hostKey)})
		if err != nil {
			return err
		}
		defer c.Close()
		out, err := c.RunAsUser(ctx, "check host", cmd)
		if err != nil {
			return err
		}
		if got := strings.TrimSpace(out); got != want {
			return fmt.Errorf("host: %q printed %q, want %q", cmd, got, want)
		}
		return nil
	}
}
