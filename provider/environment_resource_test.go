package provider

import (
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"regexp"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/acctest"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kilnhq/terraform-provider-kiln/internal/testenv"
)

// envConfig is a project with environments dev (namespace created by kiln, with
// everything kiln can own in it) and qa (in a namespace that already exists).
type envConfig struct {
	bed          testenv.KubeBed
	project      string
	qaNamespace  string
	production   bool
	forceDestroy bool
	withQA       bool
}

func (c envConfig) String() string {
	ca, _ := os.ReadFile(c.bed.CAFile)
	cert, _ := os.ReadFile(c.bed.ClientCert)
	key, _ := os.ReadFile(c.bed.ClientKey)
	// The host and client certificate form of the kubernetes block.
	s := fmt.Sprintf(`
provider "kiln" {
  kubernetes {
    host                   = %q
    cluster_ca_certificate = %q
    client_certificate     = %q
    client_key             = %q
  }
}
`, c.bed.Host, ca, cert, key) + projectHCL(c.project) + `
resource "kiln_environment" "dev" {
  project        = kiln_project.test.name
  name           = "dev"
  labels         = { team = "shop" }
  annotations    = { "kiln.dev/owner" = "platform" }
  variables      = { greeting = "hi from dev" }
  ingress_domain = "dev.shop.test"
  image_pull_secret = {
    registry = "registry.shop.test"
    username = "ci"
    password = "s3cret"
  }
  quota = { pods = "10" }
  limit_range = {
    default         = { cpu = "500m", memory = "256Mi" }
    default_request = { cpu = "100m" }
  }
}
`
	if c.withQA {
		s += fmt.Sprintf(`
resource "kiln_environment" "qa" {
  project       = kiln_project.test.name
  name          = "qa"
  namespace     = %q
  production    = %t
  force_destroy = %t
}
`, c.qaNamespace, c.production, c.forceDestroy)
	}
	return s
}

// TestAccEnvironment_lifecycle creates dev and qa, checks the namespaces and
// kiln's objects in them, changes what kiln owns out of band (the plan shows it,
// apply restores it) and what it does not (no diff), imports dev, refuses to
// destroy qa while it is production, and on destroy deletes only dev's namespace.
func TestAccEnvironment_lifecycle(t *testing.T) {
	testAccPreCheck(t)
	bed := testenv.Kube(t)
	cs := kubeClient(t, bed)
	project := acctest.RandomWithPrefix("kiln-env")
	devNS := project + "-env-dev"
	cfg := envConfig{bed: bed, project: project, qaNamespace: project + "-qa", withQA: true}
	ctx := context.Background()
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name: cfg.qaNamespace, Labels: map[string]string{"owner": "someone-else"},
	}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cs.CoreV1().Namespaces().Delete(context.Background(), cfg.qaNamespace, metav1.DeleteOptions{})
	})
	prod := cfg
	prod.production = true
	prodGone := prod
	prodGone.withQA = false
	prodForced := prod
	prodForced.forceDestroy = true

	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		CheckDestroy: resource.ComposeTestCheckFunc(
			checkNamespacesGone(cs, devNS),
			checkNamespaceReleased(cs, cfg.qaNamespace),
		),
		Steps: []resource.TestStep{
			{
				Config: cfg.String(),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("kiln_environment.dev", tfjsonpath.New("namespace"), knownvalue.StringExact(devNS)),
					statecheck.ExpectKnownValue("kiln_environment.dev", tfjsonpath.New("namespace_created"), knownvalue.Bool(true)),
					statecheck.ExpectKnownValue("kiln_environment.qa", tfjsonpath.New("namespace_created"), knownvalue.Bool(false)),
					statecheck.ExpectKnownValue("kiln_environment.dev", tfjsonpath.New("image_pull_secret").AtMapKey("name"), knownvalue.StringExact("kiln-registry")),
				},
				Check: resource.ComposeTestCheckFunc(
					checkEnvNamespace(cs, devNS, project, "dev", map[string]string{"team": "shop"}),
					checkEnvNamespace(cs, cfg.qaNamespace, project, "qa", map[string]string{"owner": "someone-else"}),
					checkEnvObjects(cs, devNS, "10"),
				),
			},
			{
				// Out of band: a kiln label removed and the quota changed show in the
				// plan; an annotation another tool adds does not.
				PreConfig: func() { editEnvironment(t, cs, devNS, cfg.qaNamespace) },
				Config:    cfg.String(),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("kiln_environment.dev", plancheck.ResourceActionUpdate),
					plancheck.ExpectResourceAction("kiln_environment.qa", plancheck.ResourceActionNoop),
				}},
				Check: resource.ComposeTestCheckFunc(
					checkEnvNamespace(cs, devNS, project, "dev", map[string]string{"team": "shop"}),
					checkEnvObjects(cs, devNS, "10"),
				),
			},
			{
				Config:           cfg.String(),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
			},
			{
				ResourceName:            "kiln_environment.dev",
				ImportState:             true,
				ImportStateId:           project + "/dev",
				ImportStateVerify:       true,
				ImportStateVerifyIgnore: []string{"timeouts"},
			},
			{Config: prod.String()},
			{
				Config:      prodGone.String(),
				ExpectError: wrappedRegexp("production environment; set force_destroy = true"),
			},
			{Config: prodForced.String()},
		},
	})
}

func checkEnvNamespace(cs kubernetes.Interface, name, project, env string, extra map[string]string) resource.TestCheckFunc {
	return func(*terraform.State) error {
		ns, err := cs.CoreV1().Namespaces().Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		want := map[string]string{"app.kubernetes.io/managed-by": "kiln", "kiln.dev/project": project, "kiln.dev/env": env}
		for k, v := range extra {
			want[k] = v
		}
		for k, v := range want {
			if ns.Labels[k] != v {
				return fmt.Errorf("namespace %s label %s = %q, want %q (labels %s)", name, k, ns.Labels[k], v, sortedMapString(ns.Labels))
			}
		}
		return nil
	}
}

func checkEnvObjects(cs kubernetes.Interface, ns, pods string) resource.TestCheckFunc {
	return func(*terraform.State) error {
		ctx := context.Background()
		sec, err := cs.CoreV1().Secrets(ns).Get(ctx, "kiln-registry", metav1.GetOptions{})
		if err != nil {
			return err
		}
		auth := base64.StdEncoding.EncodeToString([]byte("ci:s3cret"))
		if sec.Type != corev1.SecretTypeDockerConfigJson || !regexp.MustCompile(`"registry.shop.test":\{[^}]*"auth":"`+auth).Match(sec.Data[".dockerconfigjson"]) {
			return fmt.Errorf("pull secret %s: %s", sec.Type, sec.Data[".dockerconfigjson"])
		}
		q, err := cs.CoreV1().ResourceQuotas(ns).Get(ctx, "kiln-quota", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if got := q.Spec.Hard[corev1.ResourcePods]; got.String() != pods {
			return fmt.Errorf("quota pods = %s, want %s", got.String(), pods)
		}
		lr, err := cs.CoreV1().LimitRanges(ns).Get(ctx, "kiln-limits", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if len(lr.Spec.Limits) != 1 || lr.Spec.Limits[0].Default.Cpu().String() != "500m" {
			return fmt.Errorf("limit range %+v", lr.Spec.Limits)
		}
		return nil
	}
}

func editEnvironment(t *testing.T, cs kubernetes.Interface, devNS, qaNS string) {
	t.Helper()
	ctx := context.Background()
	ns, err := cs.CoreV1().Namespaces().Get(ctx, devNS, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	delete(ns.Labels, "team")
	if _, err := cs.CoreV1().Namespaces().Update(ctx, ns, metav1.UpdateOptions{FieldManager: "kubectl-edit"}); err != nil {
		t.Fatal(err)
	}
	q, err := cs.CoreV1().ResourceQuotas(devNS).Get(ctx, "kiln-quota", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	q.Spec.Hard[corev1.ResourcePods] = resourceQuantity("99")
	if _, err := cs.CoreV1().ResourceQuotas(devNS).Update(ctx, q, metav1.UpdateOptions{FieldManager: "kubectl-edit"}); err != nil {
		t.Fatal(err)
	}
	qa, err := cs.CoreV1().Namespaces().Get(ctx, qaNS, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if qa.Annotations == nil {
		qa.Annotations = map[string]string{}
	}
	qa.Annotations["example.com/added-by"] = "another-tool"
	qa.Labels["another-tool"] = "yes"
	if _, err := cs.CoreV1().Namespaces().Update(ctx, qa, metav1.UpdateOptions{FieldManager: "another-tool"}); err != nil {
		t.Fatal(err)
	}
}

// checkNamespaceReleased checks that a namespace kiln did not create survives
// the destroy, without kiln's labels.
func checkNamespaceReleased(cs kubernetes.Interface, name string) resource.TestCheckFunc {
	return func(*terraform.State) error {
		ns, err := cs.CoreV1().Namespaces().Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("namespace %s kiln did not create was deleted: %w", name, err)
		}
		if _, ok := ns.Labels["kiln.dev/env"]; ok || ns.Labels["owner"] != "someone-else" {
			return fmt.Errorf("namespace %s labels after destroy: %s", name, sortedMapString(ns.Labels))
		}
		return nil
	}
}
