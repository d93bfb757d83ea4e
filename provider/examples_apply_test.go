package provider

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/config"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/kilnhq/terraform-provider-kiln/internal/testenv"
)

// The examples these tests apply as written. The others need a guest (a
// kiln_libvirt_vm, a Go host over SSH, a build pool and builds): the README
// tour test applies what they show on one.
var (
	deliveryExamples = []string{
		"provider/provider.tf",
		"resources/kiln_project/resource.tf",
		"resources/kiln_environment/resource.tf",
		"resources/kiln_release/resource.tf",
		"data-sources/kiln_go_release/data-source.tf",
	}
	// The readers of what the release deployed, added once it is there.
	deliveryReaders = []string{
		"data-sources/kiln_environment_status/data-source.tf",
		"data-sources/kiln_release_history/data-source.tf",
	}
	vsphereExamples = []string{
		"resources/kiln_vsphere_vm/resource.tf",
		"data-sources/kiln_vsphere_template/data-source.tf",
	}
	// The inventory readers, added once the VMs are there (ssd-01's free space
	// is read before they take theirs from it otherwise).
	vsphereReaders = []string{
		"data-sources/kiln_vsphere_datacenter/data-source.tf",
		"data-sources/kiln_vsphere_cluster/data-source.tf",
		"data-sources/kiln_vsphere_datastore/data-source.tf",
		"data-sources/kiln_vsphere_network/data-source.tf",
	}
)

// exampleDir composes a working directory of examples (paths below examples/),
// copied as written, and of extra files (name to content) around them.
func exampleDir(t *testing.T, examples []string, extra map[string]string) func(config.TestStepConfigRequest) string {
	t.Helper()
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, e := range examples {
		data, err := os.ReadFile(filepath.Join(root, "examples", e))
		if err != nil {
			t.Fatal(err)
		}
		name := strings.ReplaceAll(filepath.Dir(e), "/", "-") + ".tf"
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for name, content := range extra {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return config.StaticDirectory(dir)
}

// userHome makes a temporary HOME, for the provider in this process and the
// CLI it starts, holding the files at the given paths below it.
func userHome(t *testing.T, files map[string]string) {
	t.Helper()
	home := t.TempDir()
	t.Setenv("HOME", home)
	for name, src := range files {
		data, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(home, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// TestAccExamples_delivery applies the provider's example with the project,
// environment and release examples on the test cluster, its kubeconfig at
// ~/.kube/config, then adds the history and status readers; each plan after is
// empty. Tearing down takes what the environment example's comment says:
// force_destroy on the production environment.
func TestAccExamples_delivery(t *testing.T) {
	testAccPreCheck(t)
	bed := testenv.Kube(t)
	// The examples name their project "shop": one run at a time on this cluster.
	bed.Lock(t, "examples")
	userHome(t, map[string]string{".kube/config": bed.Kubeconfig})
	t.Setenv("KUBECONFIG", "")
	cs := kubeClient(t, bed)
	vars := config.Variables{"registry_password": config.StringVariable("registry-secret")}
	readers := append(append([]string{}, deliveryExamples...), deliveryReaders...)
	empty := resource.ConfigPlanChecks{PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}}

	resource.Test(t, resource.TestCase{
		CheckDestroy: resource.ComposeTestCheckFunc(
			checkProjectGone(cs, "shop"),
			checkNamespacesGone(cs, "shop-env-dev", "shop-env-prod"),
		),
		Steps: []resource.TestStep{
			{
				ProtoV6ProviderFactories: testAccProviders, // a directory's provider blocks take them per step
				ConfigDirectory:          exampleDir(t, deliveryExamples, nil),
				ConfigVariables:          vars,
				ConfigPlanChecks:         empty,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownOutputValue("dev_revision", knownvalue.Int64Exact(1)),
					statecheck.ExpectKnownOutputValue("go124", knownvalue.StringRegexp(regexp.MustCompile(`^1\.24\.\d+ h1:\S+=$`))),
				},
				Check: resource.ComposeTestCheckFunc(
					checkProjectRecord(cs, "shop", "The shop: a database, an API and a web front end.", 3),
					checkRolledOut(cs, "shop-env-dev"),
				),
			},
			{
				ProtoV6ProviderFactories: testAccProviders, // a directory's provider blocks take them per step
				ConfigDirectory:          exampleDir(t, readers, nil),
				ConfigVariables:          vars,
				ConfigPlanChecks:         empty,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownOutputValue("dev_versions", knownvalue.ListExact([]knownvalue.Check{
						knownvalue.StringRegexp(regexp.MustCompile(`^1: v1\.4\.0 \(\w+\)$`)),
					})),
					statecheck.ExpectKnownOutputValue("dev_images", knownvalue.MapExact(map[string]knownvalue.Check{
						"db":  knownvalue.ListExact([]knownvalue.Check{knownvalue.StringExact("postgres:16")}),
						"api": knownvalue.ListExact([]knownvalue.Check{knownvalue.StringExact("registry.example.com/shop/api:20250101120000-main")}),
						"web": knownvalue.ListExact([]knownvalue.Check{knownvalue.StringExact("registry.example.com/shop/web:20250101120000-main")}),
					})),
				},
			},
			{
				ProtoV6ProviderFactories: testAccProviders, // a directory's provider blocks take them per step
				ConfigDirectory: exampleDir(t, readers, map[string]string{"teardown_override.tf": `
resource "kiln_environment" "prod" {
  force_destroy = true
}
`}),
				ConfigVariables: vars,
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction("kiln_environment.prod", plancheck.ResourceActionUpdate),
						plancheck.ExpectResourceAction("kiln_release.dev", plancheck.ResourceActionNoop),
					},
					PostApplyPostRefresh: empty.PostApplyPostRefresh,
				},
			},
		},
	})
}

// TestAccExamples_vsphere applies the vSphere VM example with the vSphere data
// sources' examples on a simulator whose inventory has the examples' names, the
// connection in VSPHERE_* variables; the next plan is empty.
func TestAccExamples_vsphere(t *testing.T) {
	testAccPreCheck(t)
	bed := testenv.VsphereNamed(t, testenv.VsphereNames{
		Datacenter:   "DC1",
		Cluster:      "build-cluster",
		ResourcePool: "builds",
		Datastore:    "ssd-01",
		Network:      "build-net",
		VMFolder:     "builds/go",
		Template:     "templates/debian-12-go",
	})
	t.Setenv("VSPHERE_SERVER", bed.Server)
	t.Setenv("VSPHERE_USER", bed.User)
	t.Setenv("VSPHERE_PASSWORD", bed.Password)
	t.Setenv("VSPHERE_ALLOW_UNVERIFIED_SSL", "true")
	t.Setenv("VSPHERE_DATACENTER", "")
	// go-ci-1 is on DHCP: its lease comes once it is on.
	reportGuestIPLater(t, bed, "/DC1/vm/go-ci-1", "10.20.0.77", time.Second)
	empty := resource.ConfigPlanChecks{PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}}

	resource.Test(t, resource.TestCase{
		CheckDestroy: resource.ComposeTestCheckFunc(
			checkVsphereVMGone(bed, "go-builder-1"),
			checkVsphereVMGone(bed, "go-ci-1"),
		),
		Steps: []resource.TestStep{
			{
				ProtoV6ProviderFactories: testAccProviders, // a directory's provider blocks take them per step
				ConfigDirectory:          exampleDir(t, vsphereExamples, nil),
				ConfigPlanChecks:         empty,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownOutputValue("builder_ip", knownvalue.StringExact("10.20.0.31")),
					statecheck.ExpectKnownValue("kiln_vsphere_vm.ci", tfjsonpath.New("default_ip_address"), knownvalue.StringExact("10.20.0.77")),
				},
				Check: resource.ComposeTestCheckFunc(
					checkVsphereVM(bed, "/DC1/vm/builds/go/go-builder-1", vmWant{poweredOn: true, cpus: 4, memoryMiB: 8192, diskGiB: 60,
						datastore: "ssd-01", hostname: "go-builder-1", extra: map[string]string{"guestinfo.kiln.role": "go-builder"}}),
					checkVsphereVM(bed, "/DC1/vm/go-ci-1", vmWant{poweredOn: true, cpus: 1, memoryMiB: 512, diskGiB: testenv.TemplateDiskGiB}),
				),
			},
			{
				ProtoV6ProviderFactories: testAccProviders,
				ConfigDirectory:          exampleDir(t, append(append([]string{}, vsphereExamples...), vsphereReaders...), nil),
				ConfigPlanChecks:         empty,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("data.kiln_vsphere_datacenter.current", tfjsonpath.New("name"), knownvalue.StringExact("DC1")),
					statecheck.ExpectKnownOutputValue("build_hosts", knownvalue.ListSizeExact(3)),
				},
			},
		},
	})
}
