package provider

import (
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"
	"github.com/hashicorp/terraform-plugin-testing/tfversion"
	"golang.org/x/crypto/ssh"

	"github.com/kilnhq/terraform-provider-kiln/internal/remote"
	"github.com/kilnhq/terraform-provider-kiln/internal/testenv"
	"github.com/kilnhq/terraform-provider-kiln/internal/wait"
)

const hostAddr = "kiln_go_host.test"

// goHostConfig is a kiln_go_host on the process's shared guest.
type goHostConfig struct {
	host     sharedHost
	versions []string
	// source is the go block's source settings; module_proxy when empty.
	source string
	// tools is go.tools; unset when empty.
	tools []string
	// extra is appended to the configuration.
	extra string
	// cgroupV2 is hardening.cgroup_v2; verify when empty.
	cgroupV2 string
	// verifyBuild sets verify.build: the build costs half a minute of an
	// emulated guest, so only the install test asks for it; the others run
	// the default checks.
	verifyBuild bool
}

// mirrorConfigs are the configurations taking toolchains from mirror: base
// declares 1.24.4 and 1.23.10 (each toolchain a test does not need costs a
// minute or two of an emulated guest); withNext adds 1.21.13, whose signature
// is by a key other than the pinned one.
func mirrorConfigs(t *testing.T, host sharedHost, mirror testenv.GoMirror) (base, withNext goHostConfig, keyringFile string) {
	t.Helper()
	keyringFile = filepath.Join(t.TempDir(), "mirror-keys.asc")
	if err := os.WriteFile(keyringFile, []byte(mirror.Keyring), 0o644); err != nil {
		t.Fatal(err)
	}
	base = goHostConfig{host: host, versions: []string{"1.24.4", "1.23.10"}, source: dlSource(mirror, keyringFile, nil)}
	withNext = base
	withNext.versions = append(withNext.versions, "1.21.13")
	return base, withNext, keyringFile
}

// startGoMirror serves the toolchains the tests use; 1.21.13 is signed by a
// key other than the pinned one.
func startGoMirror(t *testing.T) testenv.GoMirror {
	return testenv.StartGoMirror(t, []string{"1.24.4", "1.23.10", "1.22.12", "1.21.13"}, "1.21.13")
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
func factsViaBastion(h sharedHost) string {
	return fmt.Sprintf(`
data "kiln_host_facts" "via_bastion" {
  depends_on = [kiln_go_host.test]

  ssh {
    host     = "127.0.0.1"
    port     = 22
    host_key = %[3]q

    bastion {
      host     = %[1]q
      port     = %[2]d
      host_key = %[3]q
    }
  }
}
`, h.vm.SSHHost, h.vm.SSHPort, h.vm.SSHHostKey)
}

func (c goHostConfig) String() string {
	source := firstSet(c.source, `source = "module_proxy"`)
	if len(c.tools) > 0 {
		source += "\n    tools  = " + hclList(c.tools)
	}
	return fmt.Sprintf(`
provider "kiln" {
  ssh {
    user             = "debian"
    private_key      = file(%[1]q)
    known_hosts_file = %[2]q
  }
}

resource "kiln_go_host" "test" {
  ssh {
    host     = %[3]q
    port     = %[4]d
    host_key = %[5]q
  }

  go {
    versions = %[6]s
    default  = "1.24.4"
    %[7]s
  }

  env = {
    GOPROXY   = "https://proxy.golang.org"
    GOPRIVATE = "git.kiln.test/*"
  }

  hardening {
    swap_off  = true
    nofile    = 65536
    sysctls   = { "vm.swappiness" = "1" }
    cgroup_v2 = %[8]q

    gocache_tmpfs_mib = 256
  }

%[9]s
  # The guest is shared by this process's tests: the next one starts from here.
  remove_on_destroy = false
}
%[10]s`, c.host.keyFile, c.host.knownHosts, c.host.vm.SSHHost, c.host.vm.SSHPort, c.host.vm.SSHHostKey,
		hclList(c.versions), source, firstSet(c.cgroupV2, "verify"), c.verifyBlock(), c.extra)
}

// verifyBlock is the verify block: none unless the build is asked for.
func (c goHostConfig) verifyBlock() string {
	if !c.verifyBuild {
		return ""
	}
	return "  verify {\n    build = true\n  }\n"
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

// untouched checks that nothing half-installed is left and the default is
// still 1.24.4.
func untouched(h sharedHost) resource.TestCheckFunc {
	return resource.ComposeTestCheckFunc(
		h.check("ls -A /usr/local/go | grep -c kiln-tmp || true", "0"),
		h.check("go version", "go version go1.24.4 linux/amd64"),
	)
}

// plansEmpty is a step whose plan for cfg must be empty.
func plansEmpty(cfg goHostConfig) resource.TestStep {
	return resource.TestStep{
		Config:           cfg.String(),
		ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
	}
}

// TestAccGoHost_install provisions the guest: two toolchains through the real
// module proxy and checksum database, the system Go environment, swap off,
// limits, a sysctl, cgroup v2 and a tmpfs GOCACHE, then the verification
// build, which leaves a stamp naming the archive it passed with. The host is
// imported. Without verify.build the apply runs only the cheap checks; asked
// for again, the build is not rerun for the same toolchain. A destroy with
// remove_on_destroy = false leaves the host as it is.
func TestAccGoHost_install(t *testing.T) {
	testAccPreCheck(t)
	host := goHostGuest(t)
	cfg := goHostConfig{host: host, versions: []string{"1.24.4", "1.23.10"}, verifyBuild: true}
	cheap := cfg
	cheap.verifyBuild = false
	verified := func(buildOutput string) []statecheck.StateCheck {
		return []statecheck.StateCheck{
			statecheck.ExpectKnownValue(hostAddr, tfjsonpath.New("verification").AtMapKey("build_output"), knownvalue.StringExact(buildOutput)),
			statecheck.ExpectKnownValue(hostAddr, tfjsonpath.New("verification").AtMapKey("go_version"), knownvalue.StringExact("go version go1.24.4 linux/amd64")),
			statecheck.ExpectKnownValue(hostAddr, tfjsonpath.New("verification").AtMapKey("goroot"), knownvalue.StringExact("/usr/local/go/1.24.4")),
			statecheck.ExpectKnownValue(hostAddr, tfjsonpath.New("verification").AtMapKey("gopath"), knownvalue.StringExact("/home/debian/go")),
		}
	}
	// The stamp holds the archive digest Kiln's marker records, and its inode
	// and change time show whether a later apply rewrote it.
	const stamp = "/usr/local/go/1.24.4/.kiln-build"
	const stampMatchesArchive = `read -r archive _ </usr/local/go/1.24.4/.kiln; [ "archive=$(cat ` + stamp + `)" = "$archive" ] && echo stamped`
	var stampID string
	captureStamp := func(*terraform.State) error {
		var err error
		stampID, err = loginOutput(host.vm.SSHHost, host.vm.SSHPort, host.vm.SSHHostKey, host.signer, "stat -c %i:%Z "+stamp)
		return err
	}

	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		CheckDestroy:             host.check("go version", "go version go1.24.4 linux/amd64"),
		Steps: []resource.TestStep{
			{
				Config: cfg.String(),
				ConfigStateChecks: append(verified("kiln-verify-ok"),
					statecheck.ExpectKnownValue(hostAddr, tfjsonpath.New("facts").AtMapKey("cgroup_mode"), knownvalue.StringExact("cgroup2fs")),
					statecheck.ExpectKnownValue(hostAddr, tfjsonpath.New("installed"), knownvalue.ListSizeExact(2)),
				),
				Check: resource.ComposeTestCheckFunc(
					host.check("go version", "go version go1.24.4 linux/amd64"),
					host.check("/usr/local/go/1.23.10/bin/go version", "go version go1.23.10 linux/amd64"),
					host.check("go env GOPROXY GOPRIVATE GOSUMDB", "https://proxy.golang.org\ngit.kiln.test/*\nsum.golang.org"),
					host.check("tail -n +2 /proc/swaps | wc -l", "0"),
					host.check("ulimit -n", "65536"),
					host.check("stat -fc %T /sys/fs/cgroup", "cgroup2fs"),
					host.check("cat /proc/sys/vm/swappiness", "1"),
					host.check("go env GOCACHE; stat -fc %T ~/.cache/go-build", "/home/debian/.cache/go-build\ntmpfs"),
					host.check(stampMatchesArchive, "stamped"),
					captureStamp,
				),
			},
			plansEmpty(cfg),
			{
				ResourceName:      hostAddr,
				ImportState:       true,
				ImportStateIdFunc: func(s *terraform.State) (string, error) { return s.RootModule().Resources[hostAddr].Primary.ID, nil },
				ImportStateVerify: true,
				ImportStateVerifyIgnore: []string{
					"timeouts", "ssh", "env", "hardening", "verify", "verification", "remove_on_destroy", "owner_id", "go.source",
					"go.mirror_url", "go.index_url", "go.keyring", "go.key_fingerprint", "go.versions", "go.resolved_versions", "go.sha256",
				},
			},
			{
				Config: cheap.String(), // the default: no build
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction(hostAddr, plancheck.ResourceActionUpdate)},
				},
				ConfigStateChecks: verified(""),
			},
			{
				Config:            cfg.String(), // the build again: this toolchain passed it, so it does not rerun
				ConfigStateChecks: verified("kiln-verify-ok"),
				Check: func(s *terraform.State) error {
					return host.check("stat -c %i:%Z "+stamp, stampID)(s)
				},
			},
		},
	})
}

// TestAccGoHost_tools installs dlv, built on this machine by the declared
// toolchain through the real module proxy and checksum database, and runs it
// on the host; a dlv replaced by hand shows in the plan and the apply puts
// Kiln's back; dropped from the list, it is removed. Delve v1.27 needs Go
// 1.25 and the guest declares only 1.24.4 (one toolchain install), so the
// test takes v1.26.2, whose go line is 1.24.
func TestAccGoHost_tools(t *testing.T) {
	testAccPreCheck(t)
	host := goHostGuest(t)
	const dlv = "github.com/go-delve/delve/cmd/dlv@v1.26.2"
	cfg := goHostConfig{host: host, versions: []string{"1.24.4"}, tools: []string{dlv}}
	without := cfg
	without.tools = nil
	update := resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction(hostAddr, plancheck.ResourceActionUpdate)}}
	dlvRuns := host.check("dlv version | sed -n 2p", "Version: 1.26.2")

	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		Steps: []resource.TestStep{
			{
				Config: cfg.String(),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(hostAddr, tfjsonpath.New("go").AtMapKey("resolved_tools"),
						knownvalue.ListExact([]knownvalue.Check{knownvalue.StringExact(dlv)})),
				},
				Check: resource.ComposeTestCheckFunc(dlvRuns, host.check("stat -c %a /usr/local/bin/dlv", "755")),
			},
			{
				PreConfig:        func() { runOnHost(t, host, "cp /bin/true /usr/local/bin/dlv") },
				Config:           cfg.String(),
				ConfigPlanChecks: update,
				Check:            dlvRuns,
			},
			plansEmpty(cfg),
			{
				Config:           without.String(),
				ConfigPlanChecks: update,
				Check:            host.check("test -e /usr/local/bin/dlv && echo present || echo absent", "absent"),
			},
		},
	})
}

// TestAccGoHost_interruptedUpload drops the SSH connection while a third
// toolchain streams in: the apply fails naming it, and the next apply installs
// only it, leaving nothing half-installed.
func TestAccGoHost_interruptedUpload(t *testing.T) {
	testAccPreCheck(t)
	host := goHostGuest(t)
	two, _, _ := mirrorConfigs(t, host, startGoMirror(t))
	cfg := two
	cfg.versions = append(slices.Clone(two.versions), "1.22.12")

	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		Steps: []resource.TestStep{
			{Config: two.String(), Check: host.check("test -e /usr/local/go/1.22.12 && echo present || echo absent", "absent")},
			{
				PreConfig: func() {
					onHostWhen(t, host, "/usr/local/go/.kiln-tmp-1.22.12", "pkill -KILL -f '^sshd: debian'")
				},
				Config:      cfg.String(),
				ExpectError: regexp.MustCompile(`(?s)install\s+go1\.22\.12`),
			},
			{
				Config: cfg.String(),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction(hostAddr, plancheck.ResourceActionUpdate)},
				},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(hostAddr, tfjsonpath.New("installed"), knownvalue.ListSizeExact(3)),
				},
				Check: resource.ComposeTestCheckFunc(untouched(host),
					host.check("/usr/local/go/1.22.12/bin/go version", "go version go1.22.12 linux/amd64")),
			},
		},
	})
}

// TestAccGoHost_drift changes the host as a person over SSH would: swap back
// on, a toolchain's bin/go overwritten, the limits edited, the GOCACHE tmpfs
// unmounted. The plan shows an update, the apply repairs all of it, and the
// next plan is empty.
func TestAccGoHost_drift(t *testing.T) {
	testAccPreCheck(t)
	host := goHostGuest(t)
	cfg, _, _ := mirrorConfigs(t, host, startGoMirror(t))

	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		Steps: []resource.TestStep{
			{Config: cfg.String(), Check: untouched(host)},
			{
				PreConfig: func() {
					runOnHost(t, host, `set -e
fallocate -l 32M /swapfile && chmod 600 /swapfile && mkswap -q /swapfile && swapon /swapfile
echo broken >/usr/local/go/1.23.10/bin/go
sed -i 's/65536/1024/' /etc/security/limits.d/90-kiln.conf
umount /home/debian/.cache/go-build`)
				},
				Config: cfg.String(),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction(hostAddr, plancheck.ResourceActionUpdate)},
				},
				Check: resource.ComposeTestCheckFunc(
					host.check("tail -n +2 /proc/swaps | wc -l", "0"),
					host.check("/usr/local/go/1.23.10/bin/go version", "go version go1.23.10 linux/amd64"),
					host.check("ulimit -n", "65536"),
					host.check("stat -fc %T ~/.cache/go-build", "tmpfs"),
				),
			},
			plansEmpty(cfg),
		},
	})
}

// TestAccGoHost_refusedArchives offers archives that must never reach the
// host: a tarball signed by a key other than the pinned one, one that does not
// match its pinned SHA-256, and a toolchain zip whose hash the real checksum
// database contradicts. Each apply fails naming the reason, and the host keeps
// what it had.
func TestAccGoHost_refusedArchives(t *testing.T) {
	testAccPreCheck(t)
	host := goHostGuest(t)
	mirror := startGoMirror(t)
	cfg, badSignature, keyringFile := mirrorConfigs(t, host, mirror)
	wrongPin := badSignature
	wrongPin.source = dlSource(mirror, keyringFile, map[string]string{"1.21.13": strings.Repeat("0", 64)})
	// The real module proxy and checksum database, but a doctored zip for 1.21.13.
	doctoredProxy := badSignature
	doctoredProxy.source = fmt.Sprintf(`source    = "module_proxy"
    proxy_url = %q`, testenv.StartDoctoredModuleProxy(t, "https://proxy.golang.org", "1.21.13"))

	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		Steps: []resource.TestStep{
			{Config: cfg.String(), Check: untouched(host)},
			{
				Config:      badSignature.String(),
				ExpectError: regexp.MustCompile(`(?s)go1\.21\.13.*signed\s+by\s+a\s+key\s+other\s+than\s+the\s+pinned\s+one`),
			},
			{
				Config:      wrongPin.String(),
				ExpectError: regexp.MustCompile(`(?s)go1\.21\.13.*has\s+sha256\s+[0-9a-f]{64},\s+want\s+0{64}`),
			},
			{
				Config:      doctoredProxy.String(),
				ExpectError: regexp.MustCompile(`(?s)go1\.21\.13.*checksum\s+mismatch.*the\s+checksum\s+database\s+says\s+h1:`),
			},
			{
				Config:           cfg.String(),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
				Check: resource.ComposeTestCheckFunc(untouched(host),
					host.check("test -e /usr/local/go/1.21.13 && echo present || echo absent", "absent")),
			},
		},
	})
}

// TestAccGoHost_hostDownload has the guest fetch a toolchain itself ("1.21",
// resolved through the mirror's index to 1.21.13; only its SHA-256 is checked,
// there). A mirror serving another archive under its name fails the check on
// the guest; the host rebooting in the middle of the install fails the apply;
// back up, the next apply finishes the job, and the toolchain shows in the
// facts read through the guest as a bastion.
func TestAccGoHost_hostDownload(t *testing.T) {
	testAccPreCheck(t)
	host := goHostGuest(t)
	mirror := startGoMirror(t)
	cfg, _, _ := mirrorConfigs(t, host, mirror)
	fromHost := cfg
	fromHost.versions = []string{"1.24.4", "1.23.10", "1.21"}
	fromHost.source = hostSource(mirror)
	fromHost.extra = factsViaBastion(host)
	var bootID string

	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		Steps: []resource.TestStep{
			{Config: cfg.String(), Check: untouched(host)},
			{
				PreConfig:   func() { mirror.Tamper("1.21.13", "1.22.12") },
				Config:      fromHost.String(),
				ExpectError: regexp.MustCompile(`(?s)install\s+go1\.21\.13.*archive\s+arrived\s+with\s+sha256\s+[0-9a-f]{64},\s+want`),
			},
			{
				PreConfig: func() {
					mirror.Restore("1.21.13")
					bootID = readBootID(t, host, "")
					onHostWhen(t, host, "/usr/local/go/.kiln-tmp-1.21.13", "systemctl reboot")
				},
				Config:      fromHost.String(),
				ExpectError: regexp.MustCompile(`(?s)install\s+go1\.21\.13`),
			},
			{
				PreConfig: func() { readBootID(t, host, bootID) },
				Config:    fromHost.String(),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction(hostAddr, plancheck.ResourceActionUpdate)},
				},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(hostAddr, tfjsonpath.New("go").AtMapKey("resolved_versions"),
						knownvalue.ListExact([]knownvalue.Check{knownvalue.StringExact("1.24.4"), knownvalue.StringExact("1.23.10"),
							knownvalue.StringExact("1.21.13")})),
				},
				// The facts list every toolchain Kiln installed on the host,
				// earlier tests' included.
				Check: resource.ComposeTestCheckFunc(untouched(host),
					resource.TestCheckTypeSetElemNestedAttrs("data.kiln_host_facts.via_bastion", "installed.*", map[string]string{"version": "1.21.13"}),
					host.check("/usr/local/go/1.21.13/bin/go version", "go version go1.21.13 linux/amd64")),
			},
			plansEmpty(fromHost),
		},
	})
}

// TestAccGoHost_cgroupV2 boots the host on cgroup v1, as an operator editing
// GRUB would; cgroup_v2 = "enable" plans an update and puts it back on v2 with
// a reboot.
func TestAccGoHost_cgroupV2(t *testing.T) {
	testAccPreCheck(t)
	host := goHostGuest(t)
	cfg, _, _ := mirrorConfigs(t, host, startGoMirror(t))
	enable := cfg
	enable.cgroupV2 = "enable"

	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		Steps: []resource.TestStep{
			{Config: cfg.String(), Check: host.check("stat -fc %T /sys/fs/cgroup", "cgroup2fs")},
			{
				PreConfig: func() {
					bootID := readBootID(t, host, "")
					runOnHost(t, host, `set -e
sed -i -E 's/^GRUB_CMDLINE_LINUX="(.*)"/GRUB_CMDLINE_LINUX="\1 systemd.unified_cgroup_hierarchy=0"/' /etc/default/grub
update-grub 2>/dev/null
(sleep 1; systemctl reboot) >/dev/null 2>&1 &`)
					readBootID(t, host, bootID)
					if fs := runOnHost(t, host, "stat -fc %T /sys/fs/cgroup"); fs != "tmpfs" {
						t.Fatalf("set-up: the host did not boot on cgroup v1: /sys/fs/cgroup is %q", fs)
					}
				},
				Config: enable.String(),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction(hostAddr, plancheck.ResourceActionUpdate)},
				},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(hostAddr, tfjsonpath.New("facts").AtMapKey("cgroup_mode"), knownvalue.StringExact("cgroup2fs")),
				},
				Check: resource.ComposeTestCheckFunc(untouched(host),
					host.check("stat -fc %T /sys/fs/cgroup", "cgroup2fs"),
					host.check("grep -o 'systemd.unified_cgroup_hierarchy=[01]' /proc/cmdline", "systemd.unified_cgroup_hierarchy=1")),
			},
			plansEmpty(enable),
		},
	})
}

// TestAccGoHost_sharedHost puts a second kiln_go_host on the host, one that
// declares no toolchains: applying and destroying it (with removal) leaves the
// first resource's toolchains alone. The first resource then drops 1.23.10,
// which it installed, and only that one goes. The limits and sysctl files are
// the first resource's too: the second one's destroy leaves them.
func TestAccGoHost_sharedHost(t *testing.T) {
	testAccPreCheck(t)
	host := goHostGuest(t)
	cfg := goHostConfig{host: host, versions: []string{"1.24.4", "1.23.10"}}
	withSecond := cfg
	withSecond.extra = fmt.Sprintf(`
resource "kiln_go_host" "second" {
  depends_on = [kiln_go_host.test]

  ssh {
    host     = %q
    port     = %d
    host_key = %q
  }

  verify {
    build = false
  }
}
`, host.vm.SSHHost, host.vm.SSHPort, host.vm.SSHHostKey)
	dropped := cfg
	dropped.versions = []string{"1.24.4"}

	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		Steps: []resource.TestStep{
			{Config: cfg.String(), Check: untouched(host)},
			{
				Config: withSecond.String(),
				Check: resource.ComposeTestCheckFunc(untouched(host),
					host.check("/usr/local/go/1.23.10/bin/go version", "go version go1.23.10 linux/amd64")),
			},
			{
				Config: cfg.String(), // the second resource is destroyed, removing what it installed: nothing
				Check: resource.ComposeTestCheckFunc(untouched(host),
					host.check("/usr/local/go/1.23.10/bin/go version", "go version go1.23.10 linux/amd64"),
					host.check("cat /etc/sysctl.d/90-kiln.conf /etc/security/limits.d/90-kiln.conf | grep -c 'Managed by Kiln'", "2")),
			},
			{
				Config: dropped.String(),
				Check: resource.ComposeTestCheckFunc(untouched(host),
					host.check("test -e /usr/local/go/1.23.10 && echo present || echo absent", "absent")),
			},
		},
	})
}

// TestAccGoHost_writeOnlyKey logs in with a key given as ssh.private_key_wo,
// the provider's ssh block holding none: the apply uses it, and neither the
// plan nor the state keeps it. Refreshes cannot log in without it and keep
// the recorded state (with a warning), so the next plan is empty.
func TestAccGoHost_writeOnlyKey(t *testing.T) {
	testAccPreCheck(t)
	host := goHostGuest(t)
	cfg := fmt.Sprintf(`
provider "kiln" {
  ssh {
    user             = "debian"
    known_hosts_file = %q
  }
}

resource "kiln_go_host" "wo" {
  ssh {
    host           = %q
    port           = %d
    private_key_wo = file(%q)
  }

  verify {
    build = false
  }

  remove_on_destroy = false
}
`, host.knownHosts, host.vm.SSHHost, host.vm.SSHPort, host.keyFile)

	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		TerraformVersionChecks:   []tfversion.TerraformVersionCheck{tfversion.SkipBelow(tfversion.Version1_11_0)},
		Steps: []resource.TestStep{
			{
				Config: cfg,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("kiln_go_host.wo", tfjsonpath.New("ssh").AtMapKey("private_key_wo"), knownvalue.Null()),
					statecheck.ExpectKnownValue("kiln_go_host.wo", tfjsonpath.New("ssh").AtMapKey("private_key"), knownvalue.Null()),
					statecheck.ExpectKnownValue("kiln_go_host.wo", tfjsonpath.New("facts").AtMapKey("cgroup_mode"), knownvalue.StringExact("cgroup2fs")),
				},
			},
			{Config: cfg, ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}}},
		},
	})
}

// onHostWhen runs action on the host as root once path appears there, from a
// goroutine, so it lands in the middle of the next apply. It gives up after
// ten minutes on the host's side.
func onHostWhen(t *testing.T, h sharedHost, path, action string) {
	t.Helper()
	target, err := h.target()
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

// readBootID returns the host's boot ID, waiting for the host to answer with
// one different from previous: up to ten minutes, as an emulated guest on a
// loaded machine boots slowly.
func readBootID(t *testing.T, h sharedHost, previous string) string {
	t.Helper()
	target, err := h.target()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
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
	path, signer, err := newLoginKeyFile(dir)
	if err != nil {
		t.Fatal(err)
	}
	return path, signer
}

// target reaches the guest as the login user with its pinned host key.
func (h sharedHost) target() (remote.Target, error) {
	check, err := remote.KnownHosts(h.knownHosts)
	if err != nil {
		return remote.Target{}, err
	}
	return remote.Target{Addr: fmt.Sprintf("%s:%d", h.vm.SSHHost, h.vm.SSHPort), User: "debian",
		Auth: []ssh.AuthMethod{remote.SignerAuth(h.signer)}, HostKey: check}, nil
}

// runOnHost runs script on the host as root and returns its output, trimmed.
func runOnHost(t *testing.T, h sharedHost, script string) string {
	t.Helper()
	return runOnHostInput(t, h, script, nil)
}

// runOnHostInput is runOnHost with stdin fed to the script.
func runOnHostInput(t *testing.T, h sharedHost, script string, stdin io.Reader) string {
	t.Helper()
	target, err := h.target()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c, err := remote.Dial(ctx, target)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	out, err := c.RunInput(ctx, "test set-up", script, stdin)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(out)
}

// checkHostOf runs cmd as the login user on the VM at address vm in the state
// and compares its output.
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

// hostOutput runs cmd as the login user on the VM at address vm in the state,
// reached with its pinned host key, and returns the output, trimmed.
func hostOutput(s *terraform.State, vm string, signer ssh.Signer, cmd string) (string, error) {
	rs := s.RootModule().Resources[vm]
	if rs == nil {
		return "", fmt.Errorf("%s not in state", vm)
	}
	a := rs.Primary.Attributes
	port, err := strconv.Atoi(a["ssh_port"])
	if err != nil {
		return "", fmt.Errorf("%s.ssh_port: %w", vm, err)
	}
	return loginOutput(a["ssh_host"], port, a["ssh_host_public_key"], signer, cmd)
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
