package provider

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/types"
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
	"github.com/kilnhq/terraform-provider-kiln/internal/wait"
)

const hostAddr = "kiln_go_host.test"

type goHostConfig struct {
	bed        testenv.LibvirtBed
	name       string
	keyFile    string
	knownHosts string
	versions   []string
	// source is the go block's source settings; module_proxy when empty.
	source string
	// extra is appended to the configuration.
	extra string
	// cgroupV2 is hardening.cgroup_v2; verify when empty.
	cgroupV2 string
	// verifyBuild is verify.build: the build costs half a minute of an
	// emulated guest, so only the first step asks for it.
	verifyBuild bool
}

// dlSource takes release tarballs from mirror, verified with the keys in
// keyringFile; pins maps versions to a pinned SHA-256.
func dlSource(mirror testenv.GoMirror, keyringFile string, pins map[string]string) string {
	return fmt.Sprintf(`source          = "dl"
    mirror_url      = %q
    index_url       = %q
    key_fingerprint = %q
    keyring         = file(%q)
    sha256          = %s`, mirror.URL, mirror.IndexURL, mirror.Fingerprint, keyringFile, hclMap(pins))
}

// hostSource has the guest download from mirror itself: QEMU's user-mode
// network shows the machine's 127.0.0.1 to the guest as 10.0.2.2.
func hostSource(mirror testenv.GoMirror) string {
	return fmt.Sprintf(`source     = "host"
    mirror_url = %q
    index_url  = %q`, strings.Replace(mirror.URL, "127.0.0.1", "10.0.2.2", 1), mirror.IndexURL)
}

// factsViaBastion reads the host's facts through the guest itself as the jump
// host: the guest's own sshd at 127.0.0.1:22, the same pinned key.
const factsViaBastion = `
data "kiln_host_facts" "via_bastion" {
  depends_on = [kiln_go_host.test]

  ssh {
    host     = "127.0.0.1"
    port     = 22
    host_key = kiln_libvirt_vm.test.ssh_host_public_key

    bastion {
      host     = kiln_libvirt_vm.test.ssh_host
      port     = kiln_libvirt_vm.test.ssh_port
      host_key = kiln_libvirt_vm.test.ssh_host_public_key
    }
  }
}
`

func (c goHostConfig) String() string {
	source := firstSet(c.source, `source = "module_proxy"`)
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
  domain_type   = %[12]q
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
    cgroup_v2 = %[11]q

    gocache_tmpfs_mib = 256
  }

  verify {
    build = %[13]t
  }
}
%[10]s`, c.bed.URI, c.name, c.bed.Pool, c.bed.BaseVolume, c.keyFile, c.knownHosts, c.keyFile+".pub", hclList(c.versions), source, c.extra, firstSet(c.cgroupV2, "verify"), c.bed.DomainType, c.verifyBuild)
}

func hclMap(m map[string]string) string {
	keys := slices.Sorted(maps.Keys(m))
	pairs := make([]string, len(keys))
	for i, k := range keys {
		pairs[i] = fmt.Sprintf("%q = %q", k, m[k])
	}
	return "{" + strings.Join(pairs, ", ") + "}"
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
// tarballs the test signed, a fourth downloaded by the guest itself; drift
// repaired; and the failures, each leaving the host as it was or in a state the
// next apply repairs: SSH dropped mid-upload, a bad signature, a wrong pinned
// SHA-256, a zip the checksum database contradicts, a tampered mirror, and the
// host rebooted mid-install.
func TestAccGoHost_lifecycle(t *testing.T) {
	testAccPreCheck(t)
	bed := testenv.Libvirt(t)
	mirror := testenv.StartGoMirror(t, []string{"1.24.4", "1.23.10", "1.22.12", "1.21.13"}, "1.21.13")
	dir := t.TempDir()
	keyFile, signer := writeLoginKey(t, dir)
	keyringFile := filepath.Join(dir, "mirror-keys.asc")
	if err := os.WriteFile(keyringFile, []byte(mirror.Keyring), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := goHostConfig{bed: bed, name: acctest.RandomWithPrefix("kiln-host"), keyFile: keyFile,
		knownHosts: filepath.Join(dir, "known_hosts"), versions: []string{"1.24.4", "1.23.10"}, verifyBuild: true}
	bed.RemoveGuestAtCleanup(t, cfg.name)
	withMirror := cfg
	withMirror.verifyBuild = false
	withMirror.source = dlSource(mirror, keyringFile, nil)
	withMirror.versions = []string{"1.24.4", "1.23.10", "1.22.12"}
	badSignature := withMirror
	badSignature.versions = []string{"1.24.4", "1.23.10", "1.22.12", "1.21.13"}
	wrongPin := badSignature
	wrongPin.source = dlSource(mirror, keyringFile, map[string]string{"1.21.13": strings.Repeat("0", 64)})
	// The real module proxy and checksum database, but a doctored zip for 1.21.13.
	doctoredProxy := badSignature
	doctoredProxy.source = fmt.Sprintf(`source    = "module_proxy"
    proxy_url = %q`, testenv.StartDoctoredModuleProxy(t, "https://proxy.golang.org", "1.21.13"))
	// "1.21" resolves through the mirror's index to 1.21.13, which the guest
	// fetches itself: only its SHA-256 is checked, there.
	fromHost := withMirror
	fromHost.versions = []string{"1.24.4", "1.23.10", "1.22.12", "1.21"}
	fromHost.source = hostSource(mirror)
	fromHost.extra = factsViaBastion
	enableCgroupV2 := fromHost
	enableCgroupV2.cgroupV2 = "enable"
	guest := func(cmd, want string) resource.TestCheckFunc { return checkHost(signer, cmd, want) }
	unchanged := resource.ComposeTestCheckFunc(
		guest("ls -A /usr/local/go | grep -c kiln-tmp || true", "0"),
		guest("go version", "go version go1.24.4 linux/amd64"),
	)
	var bootID string

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
					guest("go env GOCACHE; stat -fc %T ~/.cache/go-build", "/home/debian/.cache/go-build\ntmpfs"),
				),
			},
			{
				// The SSH connection drops while the third toolchain streams in.
				PreConfig: func() {
					onHostWhen(t, signer, cfg.knownHosts, "/usr/local/go/.kiln-tmp-1.22.12", "pkill -KILL -f '^sshd: debian'")
				},
				Config:      withMirror.String(),
				ExpectError: regexp.MustCompile(`(?s)install\s+go1\.22\.12`),
			},
			{
				// The next apply installs only it, and nothing half-installed is left.
				Config: withMirror.String(),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction(hostAddr, plancheck.ResourceActionUpdate)},
				},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(hostAddr, tfjsonpath.New("installed"), knownvalue.ListSizeExact(3)),
				},
				Check: resource.ComposeTestCheckFunc(unchanged,
					guest("/usr/local/go/1.22.12/bin/go version", "go version go1.22.12 linux/amd64")),
			},
			{
				// Drift: swap back on, bin/go overwritten, limits edited, the GOCACHE tmpfs unmounted.
				PreConfig: func() {
					runOnHost(t, signer, cfg.knownHosts, `set -e
fallocate -l 32M /swapfile && chmod 600 /swapfile && mkswap -q /swapfile && swapon /swapfile
echo broken >/usr/local/go/1.23.10/bin/go
sed -i 's/65536/1024/' /etc/security/limits.d/90-kiln.conf
umount /home/debian/.cache/go-build`)
				},
				Config: withMirror.String(),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction(hostAddr, plancheck.ResourceActionUpdate)},
				},
				Check: resource.ComposeTestCheckFunc(
					guest("tail -n +2 /proc/swaps | wc -l", "0"),
					guest("/usr/local/go/1.23.10/bin/go version", "go version go1.23.10 linux/amd64"),
					guest("ulimit -n", "65536"),
					guest("stat -fc %T ~/.cache/go-build", "tmpfs"),
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
				ExpectError: regexp.MustCompile(`(?s)go1\.21\.13.*signed\s+by\s+a\s+key\s+other\s+than\s+the\s+pinned\s+one`),
			},
			{
				// So is one that does not match its pinned SHA-256.
				Config:      wrongPin.String(),
				ExpectError: regexp.MustCompile(`(?s)go1\.21\.13.*has\s+sha256\s+[0-9a-f]{64},\s+want\s+0{64}`),
			},
			{
				// And a toolchain zip whose hash the real checksum database contradicts.
				Config:      doctoredProxy.String(),
				ExpectError: regexp.MustCompile(`(?s)go1\.21\.13.*checksum\s+mismatch.*the\s+checksum\s+database\s+says\s+h1:`),
			},
			{
				Config: withMirror.String(),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
				Check: resource.ComposeTestCheckFunc(unchanged,
					guest("test -e /usr/local/go/1.21.13 && echo present || echo absent", "absent")),
			},
			{
				// The mirror serves another archive under 1.21.13's name: the
				// guest's own download fails its SHA-256 check on the guest.
				PreConfig:   func() { mirror.Tamper("1.21.13", "1.22.12") },
				Config:      fromHost.String(),
				ExpectError: regexp.MustCompile(`(?s)install\s+go1\.21\.13.*archive\s+arrived\s+with\s+sha256\s+[0-9a-f]{64},\s+want`),
			},
			{
				// The host reboots in the middle of the install.
				PreConfig: func() {
					mirror.Restore("1.21.13")
					bootID = readBootID(t, signer, cfg.knownHosts, "")
					onHostWhen(t, signer, cfg.knownHosts, "/usr/local/go/.kiln-tmp-1.21.13", "systemctl reboot")
				},
				Config:      fromHost.String(),
				ExpectError: regexp.MustCompile(`(?s)install\s+go1\.21\.13`),
			},
			{
				// Back up, the next apply finishes the job; the toolchain shows in
				// the facts read through the guest as a bastion too.
				PreConfig: func() { readBootID(t, signer, cfg.knownHosts, bootID) },
				Config:    fromHost.String(),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction(hostAddr, plancheck.ResourceActionUpdate)},
				},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(hostAddr, tfjsonpath.New("go").AtMapKey("resolved_versions"),
						knownvalue.ListExact([]knownvalue.Check{knownvalue.StringExact("1.24.4"), knownvalue.StringExact("1.23.10"),
							knownvalue.StringExact("1.22.12"), knownvalue.StringExact("1.21.13")})),
					statecheck.ExpectKnownValue("data.kiln_host_facts.via_bastion", tfjsonpath.New("installed"), knownvalue.ListSizeExact(4)),
				},
				Check: resource.ComposeTestCheckFunc(unchanged,
					guest("/usr/local/go/1.21.13/bin/go version", "go version go1.21.13 linux/amd64")),
			},
			{
				Config: fromHost.String(),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
			},
			{
				// The host boots on cgroup v1; "enable" puts it back on v2 with a reboot.
				PreConfig: func() {
					bootID = readBootID(t, signer, cfg.knownHosts, "")
					runOnHost(t, signer, cfg.knownHosts, `set -e
sed -i -E 's/^GRUB_CMDLINE_LINUX="(.*)"/GRUB_CMDLINE_LINUX="\1 systemd.unified_cgroup_hierarchy=0"/' /etc/default/grub
update-grub 2>/dev/null
(sleep 1; systemctl reboot) >/dev/null 2>&1 &`)
					readBootID(t, signer, cfg.knownHosts, bootID)
					if fs := runOnHost(t, signer, cfg.knownHosts, "stat -fc %T /sys/fs/cgroup"); fs != "tmpfs" {
						t.Fatalf("set-up: the host did not boot on cgroup v1: /sys/fs/cgroup is %q", fs)
					}
				},
				Config: enableCgroupV2.String(),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction(hostAddr, plancheck.ResourceActionUpdate)},
				},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(hostAddr, tfjsonpath.New("facts").AtMapKey("cgroup_mode"), knownvalue.StringExact("cgroup2fs")),
				},
				Check: resource.ComposeTestCheckFunc(unchanged,
					guest("stat -fc %T /sys/fs/cgroup", "cgroup2fs"),
					guest("grep -o 'systemd.unified_cgroup_hierarchy=[01]' /proc/cmdline", "systemd.unified_cgroup_hierarchy=1")),
			},
			{
				ResourceName:      hostAddr,
				ImportState:       true,
				ImportStateIdFunc: func(s *terraform.State) (string, error) { return s.RootModule().Resources[hostAddr].Primary.ID, nil },
				ImportStateVerify: true,
				ImportStateVerifyIgnore: []string{
					"timeouts", "ssh", "env", "hardening", "verify", "verification", "go.source", "go.mirror_url",
					"go.index_url", "go.keyring", "go.key_fingerprint", "go.versions", "go.resolved_versions", "go.sha256",
				},
			},
		},
	})
}

// onHostWhen runs action on the host as root once path appears there, from a
// goroutine, so it lands in the middle of the next apply. It gives up after
// ten minutes on the host's side.
func onHostWhen(t *testing.T, signer ssh.Signer, knownHosts, path, action string) {
	t.Helper()
	target, err := hostTarget(signer, knownHosts)
	if err != nil {
		t.Fatal(err)
	}
	script := fmt.Sprintf("timeout 600 sh -c 'while [ ! -e %s ]; do sleep 0.2; done; sleep 2; %s'", path, action)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 11*time.Minute)
		defer cancel()
		c, err := remote.Dial(ctx, target)
		if err != nil {
			t.Logf("watcher for %s: %v", path, err)
			return
		}
		defer c.Close()
		// The action cuts this session too: its error is expected.
		_, _ = c.Run(ctx, "wait for "+path, script)
	}()
}

// readBootID returns the host's boot ID, waiting up to five minutes for the
// host to answer with one different from previous.
func readBootID(t *testing.T, signer ssh.Signer, knownHosts, previous string) string {
	t.Helper()
	target, err := hostTarget(signer, knownHosts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var id string
	err = wait.Until(ctx, "the host to boot", wait.Default, func(ctx context.Context) (bool, error) {
		c, err := remote.Dial(ctx, target)
		if err != nil {
			return false, wait.Transient(err)
		}
		defer c.Close()
		out, err := c.Run(ctx, "read boot id", "cat /proc/sys/kernel/random/boot_id")
		id = strings.TrimSpace(out)
		return err == nil && id != previous, wait.Transient(err)
	})
	if err != nil {
		t.Fatalf("host did not come back with a new boot ID: %v", err)
	}
	return id
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

// runOnHost runs script on the host as root and returns its output, trimmed.
func runOnHost(t *testing.T, signer ssh.Signer, knownHosts, script string) string {
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
	out, err := c.Run(ctx, "test set-up", script)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(out)
}

// checkHost runs cmd on the host as the login user (a fresh login, so limits
// apply) and compares its output.
func checkHost(signer ssh.Signer, cmd, want string) resource.TestCheckFunc {
	return checkHostOf(vmAddr, signer, cmd, want)
}

// checkHostOf is checkHost on the VM at address vm.
func checkHostOf(vm string, signer ssh.Signer, cmd, want string) resource.TestCheckFunc {
	return func(s *terraform.State) error {
		got, err := hostOutput(s, vm, signer, cmd)
		if err != nil {
			return err
		}
		if got != want {
			return fmt.Errorf("host: %q printed %q, want %q", cmd, got, want)
		}
		return nil
	}
}

// hostOutput runs cmd as the login user on the VM at address vm, reached with
// its pinned host key, and returns the output, trimmed.
func hostOutput(s *terraform.State, vm string, signer ssh.Signer, cmd string) (string, error) {
	rs := s.RootModule().Resources[vm]
	if rs == nil {
		return "", fmt.Errorf("%s not in state", vm)
	}
	a := rs.Primary.Attributes
	hostKey, err := remote.ParsePublicKey(a["ssh_host_public_key"])
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := remote.Dial(ctx, remote.Target{Addr: a["ssh_host"] + ":" + a["ssh_port"], User: "debian",
		Auth: []ssh.AuthMethod{remote.SignerAuth(signer)}, HostKey: remote.PinHostKey(hostKey)})
	if err != nil {
		return "", err
	}
	defer c.Close()
	out, err := c.RunAsUser(ctx, "check host", cmd)
	return strings.TrimSpace(out), err
}

func TestSSHTargetBastion(t *testing.T) {
	keyFile, signer := writeLoginKey(t, t.TempDir())
	key, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	hostKey := types.StringValue(remote.FormatPublicKey(signer.PublicKey()))
	defaults := sshDefaults{User: "debian", Port: 22, PrivateKey: string(key)}
	conn := &hostConnectionModel{Host: types.StringValue("10.0.0.7"), HostKey: hostKey,
		Bastion: &bastionModel{Host: types.StringValue("bastion.example"), Port: types.Int64Value(2222), User: types.StringValue("jump"), HostKey: hostKey}}

	target, err := sshTarget(defaults, conn)
	if err != nil {
		t.Fatal(err)
	}
	if target.Addr != "10.0.0.7:22" || target.User != "debian" || target.Jump == nil {
		t.Fatalf("target %s@%s, jump %v", target.User, target.Addr, target.Jump)
	}
	if target.Jump.Addr != "bastion.example:2222" || target.Jump.User != "jump" || len(target.Jump.Auth) != 1 {
		t.Fatalf("jump %s@%s with %d auth methods", target.Jump.User, target.Jump.Addr, len(target.Jump.Auth))
	}

	conn.Bastion.HostKey = types.StringNull()
	if _, err := sshTarget(defaults, conn); err == nil || !strings.Contains(err.Error(), "ssh.bastion.host_key") {
		t.Fatalf("unpinned bastion: got %v, want an error naming ssh.bastion.host_key", err)
	}
}
