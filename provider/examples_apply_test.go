package provider

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/config"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kilnhq/terraform-provider-kiln/internal/testenv"
)

// The examples these tests apply as written. The others need guests or builds
// (kiln_libvirt_vm, kiln_go_host, kiln_host_facts, kiln_build_pool, kiln_build,
// the quickstart): TestExamplesMatchSchemas only checks them against the schemas.
var (
	deliveryExamples = []string{
		"provider/provider.tf",
		"resources/kiln_project/resource.tf",
		"resources/kiln_environment/resource.tf",
		"resources/kiln_release/resource.tf",
		"resources/kiln_version/resource.tf",
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

// exampleImports returns the imports an example's import.sh shows, as test
// steps on the configuration of step: each plans an import block of its ID
// with the rest of the state in place, and the plan must import without a change.
func exampleImports(t *testing.T, step resource.TestStep, examples ...string) []resource.TestStep {
	t.Helper()
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	var steps []resource.TestStep
	for _, e := range examples {
		data, err := os.ReadFile(filepath.Join(root, "examples", e, "import.sh"))
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(data), "\n") {
			args, ok := strings.CutPrefix(line, "terraform import ")
			if !ok {
				continue
			}
			addr, id, ok := strings.Cut(args, " ")
			if !ok {
				t.Fatalf("%s/import.sh: %q is not terraform import ADDRESS ID", e, line)
			}
			s := step
			s.ResourceName, s.ImportState, s.ImportStateId = addr, true, id
			s.ImportStateKind = resource.ImportBlockWithID
			// An imported release does not know the settings that steer its
			// rollouts (rollback_on_failure, rollout_timeout, history_limit):
			// the plan after the import updates them, and releases again.
			s.ExpectNonEmptyPlan = strings.HasPrefix(addr, "kiln_release.")
			steps = append(steps, s)
		}
	}
	if len(steps) == 0 {
		t.Fatalf("no terraform import lines in %v", examples)
	}
	return steps
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

// examplesStep applies the examples in dir (from exampleDir) and checks that
// the next plan is empty.
func examplesStep(dir func(config.TestStepConfigRequest) string, vars config.Variables) resource.TestStep {
	return resource.TestStep{
		ProtoV6ProviderFactories: testAccProviders, // a directory's provider blocks take them per step
		ConfigDirectory:          dir,
		ConfigVariables:          vars,
		ConfigPlanChecks:         resource.ConfigPlanChecks{PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
	}
}

// TestAccExamples_delivery applies the provider's example with the project,
// environment and release examples on the test cluster, its kubeconfig at
// ~/.kube/config, then adds the history and status readers; each plan after is
// empty. Their import.sh lines import what was applied. Tearing down takes what
// the environment example's comment says: force_destroy on the production
// environment.
func TestAccExamples_delivery(t *testing.T) {
	testAccPreCheck(t)
	bed := testenv.Kube(t)
	// The examples name their project "shop", as the quickstart does
	// (TestAccQuickstart): one run at a time on this cluster.
	bed.Lock(t, "examples")
	cs := kubeClient(t, bed)
	removeProject(t, cs, "shop") // what a run that failed before destroy left
	userHome(t, map[string]string{".kube/config": bed.Kubeconfig})
	t.Setenv("KUBECONFIG", "")
	vars := config.Variables{"registry_password": config.StringVariable("registry-secret")}
	readers := slices.Concat(deliveryExamples, deliveryReaders)

	apply := examplesStep(exampleDir(t, deliveryExamples, nil), vars)
	apply.ConfigStateChecks = []statecheck.StateCheck{
		statecheck.ExpectKnownOutputValue("dev_revision", knownvalue.Int64Exact(1)),
		statecheck.ExpectKnownOutputValue("go124", knownvalue.StringRegexp(regexp.MustCompile(`^1\.24\.\d+ h1:\S+=$`))),
		// prod runs the version's digests.
		statecheck.ExpectKnownValue("kiln_release.prod", tfjsonpath.New("deployed_images").AtMapKey("api"),
			knownvalue.StringExact("registry.example.com/shop/api@sha256:9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f")),
	}
	apply.Check = resource.ComposeTestCheckFunc(
		checkProjectRecord(cs, "shop", "The shop: a database, an API and a web front end.", 3),
		checkRolledOut(cs, "shop-env-dev"),
		checkRolledOut(cs, "shop-env-prod"),
	)
	read := examplesStep(exampleDir(t, readers, nil), vars)
	read.ConfigStateChecks = []statecheck.StateCheck{
		statecheck.ExpectKnownOutputValue("dev_versions", knownvalue.ListExact([]knownvalue.Check{
			knownvalue.StringRegexp(regexp.MustCompile(`^1: v1\.4\.0 \(\w+\)$`)),
		})),
		statecheck.ExpectKnownOutputValue("dev_images", knownvalue.MapExact(map[string]knownvalue.Check{
			"db":  knownvalue.ListExact([]knownvalue.Check{knownvalue.StringExact("postgres:16")}),
			"api": knownvalue.ListExact([]knownvalue.Check{knownvalue.StringExact("registry.example.com/shop/api:20250101120000-main")}),
			"web": knownvalue.ListExact([]knownvalue.Check{knownvalue.StringExact("registry.example.com/shop/web:20250101120000-main")}),
		})),
	}
	teardown := examplesStep(exampleDir(t, readers, map[string]string{"teardown_override.tf": `
resource "kiln_environment" "prod" {
  force_destroy = true
}
`}), vars)
	teardown.ConfigPlanChecks.PreApply = []plancheck.PlanCheck{
		plancheck.ExpectResourceAction("kiln_environment.prod", plancheck.ResourceActionUpdate),
		plancheck.ExpectResourceAction("kiln_release.dev", plancheck.ResourceActionNoop),
		plancheck.ExpectResourceAction("kiln_release.prod", plancheck.ResourceActionNoop),
	}

	resource.Test(t, resource.TestCase{
		CheckDestroy: resource.ComposeTestCheckFunc(
			checkProjectGone(cs, "shop"),
			checkNamespacesGone(cs, "shop-env-dev", "shop-env-prod"),
		),
		Steps: slices.Concat(
			[]resource.TestStep{apply, read},
			exampleImports(t, read, "resources/kiln_project", "resources/kiln_environment", "resources/kiln_release", "resources/kiln_version"),
			[]resource.TestStep{teardown},
		),
	})
}

// TestAccExamples_vsphere applies the vSphere VM example with the template's
// example on a simulator whose inventory has the examples' names, the connection
// in VSPHERE_* variables, then adds the other inventory readers; each plan after
// is empty. The VM's import.sh imports it by path (not by BIOS UUID: the
// simulator's clone has its own).
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
	vsphereEnv(t, bed, "") // the only datacenter
	// go-ci-1 is on DHCP: its lease comes once it is on.
	reportGuestIPLater(t, bed, "/DC1/vm/go-ci-1", "10.20.0.77", time.Second)

	apply := examplesStep(exampleDir(t, vsphereExamples, nil), nil)
	apply.ConfigStateChecks = []statecheck.StateCheck{
		statecheck.ExpectKnownOutputValue("builder_ip", knownvalue.StringExact("10.20.0.31")),
		statecheck.ExpectKnownValue("kiln_vsphere_vm.ci", tfjsonpath.New("default_ip_address"), knownvalue.StringExact("10.20.0.77")),
	}
	apply.Check = resource.ComposeTestCheckFunc(
		checkVsphereVM(bed, "/DC1/vm/builds/go/go-builder-1", vmWant{poweredOn: true, cpus: 4, memoryMiB: 8192, diskGiB: 60,
			datastore: "ssd-01", hostname: "go-builder-1", extra: map[string]string{"guestinfo.kiln.role": "go-builder"}}),
		checkVsphereVM(bed, "/DC1/vm/go-ci-1", vmWant{poweredOn: true, cpus: 1, memoryMiB: 512, diskGiB: testenv.TemplateDiskGiB}),
	)
	read := examplesStep(exampleDir(t, slices.Concat(vsphereExamples, vsphereReaders), nil), nil)
	read.ConfigStateChecks = []statecheck.StateCheck{
		statecheck.ExpectKnownValue("data.kiln_vsphere_datacenter.current", tfjsonpath.New("name"), knownvalue.StringExact("DC1")),
		statecheck.ExpectKnownOutputValue("build_hosts", knownvalue.ListSizeExact(3)),
	}

	resource.Test(t, resource.TestCase{
		CheckDestroy: resource.ComposeTestCheckFunc(
			checkVsphereVMGone(bed, "go-builder-1"),
			checkVsphereVMGone(bed, "go-ci-1"),
		),
		Steps: slices.Concat(
			[]resource.TestStep{apply, read},
			exampleImports(t, read, "resources/kiln_vsphere_vm")[:1],
		),
	})
}

// removeProject deletes a project's records and environments' namespaces from
// the cluster behind Kiln's back, and waits for the namespaces to be gone.
func removeProject(t *testing.T, cs kubernetes.Interface, project string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	selector := metav1.ListOptions{LabelSelector: "kiln.dev/project=" + project}
	err := errors.Join(
		cs.CoreV1().ConfigMaps("kiln-system").DeleteCollection(ctx, metav1.DeleteOptions{}, selector),
		cs.CoreV1().Secrets("kiln-system").DeleteCollection(ctx, metav1.DeleteOptions{}, selector),
	)
	if err != nil {
		t.Fatalf("remove project %s: %v", project, err)
	}
	for {
		namespaces, err := cs.CoreV1().Namespaces().List(ctx, selector)
		if err != nil {
			t.Fatalf("remove project %s: %v", project, err)
		}
		if len(namespaces.Items) == 0 {
			return
		}
		for _, ns := range namespaces.Items {
			if ns.DeletionTimestamp == nil {
				if err := cs.CoreV1().Namespaces().Delete(ctx, ns.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
					t.Fatalf("remove project %s: %v", project, err)
				}
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("remove project %s: namespaces still there: %v", project, ctx.Err())
		case <-time.After(time.Second):
		}
	}
}
