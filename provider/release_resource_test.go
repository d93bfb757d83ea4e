package provider

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	fwtypes "github.com/hashicorp/terraform-plugin-framework/types"
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

	"github.com/kilnhq/terraform-provider-kiln/internal/delivery/history"
	"github.com/kilnhq/terraform-provider-kiln/internal/testenv"
)

const releaseAddr = "kiln_release.dev"

type releaseConfig struct {
	project  string
	version  string
	tag      string // image tag of every service
	nodeType string // dev's node_type: "kwok" schedules, anything else cannot
	rollback bool
	timeout  string
}

func (c releaseConfig) String() string {
	// The provider block is empty: the kubeconfig comes from KUBECONFIG.
	return `
provider "kiln" {
  kubernetes {}
}
` + projectHCL(c.project) + fmt.Sprintf(`
resource "kiln_environment" "dev" {
  project   = kiln_project.test.name
  name      = "dev"
  variables = { node_type = %[1]q }
}

resource "kiln_environment" "qa" {
  project = kiln_project.test.name
  name    = "qa"
}

resource "kiln_release" "dev" {
  project     = kiln_project.test.name
  environment = kiln_environment.dev.name
  version     = %[2]q
  services = {
    db  = "registry.shop.test/db:%[3]s"
    api = "registry.shop.test/api:%[3]s"
    web = "registry.shop.test/web:%[3]s"
  }
  rollback_on_failure = %[4]t
  rollout_timeout     = %[5]q
}

data "kiln_release_history" "dev" {
  project     = kiln_release.dev.project
  environment = kiln_release.dev.environment
  depends_on  = [kiln_release.dev]
}

data "kiln_environment_status" "dev" {
  project     = kiln_release.dev.project
  environment = kiln_release.dev.environment
  depends_on  = [kiln_release.dev]
}
`, c.nodeType, c.version, c.tag, c.rollback, c.timeout)
}

// TestAccRelease_lifecycle releases v1 and v2 of a three-service project to dev,
// checks the images, rollouts, history and startup order in the cluster; edits
// an image out of band (the plan shows it, apply restores it); lets other field
// managers add an annotation and scale a Deployment (no diff); releases a
// version that cannot roll out (a clear error, then a rollback recorded in the
// history); and imports the release.
func TestAccRelease_lifecycle(t *testing.T) {
	testAccPreCheck(t)
	bed := testenv.Kube(t)
	t.Setenv("KUBECONFIG", bed.Kubeconfig)
	cs := kubeClient(t, bed)
	project := acctest.RandomWithPrefix("kiln-rel")
	ns := project + "-env-dev"
	v1 := releaseConfig{project: project, version: "v1", tag: "1.0", nodeType: "kwok", rollback: true, timeout: "2m"}
	v2 := v1
	v2.version, v2.tag = "v2", "2.0"
	broken := v2
	broken.version, broken.tag, broken.nodeType, broken.timeout = "v3", "3.0", "nowhere", "8s"

	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		CheckDestroy:             checkNamespacesGone(cs, ns, project+"-env-qa"),
		Steps: []resource.TestStep{
			{
				Config: v1.String(),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(releaseAddr, tfjsonpath.New("revision"), knownvalue.Int64Exact(1)),
					statecheck.ExpectKnownValue(releaseAddr, tfjsonpath.New("status"), knownvalue.StringExact("deployed")),
					statecheck.ExpectKnownValue(releaseAddr, tfjsonpath.New("deployed_images").AtMapKey("api"), knownvalue.StringExact("registry.shop.test/api:1.0")),
					statecheck.ExpectKnownValue(releaseAddr, tfjsonpath.New("drift"), knownvalue.ListSizeExact(0)),
					statecheck.ExpectKnownValue("data.kiln_environment_status.dev", tfjsonpath.New("workloads"), knownvalue.ListSizeExact(3)),
					statecheck.ExpectKnownValue("data.kiln_environment_status.dev", tfjsonpath.New("workloads").AtSliceIndex(0).AtMapKey("rolled_out"), knownvalue.Bool(true)),
				},
				Check: resource.ComposeTestCheckFunc(
					checkImages(cs, ns, "1.0"),
					checkRolledOut(cs, ns),
					checkHistory(cs, controlNamespace, project, map[int]string{1: "deployed"}),
					checkGreeting(cs, ns, "hello"),
				),
			},
			{
				Config: v2.String(),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(releaseAddr, plancheck.ResourceActionUpdate),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(releaseAddr, tfjsonpath.New("revision"), knownvalue.Int64Exact(2)),
					statecheck.ExpectKnownValue("data.kiln_release_history.dev", tfjsonpath.New("revisions"), knownvalue.ListSizeExact(2)),
					statecheck.ExpectKnownValue("data.kiln_release_history.dev", tfjsonpath.New("revisions").AtSliceIndex(0).AtMapKey("status"), knownvalue.StringExact("superseded")),
				},
				Check: resource.ComposeTestCheckFunc(
					checkImages(cs, ns, "2.0"),
					checkRolledOut(cs, ns),
					checkHistory(cs, controlNamespace, project, map[int]string{1: "superseded", 2: "deployed"}),
					checkStartupOrder(cs, ns),
				),
			},
			{
				Config:           v2.String(),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
			},
			{
				// An image edited by hand: the plan shows the drift, apply restores it.
				PreConfig: func() { setImage(t, cs, ns, "api", "registry.shop.test/api:hotfix") },
				Config:    v2.String(),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(releaseAddr, plancheck.ResourceActionUpdate),
					plancheck.ExpectKnownValue(releaseAddr, tfjsonpath.New("drift"), knownvalue.ListSizeExact(0)),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(releaseAddr, tfjsonpath.New("revision"), knownvalue.Int64Exact(3)),
				},
				Check: checkImages(cs, ns, "2.0"),
			},
			{
				// A deleted Deployment shows too.
				PreConfig: func() {
					if err := cs.AppsV1().Deployments(ns).Delete(context.Background(), "web", metav1.DeleteOptions{}); err != nil {
						t.Fatal(err)
					}
				},
				Config: v2.String(),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(releaseAddr, plancheck.ResourceActionUpdate),
				}},
				Check: resource.ComposeTestCheckFunc(checkImages(cs, ns, "2.0"), checkRolledOut(cs, ns)),
			},
			{
				// Fields other managers own never cause a diff.
				PreConfig:        func() { otherManagers(t, cs, ns) },
				Config:           v2.String(),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
			},
			{
				// v3 cannot be scheduled anywhere: the apply fails clearly and,
				// with rollback_on_failure, dev is back on v2.
				Config: broken.String(),
				ExpectError: wrappedRegexp("(revision 5) failed", "startup group 1 (db)", "rollout did not complete",
					"didn't match Pod's node affinity/selector", "rolled back to revision 4 (version v2) as revision 6"),
			},
			{
				Config: v2.String(),
				Check: resource.ComposeTestCheckFunc(
					checkImages(cs, ns, "2.0"),
					checkRolledOut(cs, ns),
					checkHistory(cs, controlNamespace, project, map[int]string{1: "superseded", 2: "superseded", 3: "superseded", 4: "superseded", 5: "failed", 6: "deployed"}),
					checkRollbackRecord(cs, controlNamespace, project),
				),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(releaseAddr, tfjsonpath.New("revision"), knownvalue.Int64Exact(6)),
					statecheck.ExpectKnownValue(releaseAddr, tfjsonpath.New("version"), knownvalue.StringExact("v2")),
					statecheck.ExpectKnownValue("data.kiln_release_history.dev", tfjsonpath.New("revisions").AtSliceIndex(5).AtMapKey("rollback_of"), knownvalue.Int64Exact(4)),
				},
			},
			{
				ResourceName:      releaseAddr,
				ImportState:       true,
				ImportStateId:     project + "/dev",
				ImportStateVerify: true,
				// Apply settings are not part of the deployed revision.
				ImportStateVerifyIgnore: []string{"timeouts", "rollback_on_failure", "rollout_timeout"},
			},
		},
	})
}

// wrappedRegexp matches the parts in order in an error message the CLI may have
// wrapped across lines.
func wrappedRegexp(parts ...string) *regexp.Regexp {
	for i, p := range parts {
		parts[i] = strings.ReplaceAll(regexp.QuoteMeta(p), " ", `\s+`)
	}
	return regexp.MustCompile(`(?s)` + strings.Join(parts, ".*"))
}

func checkImages(cs kubernetes.Interface, ns, tag string) resource.TestCheckFunc {
	return func(*terraform.State) error {
		for _, svc := range []string{"db", "api", "web"} {
			d, err := cs.AppsV1().Deployments(ns).Get(context.Background(), svc, metav1.GetOptions{})
			if err != nil {
				return err
			}
			want := "registry.shop.test/" + svc + ":" + tag
			if got := d.Spec.Template.Spec.Containers[0].Image; got != want {
				return fmt.Errorf("deployment %s image %s, want %s", svc, got, want)
			}
		}
		return nil
	}
}

func checkRolledOut(cs kubernetes.Interface, ns string) resource.TestCheckFunc {
	return func(*terraform.State) error {
		for _, svc := range []string{"db", "api", "web"} {
			d, err := cs.AppsV1().Deployments(ns).Get(context.Background(), svc, metav1.GetOptions{})
			if err != nil {
				return err
			}
			if d.Status.ObservedGeneration < d.Generation || d.Status.AvailableReplicas < 1 || d.Status.UpdatedReplicas != d.Status.Replicas {
				return fmt.Errorf("deployment %s not rolled out: %+v", svc, d.Status)
			}
		}
		return nil
	}
}

func checkGreeting(cs kubernetes.Interface, ns, want string) resource.TestCheckFunc {
	return func(*terraform.State) error {
		d, err := cs.AppsV1().Deployments(ns).Get(context.Background(), "api", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if got := d.Spec.Template.Spec.Containers[0].Env[0].Value; got != want {
			return fmt.Errorf("GREETING = %q, want %q", got, want)
		}
		return nil
	}
}

// checkHistory checks the revision Secrets in namespace ns (the control
// namespace): their labels and statuses.
func checkHistory(cs kubernetes.Interface, ns, project string, want map[int]string) resource.TestCheckFunc {
	return func(*terraform.State) error {
		l, err := cs.CoreV1().Secrets(ns).List(context.Background(), metav1.ListOptions{
			LabelSelector: "owner=kiln,kiln.dev/project=" + project + ",kiln.dev/env=dev",
		})
		if err != nil {
			return err
		}
		got := map[int]string{}
		for _, s := range l.Items {
			var rev int
			if _, err := fmt.Sscanf(s.Labels["revision"], "%d", &rev); err != nil {
				return fmt.Errorf("secret %s revision label %q", s.Name, s.Labels["revision"])
			}
			if s.Type != "kiln.dev/release.v1" || len(s.Data["release"]) == 0 {
				return fmt.Errorf("secret %s: type %s, %d bytes", s.Name, s.Type, len(s.Data["release"]))
			}
			got[rev] = s.Labels["status"]
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			return fmt.Errorf("history %v, want %v", got, want)
		}
		return nil
	}
}

func checkRollbackRecord(cs kubernetes.Interface, ns, project string) resource.TestCheckFunc {
	return func(*terraform.State) error {
		s, err := cs.CoreV1().Secrets(ns).Get(context.Background(), "kiln.release.v1."+project+".dev.v6", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if s.Labels["version"] != "v2" {
			return fmt.Errorf("rollback revision version %q", s.Labels["version"])
		}
		return nil
	}
}

// checkStartupOrder checks that group 2 (api, web) was applied only after group
// 1 (db) had rolled out: kiln's apply of api and web is no earlier than db's
// Available condition.
func checkStartupOrder(cs kubernetes.Interface, ns string) resource.TestCheckFunc {
	return func(*terraform.State) error {
		ctx := context.Background()
		applied := func(name string) (time.Time, error) {
			d, err := cs.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return time.Time{}, err
			}
			for _, mf := range d.ManagedFields {
				if mf.Manager == "kiln" && mf.Operation == metav1.ManagedFieldsOperationApply && mf.Time != nil {
					return mf.Time.Time, nil
				}
			}
			return time.Time{}, fmt.Errorf("deployment %s has no kiln apply", name)
		}
		db, err := cs.AppsV1().Deployments(ns).Get(ctx, "db", metav1.GetOptions{})
		if err != nil {
			return err
		}
		var dbReady time.Time
		for _, c := range db.Status.Conditions {
			if c.Type == "Progressing" && c.Reason == "NewReplicaSetAvailable" {
				dbReady = c.LastUpdateTime.Time
			}
		}
		dbApplied, err := applied("db")
		if err != nil {
			return err
		}
		if dbReady.IsZero() || dbReady.Before(dbApplied) {
			return fmt.Errorf("db rolled out at %v, applied at %v", dbReady, dbApplied)
		}
		for _, svc := range []string{"api", "web"} {
			at, err := applied(svc)
			if err != nil {
				return err
			}
			if at.Before(dbReady) {
				return fmt.Errorf("%s applied at %v, before db rolled out at %v", svc, at, dbReady)
			}
		}
		return nil
	}
}

func setImage(t *testing.T, cs kubernetes.Interface, ns, name, image string) {
	t.Helper()
	patch := fmt.Sprintf(`{"spec":{"template":{"spec":{"containers":[{"name":%q,"image":%q}]}}}}`, name, image)
	if _, err := cs.AppsV1().Deployments(ns).Patch(context.Background(), name, types.StrategicMergePatchType, []byte(patch),
		metav1.PatchOptions{FieldManager: "kubectl-set"}); err != nil {
		t.Fatal(err)
	}
}

// otherManagers adds an annotation with a plain update and scales api with a
// server-side apply of its own, as an autoscaler would.
func otherManagers(t *testing.T, cs kubernetes.Interface, ns string) {
	t.Helper()
	ctx := context.Background()
	patch := `{"metadata":{"annotations":{"example.com/checked-by":"audit"}}}`
	if _, err := cs.AppsV1().Deployments(ns).Patch(ctx, "web", types.MergePatchType, []byte(patch),
		metav1.PatchOptions{FieldManager: "audit"}); err != nil {
		t.Fatal(err)
	}
	apply := `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"api"},"spec":{"replicas":2}}`
	force := true
	if _, err := cs.AppsV1().Deployments(ns).Patch(ctx, "api", types.ApplyPatchType, []byte(apply),
		metav1.PatchOptions{FieldManager: "autoscaler", Force: &force}); err != nil {
		t.Fatal(err)
	}
}

// scaledReleaseHCL is a one-service project whose Deployment sets replicas: 1,
// released to dev.
func scaledReleaseHCL(project, version, tag string) string {
	api := strings.Replace(fmt.Sprintf(deploymentTemplate, "api"), "spec:\n  selector:", "spec:\n  replicas: 1\n  selector:", 1)
	return deliveryConfig{
		project: project, services: map[string]string{"api": api}, projectVars: `{ node_type = "kwok", greeting = "hello" }`,
		version: version, images: fmt.Sprintf(`{ api = "registry.shop.test/api:%s" }`, tag),
	}.String()
}

// TestAccRelease_scaleSubresource: a Deployment whose YAML sets replicas: 1 and
// that another manager scales through the scale subresource (as an HPA or
// kubectl scale does) shows no drift, and no later apply scales it back; an
// image set by hand (a plain update by another manager) still is drift.
func TestAccRelease_scaleSubresource(t *testing.T) {
	testAccPreCheck(t)
	bed := testenv.Kube(t)
	t.Setenv("KUBECONFIG", bed.Kubeconfig)
	cs := kubeClient(t, bed)
	project := acctest.RandomWithPrefix("kiln-scale")
	ns := project + "-env-dev"

	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		CheckDestroy:             checkNamespacesGone(cs, ns),
		Steps: []resource.TestStep{
			{
				Config: scaledReleaseHCL(project, "v1", "1.0"),
				Check:  checkDeployment(cs, ns, "api", 1, "registry.shop.test/api:1.0"),
			},
			{
				// The scaler's replicas are not drift: nothing to apply.
				PreConfig:        func() { scaleSubresource(t, cs, ns, "api", 3) },
				Config:           scaledReleaseHCL(project, "v1", "1.0"),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(releaseAddr, tfjsonpath.New("drift"), knownvalue.ListSizeExact(0)),
					statecheck.ExpectKnownValue(releaseAddr, tfjsonpath.New("revision"), knownvalue.Int64Exact(1)),
				},
				Check: checkDeployment(cs, ns, "api", 3, "registry.shop.test/api:1.0"),
			},
			{
				// An image set by hand is drift: apply restores it and leaves the
				// scaler's replicas alone.
				PreConfig: func() { setImage(t, cs, ns, "api", "registry.shop.test/api:hotfix") },
				Config:    scaledReleaseHCL(project, "v1", "1.0"),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(releaseAddr, plancheck.ResourceActionUpdate),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(releaseAddr, tfjsonpath.New("revision"), knownvalue.Int64Exact(2)),
				},
				Check: checkDeployment(cs, ns, "api", 3, "registry.shop.test/api:1.0"),
			},
			{
				// A new version re-applies the manifest, still without the replicas.
				Config: scaledReleaseHCL(project, "v2", "2.0"),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(releaseAddr, plancheck.ResourceActionUpdate),
				}},
				Check: checkDeployment(cs, ns, "api", 3, "registry.shop.test/api:2.0"),
			},
		},
	})
}

// checkDeployment checks a Deployment's replicas and image in the cluster.
func checkDeployment(cs kubernetes.Interface, ns, name string, replicas int32, image string) resource.TestCheckFunc {
	return func(*terraform.State) error {
		d, err := cs.AppsV1().Deployments(ns).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if d.Spec.Replicas == nil {
			return fmt.Errorf("deployment %s has no replicas", name)
		}
		if *d.Spec.Replicas != replicas {
			return fmt.Errorf("deployment %s replicas %d, want %d", name, *d.Spec.Replicas, replicas)
		}
		if got := d.Spec.Template.Spec.Containers[0].Image; got != image {
			return fmt.Errorf("deployment %s image %s, want %s", name, got, image)
		}
		return nil
	}
}

// scaleSubresource scales a Deployment as kubectl scale and an autoscaler do: a
// patch of its scale subresource, with a field manager of its own.
func scaleSubresource(t *testing.T, cs kubernetes.Interface, ns, name string, replicas int) {
	t.Helper()
	patch := fmt.Sprintf(`{"spec":{"replicas":%d}}`, replicas)
	if _, err := cs.AppsV1().Deployments(ns).Patch(context.Background(), name, types.MergePatchType, []byte(patch),
		metav1.PatchOptions{FieldManager: "hpa-like"}, "scale"); err != nil {
		t.Fatal(err)
	}
}

// A release without services deploys a version: its spec says so, its images
// are unknown until the version is read at apply, and reading it back leaves
// services unset (also after an import), while a release given services reads
// them back.
func TestReleaseOfAVersion(t *testing.T) {
	ctx := context.Background()
	images := map[string]string{"api": "r.test/api@sha256:aa", "web": "r.test/web@sha256:bb"}
	ofVersion := releaseModel{
		Project: fwtypes.StringValue("shop"), Environment: fwtypes.StringValue("qa"), Version: fwtypes.StringValue("v1.0.0"),
		Services: fwtypes.MapNull(fwtypes.StringType), OnlyServices: fwtypes.ListNull(fwtypes.StringType),
	}
	var diags diag.Diagnostics
	if spec := ofVersion.spec(ctx, &diags); !spec.FromVersion || spec.Images != nil || diags.HasError() {
		t.Errorf("spec of a version release: FromVersion %t, images %v, %v", spec.FromVersion, spec.Images, diags)
	}
	if got := ofVersion.deployedImages(stringMapValue(images)); !got.IsUnknown() {
		t.Errorf("planned deployed_images of a version release = %v, want unknown", got)
	}
	rec := &history.Record{Project: "shop", Env: "qa", Version: "v1.0.0", FromVersion: true, Revision: 1, Status: history.StatusDeployed, Images: images}
	got := fromRecord(rec, nil, ofVersion)
	if !got.Services.IsNull() || !got.DeployedImages.Equal(stringMapValue(images)) {
		t.Errorf("read back: services %v, deployed_images %v", got.Services, got.DeployedImages)
	}

	withServices := ofVersion
	withServices.Services = stringMapValue(map[string]string{"api": images["api"]})
	if spec := withServices.spec(ctx, &diags); spec.FromVersion {
		t.Error("a release given services is not a version release")
	}
	rec.FromVersion = false
	imported := fromRecord(rec, nil, releaseModel{Services: fwtypes.MapNull(fwtypes.StringType)})
	if !imported.Services.Equal(stringMapValue(images)) {
		t.Errorf("imported release of services reads back services %v", imported.Services)
	}
}
