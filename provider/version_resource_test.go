package provider

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	ggcr "github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/hashicorp/terraform-plugin-testing/helper/acctest"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/kilnhq/terraform-provider-kiln/internal/testenv"
)

const (
	versionAddr   = "kiln_version.v1"
	qaReleaseAddr = "kiln_release.qa"
	versionName   = "v1.0.0"
)

// versionBed is a project of two services, backend (started first) and
// frontend, whose images the test pushed to the test registry.
type versionBed struct {
	kube     testenv.KubeBed
	registry testenv.RegistryBed
	project  string
	repo     string // the test's repositories: <repo>/backend, <repo>/frontend
	// backend is pushed with the tag 1.0; frontend is given by digest.
	backendDigest, frontendRef string
}

func (b versionBed) config(extra string) string {
	return fmt.Sprintf(`
provider "kiln" {
  kubernetes {
    config_path = %[1]q
  }
  registry {
    url      = %[2]q
    username = %[3]q
    password = %[4]q
    insecure = true
  }
}

resource "kiln_project" "shop" {
  name = %[5]q
  services = {
    backend  = <<-YAML
%[6]s
    YAML
    frontend = <<-YAML
%[7]s
    YAML
  }
  startup_order = [["backend"], ["frontend"]]
  variables = {
    node_type = "kwok"
    greeting  = "hello"
  }
}

resource "kiln_environment" "qa" {
  project = kiln_project.shop.name
  name    = "qa"
}

resource "kiln_version" "v1" {
  project     = kiln_project.shop.name
  name        = %[8]q
  description = "the first cut for qa"
  labels      = { stable = "true" }
  services = {
    backend  = "%[2]s/%[9]s/backend:1.0"
    frontend = %[10]q
  }
  distribute_to = "%[2]s/%[9]s/qa"
}

resource "kiln_release" "qa" {
  project     = kiln_project.shop.name
  environment = kiln_environment.qa.name
  version     = kiln_version.v1.name
}

data "kiln_release_history" "qa" {
  project     = kiln_release.qa.project
  environment = kiln_release.qa.environment
  depends_on  = [kiln_release.qa]
}
%[11]s`, b.kube.Kubeconfig, b.registry.Host, b.registry.Username, b.registry.Password, b.project,
		indent(fmt.Sprintf(deploymentTemplate, "backend")), indent(fmt.Sprintf(deploymentTemplate, "frontend")),
		versionName, b.repo, b.frontendRef, extra)
}

// distributed is a service's image as the version holds it: copied to the
// qa repository under the same digest.
func (b versionBed) distributed(service, digest string) string {
	return b.registry.Host + "/" + b.repo + "/qa/" + service + "@" + digest
}

func (b versionBed) auth() ggcr.Option {
	return ggcr.WithAuth(authn.FromConfig(authn.AuthConfig{Username: b.registry.Username, Password: b.registry.Password}))
}

// push pushes a random image to <repo>/<service>:<tag> and returns its digest.
func (b versionBed) push(t *testing.T, service, tag string) string {
	t.Helper()
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.NewTag(b.registry.Host + "/" + b.repo + "/" + service + ":" + tag)
	if err != nil {
		t.Fatal(err)
	}
	if err := ggcr.Write(ref, img, b.auth()); err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

// TestAccVersion_release makes a version of two images (one given by tag,
// resolved to its digest at plan time; one by digest), distributed to a qa
// repository, and releases it to qa: the Deployments run the digests, the
// history records the version. It then edits the version's record out of
// band (the plan shows it, apply writes it back), deletes it (the plan
// creates it again), refuses a second version of the same name and a tag
// that does not resolve, fails a release of a version that does not exist,
// keeps the version's startup order when the project's changes, releases the
// version replaced under its name at the next plan, and imports the version
// and the release.
func TestAccVersion_release(t *testing.T) {
	testAccPreCheck(t)
	b := versionBed{kube: testenv.Kube(t), registry: testenv.Registry(t)}
	b.project = acctest.RandomWithPrefix("kiln-ver")
	b.repo = "kiln-test/" + b.project
	b.backendDigest = b.push(t, "backend", "1.0")
	frontendDigest := b.push(t, "frontend", "build-7")
	b.frontendRef = b.registry.Host + "/" + b.repo + "/frontend@" + frontendDigest
	cs := kubeClient(t, b.kube)
	ns := b.project + "-env-qa"
	record := "kiln-version-" + b.project + "." + versionName
	wantImages := map[string]string{
		"backend":  b.distributed("backend", b.backendDigest),
		"frontend": b.distributed("frontend", frontendDigest),
	}
	imagesAre := knownvalue.MapExact(map[string]knownvalue.Check{
		"backend":  knownvalue.StringExact(wantImages["backend"]),
		"frontend": knownvalue.StringExact(wantImages["frontend"]),
	})
	base := b.config("")
	// next is the version with another frontend.
	newFrontend := b.push(t, "frontend", "build-8")
	next := strings.Replace(base, b.frontendRef, b.registry.Host+"/"+b.repo+"/frontend@"+newFrontend, 1)

	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		CheckDestroy: func(s *terraform.State) error {
			if _, err := cs.CoreV1().ConfigMaps(controlNamespace).Get(context.Background(), record, metav1.GetOptions{}); err == nil {
				return fmt.Errorf("version record %s still exists", record)
			}
			return checkNamespacesGone(cs, ns)(s)
		},
		Steps: []resource.TestStep{
			{
				Config: base,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					// The tag is pinned in the plan already.
					plancheck.ExpectKnownValue(versionAddr, tfjsonpath.New("images"), imagesAre),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(versionAddr, tfjsonpath.New("startup_order"), knownvalue.ListExact([]knownvalue.Check{
						knownvalue.ListExact([]knownvalue.Check{knownvalue.StringExact("backend")}),
						knownvalue.ListExact([]knownvalue.Check{knownvalue.StringExact("frontend")}),
					})),
					statecheck.ExpectKnownValue(versionAddr, tfjsonpath.New("drift"), knownvalue.ListSizeExact(0)),
					statecheck.ExpectKnownValue(qaReleaseAddr, tfjsonpath.New("services"), knownvalue.Null()),
					statecheck.ExpectKnownValue(qaReleaseAddr, tfjsonpath.New("version"), knownvalue.StringExact(versionName)),
					statecheck.ExpectKnownValue(qaReleaseAddr, tfjsonpath.New("deployed_images"), imagesAre),
					statecheck.ExpectKnownValue("data.kiln_release_history.qa", tfjsonpath.New("revisions").AtSliceIndex(0).AtMapKey("from_version"), knownvalue.Bool(true)),
					statecheck.ExpectKnownValue("data.kiln_release_history.qa", tfjsonpath.New("revisions").AtSliceIndex(0).AtMapKey("version"), knownvalue.StringExact(versionName)),
				},
				Check: resource.ComposeTestCheckFunc(
					checkDeployedImages(cs, ns, wantImages),
					checkRolledOutNamed(cs, ns, "backend", "frontend"),
					b.checkDistributed(wantImages),
				),
			},
			{
				Config:           base,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
			},
			{
				// Someone points the version's backend at another image in its
				// record: the plan shows the drift, apply writes the record back.
				PreConfig: func() {
					images, _ := json.Marshal(map[string]string{"backend": b.registry.Host + "/evil/backend@" + frontendDigest, "frontend": wantImages["frontend"]})
					patchRecord(t, cs, record, map[string]string{"images": string(images)})
				},
				Config: base,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(versionAddr, plancheck.ResourceActionUpdate),
					plancheck.ExpectKnownValue(versionAddr, tfjsonpath.New("drift"), knownvalue.ListSizeExact(0)),
				}},
				Check: resource.ComposeTestCheckFunc(
					checkRecordImages(cs, record, wantImages),
					checkDeployedImages(cs, ns, wantImages),
				),
			},
			{
				Config:           base,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
			},
			{
				// The record deleted out of band: the plan makes the version again.
				PreConfig: func() {
					if err := cs.CoreV1().ConfigMaps(controlNamespace).Delete(context.Background(), record, metav1.DeleteOptions{}); err != nil {
						t.Fatal(err)
					}
				},
				Config: base,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(versionAddr, plancheck.ResourceActionCreate),
				}},
				Check: checkRecordImages(cs, record, wantImages),
			},
			{
				// A second version of the name in the project.
				Config: b.config(fmt.Sprintf(`
resource "kiln_version" "again" {
  project  = kiln_project.shop.name
  name     = kiln_version.v1.name
  services = { backend = %q }
}
`, wantImages["backend"])),
				ExpectError: wrappedRegexp("Version name taken", fmt.Sprintf("version %q of project %q: the project already has a version of this name", versionName, b.project)),
			},
			{
				// A tag that does not resolve is refused at plan, naming the service.
				Config: b.config(fmt.Sprintf(`
resource "kiln_version" "v2" {
  project  = kiln_project.shop.name
  name     = "v2.0.0"
  services = { backend = "%s/%s/backend:2.0" }
}
`, b.registry.Host, b.repo)),
				PlanOnly:    true,
				ExpectError: wrappedRegexp(`services["backend"]`, `tag "2.0" does not resolve`),
			},
			{
				// A release of a version the project does not have fails,
				// naming what it looked for.
				Config: strings.Replace(base, "version     = kiln_version.v1.name", `version     = "v9.9.9"`, 1),
				ExpectError: wrappedRegexp("release v9.9.9 of "+b.project+"/qa", "given no images (services) deploys the version",
					`version "v9.9.9" of project "`+b.project+`"`, "not found"),
			},
			{
				// The project's startup order changes: the version keeps its
				// snapshot, and nothing is released.
				Config: strings.Replace(base, `startup_order = [["backend"], ["frontend"]]`, `startup_order = [["frontend"], ["backend"]]`, 1),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("kiln_project.shop", plancheck.ResourceActionUpdate),
					plancheck.ExpectResourceAction(versionAddr, plancheck.ResourceActionNoop),
					plancheck.ExpectResourceAction(qaReleaseAddr, plancheck.ResourceActionNoop),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(versionAddr, tfjsonpath.New("startup_order").AtSliceIndex(0),
						knownvalue.ListExact([]knownvalue.Check{knownvalue.StringExact("backend")})),
				},
			},
			{
				// The version replaced under its name with another frontend:
				// the release's plan had read the old record, so it follows at
				// the next plan.
				Config: next,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(versionAddr, plancheck.ResourceActionDestroyBeforeCreate),
					plancheck.ExpectResourceAction(qaReleaseAddr, plancheck.ResourceActionNoop),
				}},
				ExpectNonEmptyPlan: true,
			},
			{
				Config: next,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(qaReleaseAddr, plancheck.ResourceActionUpdate),
				}},
				Check: checkDeployedImages(cs, ns, map[string]string{"frontend": b.distributed("frontend", newFrontend)}),
			},
			{
				ResourceName:            versionAddr,
				ImportState:             true,
				ImportStateId:           b.project + "/" + versionName,
				ImportStateVerify:       true,
				ImportStateVerifyIgnore: []string{"timeouts"},
			},
			{
				ResourceName:      qaReleaseAddr,
				ImportState:       true,
				ImportStateId:     b.project + "/qa",
				ImportStateVerify: true,
				// Apply settings are not part of the deployed revision.
				ImportStateVerifyIgnore: []string{"timeouts", "rollback_on_failure", "rollout_timeout"},
			},
		},
	})
}

// checkDeployedImages checks the image of each service's Deployment in ns.
func checkDeployedImages(cs kubernetes.Interface, ns string, want map[string]string) resource.TestCheckFunc {
	return func(*terraform.State) error {
		for svc, image := range want {
			d, err := cs.AppsV1().Deployments(ns).Get(context.Background(), svc, metav1.GetOptions{})
			if err != nil {
				return err
			}
			if got := d.Spec.Template.Spec.Containers[0].Image; got != image {
				return fmt.Errorf("deployment %s runs %s, want %s", svc, got, image)
			}
		}
		return nil
	}
}

func checkRolledOutNamed(cs kubernetes.Interface, ns string, names ...string) resource.TestCheckFunc {
	return func(*terraform.State) error {
		for _, svc := range names {
			d, err := cs.AppsV1().Deployments(ns).Get(context.Background(), svc, metav1.GetOptions{})
			if err != nil {
				return err
			}
			if d.Status.AvailableReplicas < 1 {
				return fmt.Errorf("deployment %s not rolled out: %+v", svc, d.Status)
			}
		}
		return nil
	}
}

// checkDistributed checks that each distributed image is in the registry,
// tagged with the version name.
func (b versionBed) checkDistributed(want map[string]string) resource.TestCheckFunc {
	return func(*terraform.State) error {
		for svc, image := range want {
			tag, err := name.NewTag(b.registry.Host + "/" + b.repo + "/qa/" + svc + ":" + versionName)
			if err != nil {
				return err
			}
			desc, err := ggcr.Head(tag, b.auth())
			if err != nil {
				return fmt.Errorf("distributed %s: %w", svc, err)
			}
			if got := tag.Context().Digest(desc.Digest.String()).String(); got != image {
				return fmt.Errorf("%s is %s, want %s", tag, got, image)
			}
		}
		return nil
	}
}

// patchRecord edits a version's record as kubectl would.
func patchRecord(t *testing.T, cs kubernetes.Interface, record string, data map[string]string) {
	t.Helper()
	patch, _ := json.Marshal(map[string]any{"data": data})
	if _, err := cs.CoreV1().ConfigMaps(controlNamespace).Patch(context.Background(), record, types.MergePatchType, patch,
		metav1.PatchOptions{FieldManager: "kubectl-edit"}); err != nil {
		t.Fatal(err)
	}
}

func checkRecordImages(cs kubernetes.Interface, record string, want map[string]string) resource.TestCheckFunc {
	return func(*terraform.State) error {
		cm, err := cs.CoreV1().ConfigMaps(controlNamespace).Get(context.Background(), record, metav1.GetOptions{})
		if err != nil {
			return err
		}
		var got map[string]string
		if err := json.Unmarshal([]byte(cm.Data["images"]), &got); err != nil {
			return err
		}
		if sortedMapString(got) != sortedMapString(want) {
			return fmt.Errorf("record images %v, want %v", got, want)
		}
		return nil
	}
}
