package provider

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"
	"github.com/hashicorp/terraform-plugin-testing/helper/acctest"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"libvirt.org/go/libvirtxml"

	"github.com/kilnhq/terraform-provider-kiln/internal/testenv"
)

// TestAccLibvirtVM_boot starts a VM whose base is a blank volume: the firmware
// finds nothing to boot. The apply fails after boot_timeout, not the create
// timeout, saying what the console showed; the failed VM is kept, forced off,
// replaced by the next apply, and destroy leaves neither domain nor volume.
func TestAccLibvirtVM_boot(t *testing.T) {
	testAccPreCheck(t)
	bed := testenv.Libvirt(t)
	name := acctest.RandomWithPrefix("kiln-acc-boot")
	blank := createBlankVolume(t, bed, "blank-"+name+".qcow2")
	cfg := fmt.Sprintf(`
provider "kiln" {
  libvirt {
    uri = %q
  }
}

resource "kiln_libvirt_vm" "test" {
  name         = %q
  domain_type  = %q
  pool         = %q
  base_volume  = %q
  vcpu         = 1
  memory_mib   = 512
  boot_timeout = "45s"

  network_interface {
    user_mode = true
  }
}
`, bed.URI, name, bed.DomainType, bed.Pool, blank)
	// The CLIs wrap long diagnostics, so words may be parted by a line break.
	bootFailed := wrappedText(
		fmt.Sprintf("domain %q (domain type %s) showed no kernel output on its serial console within 45s", name, bed.DomainType),
		"the console shows firmware output only",
		"| No bootable device.",
	)
	var started time.Time

	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		CheckDestroy:             checkVMGone(bed, name),
		Steps: []resource.TestStep{
			{
				PreConfig:   func() { started = time.Now() },
				Config:      cfg,
				ExpectError: bootFailed,
			},
			{
				// The failed VM is recorded, tainted, and left off; the same
				// configuration replaces it, which could not create a domain of
				// the same name had the first one not been destroyed.
				PreConfig: func() {
					if took := time.Since(started); took > 5*time.Minute {
						t.Errorf("the failed create took %s; boot_timeout is 45s", took)
					}
					checkFailedVMKept(t, bed, name)
				},
				Config: cfg,
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction(vmAddr, plancheck.ResourceActionDestroyBeforeCreate)},
				},
				ExpectError: bootFailed,
			},
		},
	})
}

// createBlankVolume makes an empty qcow2 volume in the test pool, removed when
// the test ends.
func createBlankVolume(t *testing.T, bed testenv.LibvirtBed, name string) string {
	t.Helper()
	doc, err := (&libvirtxml.StorageVolume{
		Name:     name,
		Capacity: &libvirtxml.StorageVolumeSize{Value: 1, Unit: "GiB"},
		Target:   &libvirtxml.StorageVolumeTarget{Format: &libvirtxml.StorageVolumeTargetFormat{Type: "qcow2"}},
	}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	err = withLibvirt(bed, func(l *golibvirt.Libvirt) error {
		pool, err := l.StoragePoolLookupByName(bed.Pool)
		if err != nil {
			return err
		}
		_, err = l.StorageVolCreateXML(pool, doc, 0)
		return err
	})
	if err != nil {
		t.Fatalf("create blank volume %q: %v", name, err)
	}
	t.Cleanup(func() {
		err := withLibvirt(bed, func(l *golibvirt.Libvirt) error {
			pool, err := l.StoragePoolLookupByName(bed.Pool)
			if err != nil {
				return err
			}
			vol, err := l.StorageVolLookupByName(pool, name)
			if err != nil {
				return err
			}
			return l.StorageVolDelete(vol, golibvirt.StorageVolDeleteNormal)
		})
		if err != nil {
			t.Errorf("delete blank volume %q: %v", name, err)
		}
	})
	return name
}

// checkFailedVMKept asserts that the VM whose boot failed is still defined,
// with its volumes, and forced off.
func checkFailedVMKept(t *testing.T, bed testenv.LibvirtBed, name string) {
	t.Helper()
	err := withLibvirt(bed, func(l *golibvirt.Libvirt) error {
		dom, err := l.DomainLookupByName(name)
		if err != nil {
			return fmt.Errorf("domain %q: %w", name, err)
		}
		state, _, err := l.DomainGetState(dom, 0)
		if err != nil {
			return err
		}
		if golibvirt.DomainState(state) != golibvirt.DomainShutoff {
			return fmt.Errorf("domain %q is in state %d, want shut off", name, state)
		}
		pool, err := l.StoragePoolLookupByName(bed.Pool)
		if err != nil {
			return err
		}
		for _, vol := range []string{name + "-root.qcow2", name + "-cidata.iso"} {
			if _, err := l.StorageVolLookupByName(pool, vol); err != nil {
				return fmt.Errorf("volume %q: %w", vol, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// wrappedText matches the texts in order, each as the CLIs print it wrapped:
// a space may become a line break and the "│ " that starts each line of a
// diagnostic.
func wrappedText(texts ...string) *regexp.Regexp {
	parts := make([]string, len(texts))
	for i, text := range texts {
		words := strings.Fields(text)
		for j, w := range words {
			words[j] = regexp.QuoteMeta(w)
		}
		parts[i] = strings.Join(words, `[\s│]+`)
	}
	return regexp.MustCompile(`(?s)` + strings.Join(parts, `.*`))
}
