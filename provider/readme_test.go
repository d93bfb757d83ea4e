package provider

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/acctest"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"
	"golang.org/x/crypto/ssh"

	"github.com/kilnhq/terraform-provider-kiln/internal/testenv"
)

// readmeHCL returns the HCL snippets of README.md's tour, joined. The Install
// section's snippets (a provider requirement from the registry and a CLI
// configuration) are what TestAccInstall exercises.
func readmeHCL(t *testing.T) string {
	t.Helper()
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	tour, ok := markdownSection(string(data), "## A short tour")
	if !ok {
		t.Fatal(`README.md has no "## A short tour" section`)
	}
	blocks := regexp.MustCompile("(?s)```hcl\n(.*?)```").FindAllStringSubmatch(tour, -1)
	if len(blocks) == 0 {
		t.Fatal("README.md's tour has no hcl snippet")
	}
	var out []string
	for _, b := range blocks {
		out = append(out, b[1])
	}
	return strings.Join(out, "\n")
}

// markdownSection returns the section of doc under heading, up to the next
// heading of the same level.
func markdownSection(doc, heading string) (string, bool) {
	_, rest, ok := strings.Cut(doc, "\n"+heading+"\n")
	if !ok {
		return "", false
	}
	level := heading[:strings.Index(heading, " ")+1]
	if end := strings.Index(rest, "\n"+level); end >= 0 {
		rest = rest[:end]
	}
	return rest, true
}

// onThisMachine rewrites what a reader changes when copying a snippet: the
// paths of their keys, the pool, the VM's name (tests may run side by side),
// and the domain type that boots on this machine.
func onThisMachine(t *testing.T, hcl string, bed testenv.LibvirtBed, keyFile, name string) string {
	t.Helper()
	r := strings.NewReplacer(
		`"~/.ssh/id_ed25519.pub"`, fmt.Sprintf("%q", keyFile+".pub"),
		`"~/.ssh/id_ed25519"`, fmt.Sprintf("%q", keyFile),
		`uri = "qemu:///system"`, fmt.Sprintf("uri = %q", bed.URI),
		`pool          = "default"`, fmt.Sprintf("pool          = %q\n  domain_type   = %q", bed.Pool, bed.DomainType),
		`base_volume   = "debian12-base.qcow2"`, fmt.Sprintf("base_volume   = %q", bed.BaseVolume),
		`"go-builder-1"`, fmt.Sprintf("%q", name),
	)
	out := r.Replace(hcl)
	for _, want := range []string{keyFile, bed.Pool, name} {
		if !strings.Contains(out, want) {
			t.Fatalf("README.md's tour changed shape: %q not substituted in\n%s", want, out)
		}
	}
	return out
}

// TestAccReadme_tour applies README.md's tour as written: a VM, then a Go host
// on it with a default left to Kiln and a version request ("1.24"). The next
// plan is empty, and growing the VM's memory updates the VM in place without
// touching the host on it.
func TestAccReadme_tour(t *testing.T) {
	testAccPreCheck(t)
	bed := testenv.Libvirt(t)
	keyFile, signer := writeLoginKey(t, t.TempDir())
	name := acctest.RandomWithPrefix("kiln-readme")
	bed.RemoveGuestAtCleanup(t, name)
	tour := onThisMachine(t, readmeHCL(t), bed, keyFile, name)
	grown := strings.Replace(tour, "memory_mib    = 2048", "memory_mib    = 2560", 1)
	if grown == tour {
		t.Fatal("README.md's tour no longer sets memory_mib = 2048")
	}
	const vm, host = "kiln_libvirt_vm.builder", "kiln_go_host.builder"
	var goInode string

	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		CheckDestroy:             checkVMGone(bed, name),
		Steps: []resource.TestStep{
			{
				Config: tour,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(host, tfjsonpath.New("go").AtMapKey("resolved_versions"), knownvalue.ListExact([]knownvalue.Check{
						knownvalue.StringRegexp(regexp.MustCompile(`^1\.24\.\d+$`)), knownvalue.StringExact("1.23.10")})),
					statecheck.ExpectKnownValue(host, tfjsonpath.New("go").AtMapKey("default"), knownvalue.StringRegexp(regexp.MustCompile(`^1\.24\.\d+$`))),
					statecheck.ExpectKnownValue(host, tfjsonpath.New("installed"), knownvalue.ListSizeExact(2)),
				},
				Check: resource.ComposeTestCheckFunc(
					checkHostOf(vm, signer, "go version | grep -c 'go1\\.24\\.'", "1"),
					checkHostOf(vm, signer, "go env GOPRIVATE", "git.example.com/*"),
					checkHostOf(vm, signer, "ulimit -n", "65536"),
					recordHost(vm, signer, "stat -c %i /usr/local/go/1.23.10/bin/go", &goInode),
				),
			},
			{
				// Unchanged HCL plans nothing, with the default left to Kiln.
				Config: tour,
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
			},
			{
				// More memory: the VM is updated in place, and the host on it,
				// reached through the VM's SSH attributes, is left alone.
				Config: grown,
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction(vm, plancheck.ResourceActionUpdate),
						plancheck.ExpectResourceAction(host, plancheck.ResourceActionNoop),
						plancheck.ExpectKnownValue(vm, tfjsonpath.New("ssh_port"), knownvalue.NotNull()),
					},
				},
				Check: resource.ComposeTestCheckFunc(
					checkDomain(bed, name, true, 2560),
					func(s *terraform.State) error {
						return checkHostOf(vm, signer, "stat -c %i /usr/local/go/1.23.10/bin/go", goInode)(s)
					},
				),
			},
			{
				Config: grown,
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
			},
		},
	})
}

// recordHost stores what cmd prints on the host, for a later step to compare.
func recordHost(vm string, signer ssh.Signer, cmd string, into *string) resource.TestCheckFunc {
	return func(s *terraform.State) (err error) {
		*into, err = hostOutput(s, vm, signer, cmd)
		return err
	}
}
