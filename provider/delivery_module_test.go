package provider

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	ggcr "github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"

	"github.com/kilnhq/terraform-provider-kiln/internal/testenv"
)

// moduleSuiteScript is the delivery module's test suite in the module test:
// it checks the commit built has the build stamp's route and writes a JUnit
// report, so the suite gates the release without compiling tests on the
// guest (TestAccTest_gate covers go test's suites).
const moduleSuiteScript = `mkdir -p test-report
if grep -q '/api/buildstamp' main.go; then c='<testcase classname="backend" name="buildstamp route"/>'
else c='<testcase classname="backend" name="buildstamp route"><failure message="no /api/buildstamp route"/></testcase>'; fi
printf '<testsuite name="backend" tests="1">%s</testsuite>' "$c" > test-report/routes.xml`

// deliveryModule is the examples/modules/delivery-project module applied
// through a module block, on the build farm's pool, with the sample backend
// as its one service.
type deliveryModule struct {
	buildFarmBed
	source      string // the module's directory
	servicesDir string // the services' YAML folder
}

// moduleRoot requires the provider as kilnhq/kiln, as the module does.
const moduleRoot = `
terraform {
  required_providers {
    kiln = {
      source = "kilnhq/kiln"
    }
  }
}
`

// config is the farm's pool and the module, with its outputs the test reads.
func (m deliveryModule) config() string {
	return moduleRoot + m.pool() + fmt.Sprintf(`
module "delivery" {
  source = %[1]q

  name         = "%[2]s-app"
  services_dir = %[3]q
  variables    = { node_type = "kwok", greeting = "hello" }
  image_rule   = "{{.Project}}/{{.Service}}:{{.Timestamp}}-{{.Branch}}"
  pool_labels  = { pool = %[2]q }
  go_version   = "1.24"

  builds = {
    backend = {
      git_url      = %[4]q
      ldflags      = "-X main.buildStamp={{.Git.CommitDate}}"
      test_script  = %[5]q
      test_reports = ["test-report/*.xml"]
    }
  }
  git_username = %[6]q
  git_password = %[7]q

  qa_version = {
    name        = "v1.0.0"
    description = "The sample backend, tested."
  }

  depends_on = [kiln_build_pool.test]
}

data "kiln_release_history" "qa" {
  project     = module.delivery.project
  environment = "qa"
  depends_on  = [module.delivery]
}

output "image" {
  value = module.delivery.images["backend"]
}

output "commit" {
  value = module.delivery.commits["backend"]
}

output "suite" {
  value = "${module.delivery.tests["backend"].status} ${module.delivery.tests["backend"].passed}/${module.delivery.tests["backend"].total}"
}

output "dev" {
  value = "revision ${module.delivery.dev_revision}: ${module.delivery.dev_images["backend"]}"
}

output "version" {
  value = "${module.delivery.version}: ${module.delivery.version_images["backend"]}"
}

output "qa" {
  value = "revision ${module.delivery.qa_revision}: ${module.delivery.qa_images["backend"]}"
}

output "qa_history" {
  value = join(", ", [for r in data.kiln_release_history.qa.revisions : "${r.revision} ${r.version} from_version=${r.from_version}"])
}
`, m.source, m.name, m.servicesDir, m.repo.URL, moduleSuiteScript, m.git.Username, m.git.Password)
}

// TestAccModule_deliveryProject applies the delivery-project module through a
// module block on the build farm's test bed (the shared guest as the pool
// host, its build cache seeded as for TestAccBuild_farm): the sample backend
// is built from main, its suite passes, dev runs the build's image by
// digest, version v1.0.0 pins that digest and qa runs it, released from the
// version; the plan is empty afterwards. A new commit is built, tested and
// released to dev, while the version and qa keep the first image.
func TestAccModule_deliveryProject(t *testing.T) {
	testAccPreCheck(t)
	m := deliveryModule{buildFarmBed: newBuildFarmBed(t, "dlv")}
	m.local = newLocalBuild(t)
	m.seed = m.local.cacheSeed(t)
	m.repo = m.git.NewRepo(t)
	commit := m.repo.Commit(t, "the sample backend", testenv.SampleService(t))
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	m.source = filepath.Join(root, "examples", "modules", "delivery-project")
	m.servicesDir = t.TempDir()
	// The file is the YAML itself, not an HCL string: no $$ escapes.
	backend := strings.ReplaceAll(fmt.Sprintf(deploymentTemplate, "backend"), "$${", "${")
	if err := os.WriteFile(filepath.Join(m.servicesDir, "backend.yaml"), []byte(backend), 0o600); err != nil {
		t.Fatal(err)
	}
	// The module requires kilnhq/kiln: the test serves the provider under
	// that address.
	t.Setenv("TF_ACC_PROVIDER_NAMESPACE", "kilnhq")
	m.host = goHostGuest(t)
	cs := kubeClient(t, m.kube)
	project := m.name + "-app"
	devNS, qaNS := project+"-env-dev", project+"-env-qa"
	start := time.Now()
	defer func() { t.Logf("TestAccModule_deliveryProject took %s", time.Since(start).Round(time.Second)) }()
	var image, second string
	// The configurations are directories: the CLI's init, which installs the
	// module, sees only those (a Config string is written after it). Their
	// provider blocks make the providers the steps'.
	poolOnly := exampleDir(t, nil, map[string]string{"main.tf": moduleRoot + m.pool()})
	full := exampleDir(t, nil, map[string]string{"main.tf": m.config()})
	// The checks read the state as JSON (outputsAre): the legacy state that
	// Check and CheckDestroy get has no child modules. So the last step
	// destroys, and the namespaces' removal is checked after the test.
	imagePattern := regexp.MustCompile(`^` + regexp.QuoteMeta(m.registry.Host+"/"+project+"/backend@sha256:") + `[0-9a-f]{64}$`)
	resource.Test(t, resource.TestCase{
		Steps: []resource.TestStep{
			{ProtoV6ProviderFactories: testAccProviders, ConfigDirectory: poolOnly},
			{
				ProtoV6ProviderFactories: testAccProviders,
				PreConfig:                func() { m.seedBuildCache(t) },
				ConfigDirectory:          full,
				ConfigStateChecks: []statecheck.StateCheck{outputsAre(func(out map[string]any) error {
					var ok bool
					if image, ok = out["image"].(string); !ok || !imagePattern.MatchString(image) {
						return fmt.Errorf("output image is %v, want %s", out["image"], imagePattern)
					}
					ref, err := name.NewDigest(image, name.Insecure)
					if err != nil {
						return err
					}
					if _, err := ggcr.Head(ref, m.auth()); err != nil {
						return fmt.Errorf("the built image is not in the registry: %w", err)
					}
					if err := outputsEqual(out, map[string]string{
						"commit":     commit,
						"suite":      "passed 1/1",
						"dev":        "revision 1: " + image,
						"version":    "v1.0.0: " + image,
						"qa":         "revision 1: " + image,
						"qa_history": "1 v1.0.0 from_version=true",
					}); err != nil {
						return err
					}
					if err := checkDeployment(cs, devNS, "backend", 1, image)(nil); err != nil {
						return err
					}
					return checkDeployment(cs, qaNS, "backend", 1, image)(nil)
				})},
			},
			{
				ProtoV6ProviderFactories: testAccProviders,
				ConfigDirectory:          full,
				ConfigPlanChecks:         resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
			},
			{
				// A new commit on main: the backend is built and tested again
				// and released to dev; the version keeps the image it pinned,
				// and qa keeps running it.
				ProtoV6ProviderFactories: testAccProviders,
				PreConfig: func() {
					files := testenv.SampleService(t)
					files["main.go"] = append(files["main.go"], "\n// A second commit.\n"...)
					second = m.repo.Commit(t, "a second commit", files)
				},
				ConfigDirectory: full,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(`module.delivery.kiln_build.this["backend"]`, plancheck.ResourceActionReplace),
					plancheck.ExpectResourceAction(`module.delivery.kiln_test.this["backend"]`, plancheck.ResourceActionReplace),
					plancheck.ExpectResourceAction("module.delivery.kiln_release.dev", plancheck.ResourceActionUpdate),
					plancheck.ExpectResourceAction("module.delivery.kiln_version.this[0]", plancheck.ResourceActionNoop),
					plancheck.ExpectResourceAction("module.delivery.kiln_release.qa[0]", plancheck.ResourceActionNoop),
				}},
				ConfigStateChecks: []statecheck.StateCheck{outputsAre(func(out map[string]any) error {
					newImage, _ := out["image"].(string)
					if newImage == image || !imagePattern.MatchString(newImage) {
						return fmt.Errorf("the new commit's image is %q, the first was %s", newImage, image)
					}
					if err := outputsEqual(out, map[string]string{
						"commit":  second,
						"suite":   "passed 1/1",
						"dev":     "revision 2: " + newImage,
						"version": "v1.0.0: " + image,
						"qa":      "revision 1: " + image,
					}); err != nil {
						return err
					}
					if err := checkDeployment(cs, devNS, "backend", 1, newImage)(nil); err != nil {
						return err
					}
					return checkDeployment(cs, qaNS, "backend", 1, image)(nil)
				})},
			},
			{ProtoV6ProviderFactories: testAccProviders, ConfigDirectory: full, Destroy: true},
		},
	})
	if err := checkNamespacesGone(cs, devNS, qaNS)(nil); err != nil {
		t.Error(err)
	}
}

// outputsAre is a state check of the root module's outputs, read from the
// state as JSON.
type outputsAre func(outputs map[string]any) error

func (check outputsAre) CheckState(_ context.Context, req statecheck.CheckStateRequest, resp *statecheck.CheckStateResponse) {
	outputs := map[string]any{}
	if req.State != nil && req.State.Values != nil {
		for k, o := range req.State.Values.Outputs {
			outputs[k] = o.Value
		}
	}
	resp.Error = check(outputs)
}

// outputsEqual checks string outputs.
func outputsEqual(outputs map[string]any, want map[string]string) error {
	for k, v := range want {
		if got := outputs[k]; got != v {
			return fmt.Errorf("output %s is %v, want %q", k, got, v)
		}
	}
	return nil
}
