package provider

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"
	"github.com/hashicorp/terraform-plugin-testing/compare"
	"github.com/hashicorp/terraform-plugin-testing/helper/acctest"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"
	"golang.org/x/crypto/ssh"
	"libvirt.org/go/libvirtxml"

	"github.com/kilnhq/terraform-provider-kiln/internal/remote"
	"github.com/kilnhq/terraform-provider-kiln/internal/testenv"
)

const vmAddr = "kiln_libvirt_vm.test"

type vmConfig struct {
	bed       testenv.LibvirtBed
	name      string
	memoryMiB int
	diskGiB   int
	loginKey  string
}

func (c vmConfig) String() string {
	return fmt.Sprintf(`
provider "kiln" {
  libvirt {
    uri = %q
  }
}

resource "kiln_libvirt_vm" "test" {
  name          = %q
  domain_type   = %q
  pool          = %q
  base_volume   = %q
  vcpu          = 1
  memory_mib    = %d
  disk_size_gib = %d

  network_interface {
    user_mode = true
  }

  cloud_init {
    hostname            = %q
    ssh_authorized_keys = [%q]
  }
}
`, c.bed.URI, c.name, c.bed.DomainType, c.bed.Pool, c.bed.BaseVolume, c.memoryMiB, c.diskGiB, c.name, c.loginKey)
}

// TestAccLibvirtVM_lifecycle drives one real guest through create, drift, a
// libvirtd restart, in-place growth, import and destroy.
func TestAccLibvirtVM_lifecycle(t *testing.T) {
	testAccPreCheck(t)
	bed := testenv.Libvirt(t)
	login := newLoginKey(t)
	cfg := vmConfig{bed: bed, name: acctest.RandomWithPrefix("kiln-acc"), memoryMiB: 512, diskGiB: 4, loginKey: login.public}
	bed.RemoveGuestAtCleanup(t, cfg.name)
	grown := cfg
	grown.memoryMiB, grown.diskGiB = 768, 5
	var restarted <-chan error

	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		CheckDestroy:             checkVMGone(bed, cfg.name),
		Steps: []resource.TestStep{
			{
				Config: cfg.String(),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(vmAddr, tfjsonpath.New("running"), knownvalue.Bool(true)),
					statecheck.CompareValuePairs(vmAddr, tfjsonpath.New("uuid"), vmAddr, tfjsonpath.New("id"), compare.ValuesSame()),
					statecheck.ExpectKnownValue(vmAddr, tfjsonpath.New("ssh_host"), knownvalue.StringExact("127.0.0.1")),
					statecheck.ExpectKnownValue(vmAddr, tfjsonpath.New("disk_size_gib"), knownvalue.Int64Exact(4)),
					statecheck.ExpectKnownValue(vmAddr, tfjsonpath.New("domain_type"), knownvalue.StringExact(bed.DomainType)),
					statecheck.ExpectKnownValue(vmAddr, tfjsonpath.New("root_volume"), knownvalue.StringExact(cfg.name+"-root.qcow2")),
					statecheck.ExpectKnownValue(vmAddr, tfjsonpath.New("ssh_host_public_key"), knownvalue.StringRegexp(regexp.MustCompile(`^ssh-ed25519 `))),
				},
				Check: resource.ComposeTestCheckFunc(
					checkDomain(bed, cfg.name, true, 512),
					checkSeedHoldsNoKey(bed, cfg.name+"-cidata.iso"),
					checkVolumeCapacity(bed, cfg.name+"-root.qcow2", 4<<30),
					checkGuest(login, "hostname", cfg.name),
					checkGuest(login, "cat /sys/block/vda/size", strconv.Itoa(4<<30/512)),
				),
			},
			{
				Config: cfg.String(),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
			},
			{
				// Shut down out of band: the plan shows it and apply starts the VM.
				// libvirtd restarts while that apply waits for the guest's SSH:
				// the provider rides through it.
				PreConfig: func() {
					shutdownDomain(t, bed, cfg.name)
					restarted = restartLibvirtdOnceRunning(bed, cfg.name)
				},
				Config: cfg.String(),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction(vmAddr, plancheck.ResourceActionUpdate),
						plancheck.ExpectKnownValue(vmAddr, tfjsonpath.New("running"), knownvalue.Bool(true)),
					},
				},
				Check: resource.ComposeTestCheckFunc(
					func(*terraform.State) error { return <-restarted },
					checkDomain(bed, cfg.name, true, 512),
					// The guest booted again from the scrubbed seed and kept its pinned key.
					checkGuest(login, "hostname", cfg.name),
				),
			},
			{
				// After the restart, a refresh of the running guest finds nothing to do.
				Config: cfg.String(),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
			},
			{
				// Memory and disk grow in place: an update, not a replacement.
				Config: grown.String(),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction(vmAddr, plancheck.ResourceActionUpdate)},
				},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(vmAddr, tfjsonpath.New("memory_mib"), knownvalue.Int64Exact(768)),
					statecheck.ExpectKnownValue(vmAddr, tfjsonpath.New("disk_size_gib"), knownvalue.Int64Exact(5)),
				},
				Check: resource.ComposeTestCheckFunc(
					checkDomain(bed, cfg.name, true, 768),
					checkVolumeCapacity(bed, cfg.name+"-root.qcow2", 5<<30),
					checkGuest(login, "cat /sys/block/vda/size", strconv.Itoa(5<<30/512)),
				),
			},
			{
				ResourceName:            vmAddr,
				ImportState:             true,
				ImportStateId:           cfg.name,
				ImportStateVerify:       true,
				ImportStateVerifyIgnore: []string{"timeouts", "ip_addresses"},
			},
			{
				// Import by UUID as well as by name.
				ResourceName:            vmAddr,
				ImportState:             true,
				ImportStateVerify:       true,
				ImportStateVerifyIgnore: []string{"timeouts", "ip_addresses"},
			},
		},
	})
}

// TestAccLibvirtVM_badInput checks plan-time errors; it needs no test bed.
func TestAccLibvirtVM_badInput(t *testing.T) {
	testAccPreCheck(t)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		Steps: []resource.TestStep{
			{
				Config: `
provider "kiln" {}
resource "kiln_libvirt_vm" "test" {
  name        = "no-block"
  pool        = "default"
  base_volume = "base.qcow2"
}`,
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`needs the provider's libvirt block`),
			},
			{
				Config: `
provider "kiln" {
  libvirt {}
}
resource "kiln_libvirt_vm" "test" {
  name        = "two-bases"
  pool        = "default"
  base_volume = "base.qcow2"
  base_image  = "/var/lib/images/base.qcow2"
}`,
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`(?s)base_volume.*base_image`),
			},
			{
				Config: `
provider "kiln" {
  libvirt {}
}
resource "kiln_libvirt_vm" "test" {
  name        = "user-first"
  pool        = "default"
  base_volume = "base.qcow2"
  network_interface {
    user_mode = true
  }
  network_interface {
    network = "default"
  }
}`,
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`User-mode interface must come last`),
			},
			{
				Config: `
provider "kiln" {
  libvirt {
    uri = "qemu+ssh://builder@kvm1.example.com/system"
  }
}
resource "kiln_libvirt_vm" "test" {
  name        = "remote-user-mode"
  pool        = "default"
  base_volume = "base.qcow2"
  network_interface {
    user_mode = true
  }
}`,
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`(?s)User-mode networking needs a local libvirt.*kvm1\.example\.com`),
			},
			{
				Config: `
provider "kiln" {
  libvirt {}
}
resource "kiln_libvirt_vm" "test" {
  name        = "bad name!"
  pool        = "default"
  base_volume = "base.qcow2"
  memory_mib  = 16
}`,
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`(?s)(name.*must start with a letter|memory_mib.*between)`),
			},
		},
	})
}

// TestAccLibvirtVM_deadDaemon checks that an unreachable libvirtd is a clear
// error and that nothing is recorded in state.
func TestAccLibvirtVM_deadDaemon(t *testing.T) {
	testAccPreCheck(t)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		Steps: []resource.TestStep{{
			Config: `
provider "kiln" {
  libvirt {
    uri = "qemu+unix:///system?socket=/nonexistent/libvirt-sock"
  }
}
resource "kiln_libvirt_vm" "test" {
  name        = "dead-daemon"
  pool        = "default"
  base_volume = "base.qcow2"
}`,
			ExpectError: regexp.MustCompile(`(?s)connect to libvirt at qemu\+unix:///system\?socket=/nonexistent/libvirt-sock.*is libvirtd running`),
		}},
	})
}

// TestAccLibvirtVM_volumeInUse checks that a create leaves a volume already
// under the VM's volume names alone: one that another domain uses fails the
// create naming that domain, and so does one no domain uses, which Kiln did not
// mark as its own. Neither boots a guest.
func TestAccLibvirtVM_volumeInUse(t *testing.T) {
	testAccPreCheck(t)
	bed := testenv.Libvirt(t)
	cfg := vmConfig{bed: bed, name: acctest.RandomWithPrefix("kiln-acc"), memoryMiB: 512, diskGiB: 4, loginKey: newLoginKey(t).public}
	root, other := cfg.name+"-root.qcow2", cfg.name+"-other"
	bed.RemoveGuestAtCleanup(t, cfg.name)
	bed.RemoveGuestAtCleanup(t, other)
	err := withLibvirt(bed, func(l *golibvirt.Libvirt) error {
		pool, err := l.StoragePoolLookupByName(bed.Pool)
		if err != nil {
			return err
		}
		vol, err := (&libvirtxml.StorageVolume{
			Name: root, Capacity: &libvirtxml.StorageVolumeSize{Value: 1 << 20},
			Target: &libvirtxml.StorageVolumeTarget{Format: &libvirtxml.StorageVolumeTargetFormat{Type: "raw"}},
		}).Marshal()
		if err != nil {
			return err
		}
		if _, err := l.StorageVolCreateXML(pool, vol, 0); err != nil {
			return err
		}
		dom, err := (&libvirtxml.Domain{
			Type: "qemu", Name: other, Memory: &libvirtxml.DomainMemory{Value: 64, Unit: "MiB"},
			OS: &libvirtxml.DomainOS{Type: &libvirtxml.DomainOSType{Arch: "x86_64", Type: "hvm"}},
			Devices: &libvirtxml.DomainDeviceList{Disks: []libvirtxml.DomainDisk{{
				Device: "disk",
				Source: &libvirtxml.DomainDiskSource{Volume: &libvirtxml.DomainDiskSourceVolume{Pool: bed.Pool, Volume: root}},
				Target: &libvirtxml.DomainDiskTarget{Dev: "vda", Bus: "virtio"},
			}}},
		}).Marshal()
		if err != nil {
			return err
		}
		_, err = l.DomainDefineXMLFlags(dom, 0)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}

	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		Steps: []resource.TestStep{
			{
				Config:      cfg.String(),
				ExpectError: wrappedText(fmt.Sprintf("volume %q already exists in pool %q and domain %q uses it", root, bed.Pool, other)),
			},
			{
				PreConfig: func() {
					if err := withLibvirt(bed, func(l *golibvirt.Libvirt) error {
						dom, err := l.DomainLookupByName(other)
						if err != nil {
							return err
						}
						return l.DomainUndefine(dom)
					}); err != nil {
						t.Fatal(err)
					}
				},
				Config:      cfg.String(),
				ExpectError: wrappedText(fmt.Sprintf("volume %q already exists in pool %q; no domain uses it, and Kiln did not mark it as its own", root, bed.Pool)),
			},
		},
	})
	stillThere := checkVolume(bed, root, func(*golibvirt.Libvirt, golibvirt.StorageVol) error { return nil })
	if err := stillThere(nil); err != nil {
		t.Errorf("the volume that was not Kiln's: %v", err)
	}
}

type loginKey struct {
	public string
	signer ssh.Signer
}

func newLoginKey(t *testing.T) loginKey {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return loginKey{public: remote.FormatPublicKey(sshPub), signer: signer}
}

// withLibvirt runs fn on a connection of its own to the test bed's libvirtd, so
// the assertions do not go through the engine under test.
func withLibvirt(bed testenv.LibvirtBed, fn func(*golibvirt.Libvirt) error) error {
	u, err := url.Parse(bed.URI)
	if err != nil {
		return err
	}
	l, err := golibvirt.ConnectToURI(u)
	if err != nil {
		return err
	}
	defer func() { _ = l.Disconnect() }()
	return fn(l)
}

// shutdownDomain powers the guest off through ACPI, as an operator running
// "virsh shutdown" would, and waits until it is off.
func shutdownDomain(t *testing.T, bed testenv.LibvirtBed, name string) {
	t.Helper()
	err := withLibvirt(bed, func(l *golibvirt.Libvirt) error {
		dom, err := l.DomainLookupByName(name)
		if err != nil {
			return err
		}
		if err := l.DomainShutdown(dom); err != nil {
			return err
		}
		return awaitDomainState(l, dom, golibvirt.DomainShutoff, 3*time.Minute)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// restartLibvirtdOnceRunning restarts libvirtd, as an operator would, a moment
// after the domain starts running, so the restart lands while the provider
// waits for the guest's SSH; the channel reports how the restart went.
func restartLibvirtdOnceRunning(bed testenv.LibvirtBed, name string) <-chan error {
	done := make(chan error, 1)
	go func() {
		err := withLibvirt(bed, func(l *golibvirt.Libvirt) error {
			dom, err := l.DomainLookupByName(name)
			if err != nil {
				return err
			}
			return awaitDomainState(l, dom, golibvirt.DomainRunning, 5*time.Minute)
		})
		if err == nil {
			// Clear of the resume call that made it run.
			time.Sleep(2 * time.Second)
			err = testenv.RestartLibvirtd()
		}
		done <- err
	}()
	return done
}

// checkDomain asserts on libvirt itself: the domain's state and defined memory.
func checkDomain(bed testenv.LibvirtBed, name string, running bool, memoryMiB uint) resource.TestCheckFunc {
	return func(*terraform.State) error {
		return withLibvirt(bed, func(l *golibvirt.Libvirt) error {
			dom, err := l.DomainLookupByName(name)
			if err != nil {
				return fmt.Errorf("domain %q: %w", name, err)
			}
			state, _, err := l.DomainGetState(dom, 0)
			if err != nil {
				return err
			}
			if got := golibvirt.DomainState(state) == golibvirt.DomainRunning; got != running {
				return fmt.Errorf("domain %q running = %v, want %v", name, got, running)
			}
			doc, err := l.DomainGetXMLDesc(dom, golibvirt.DomainXMLInactive)
			if err != nil {
				return err
			}
			var def libvirtxml.Domain
			if err := def.Unmarshal(doc); err != nil {
				return err
			}
			if got := def.Memory.Value >> 10; def.Memory.Unit != "KiB" || got != memoryMiB {
				return fmt.Errorf("domain %q memory = %d %s, want %d MiB", name, def.Memory.Value, def.Memory.Unit, memoryMiB)
			}
			return nil
		})
	}
}

// awaitDomainState polls the domain's state until it is want.
func awaitDomainState(l *golibvirt.Libvirt, dom golibvirt.Domain, want golibvirt.DomainState, limit time.Duration) error {
	for deadline := time.Now().Add(limit); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		state, _, err := l.DomainGetState(dom, 0)
		if err != nil {
			return err
		}
		if golibvirt.DomainState(state) == want {
			return nil
		}
	}
	return fmt.Errorf("domain %q did not reach state %d in %s", dom.Name, want, limit)
}

// checkSeedHoldsNoKey asserts that the seed volume no longer holds the guest's
// SSH private key once the guest answered with it.
func checkSeedHoldsNoKey(bed testenv.LibvirtBed, volume string) resource.TestCheckFunc {
	return checkVolume(bed, volume, func(l *golibvirt.Libvirt, vol golibvirt.StorageVol) error {
		var seed bytes.Buffer
		if err := l.StorageVolDownload(vol, &seed, 0, 0, 0); err != nil {
			return err
		}
		if bytes.Contains(seed.Bytes(), []byte("PRIVATE KEY")) {
			return fmt.Errorf("seed volume %q still holds a private key", volume)
		}
		return nil
	})
}

func checkVolumeCapacity(bed testenv.LibvirtBed, volume string, want uint64) resource.TestCheckFunc {
	return checkVolume(bed, volume, func(l *golibvirt.Libvirt, vol golibvirt.StorageVol) error {
		_, capacity, _, err := l.StorageVolGetInfo(vol)
		if err != nil {
			return err
		}
		if capacity != want {
			return fmt.Errorf("volume %q capacity = %d, want %d", volume, capacity, want)
		}
		return nil
	})
}

// checkVolume runs check on a volume of the test bed's pool, on a connection
// of its own.
func checkVolume(bed testenv.LibvirtBed, volume string, check func(*golibvirt.Libvirt, golibvirt.StorageVol) error) resource.TestCheckFunc {
	return func(*terraform.State) error {
		return withLibvirt(bed, func(l *golibvirt.Libvirt) error {
			pool, err := l.StoragePoolLookupByName(bed.Pool)
			if err != nil {
				return err
			}
			vol, err := l.StorageVolLookupByName(pool, volume)
			if err != nil {
				return fmt.Errorf("volume %q: %w", volume, err)
			}
			return check(l, vol)
		})
	}
}

// checkGuest logs into the guest as the image's default user with the declared
// key, pinning the host key from state, and compares cmd's output with want.
func checkGuest(login loginKey, cmd, want string) resource.TestCheckFunc {
	return func(s *terraform.State) error {
		rs := s.RootModule().Resources[vmAddr]
		if rs == nil {
			return fmt.Errorf("%s not in state", vmAddr)
		}
		attrs := rs.Primary.Attributes
		hostKey, err := remote.ParsePublicKey(attrs["ssh_host_public_key"])
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		c, err := remote.Dial(ctx, remote.Target{
			Addr: attrs["ssh_host"] + ":" + attrs["ssh_port"], User: "debian",
			Auth: []ssh.AuthMethod{remote.SignerAuth(login.signer)}, HostKey: remote.PinHostKey(hostKey),
		})
		if err != nil {
			return err
		}
		defer c.Close()
		out, err := c.Run(ctx, "check guest", cmd)
		if err != nil {
			return err
		}
		if got := strings.TrimSpace(out); got != want {
			return fmt.Errorf("guest %q printed %q, want %q", cmd, got, want)
		}
		return nil
	}
}

// checkVMGone asserts that destroy left no domain and none of the VM's volumes,
// and left the base volume alone.
func checkVMGone(bed testenv.LibvirtBed, name string) resource.TestCheckFunc {
	return func(*terraform.State) error {
		return withLibvirt(bed, func(l *golibvirt.Libvirt) error {
			if _, err := l.DomainLookupByName(name); !golibvirt.IsNotFound(err) {
				return fmt.Errorf("domain %q still exists (lookup error: %v)", name, err)
			}
			pool, err := l.StoragePoolLookupByName(bed.Pool)
			if err != nil {
				return err
			}
			if err := l.StoragePoolRefresh(pool, 0); err != nil {
				return err
			}
			vols, _, err := l.StoragePoolListAllVolumes(pool, 1, 0)
			if err != nil {
				return err
			}
			base := false
			for _, v := range vols {
				if strings.HasPrefix(v.Name, name+"-") {
					return fmt.Errorf("volume %q left behind", v.Name)
				}
				base = base || v.Name == bed.BaseVolume
			}
			if !base {
				return fmt.Errorf("base volume %q is gone", bed.BaseVolume)
			}
			return nil
		})
	}
}
