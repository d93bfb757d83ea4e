package provider

import (
	"context"
	"fmt"
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
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kilnhq/terraform-provider-kiln/internal/testenv"
)

const projectAddr = "kiln_project.test"

// TestAccProject_lifecycle creates a project of three services in two startup
// groups, checks its record in the cluster, edits the record out of band (the
// plan shows it and apply restores it), and imports it.
func TestAccProject_lifecycle(t *testing.T) {
	testAccPreCheck(t)
	bed := testenv.Kube(t)
	cs := kubeClient(t, bed)
	name := acctest.RandomWithPrefix("kiln-proj")
	cfg := kubeProviderHCL(bed) + projectHCL(name)

	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		CheckDestroy:             checkProjectGone(cs, name),
		Steps: []resource.TestStep{
			{
				Config: cfg,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(projectAddr, tfjsonpath.New("id"), knownvalue.StringExact(name)),
					statecheck.ExpectKnownValue(projectAddr, tfjsonpath.New("control_namespace"), knownvalue.StringExact("kiln-system")),
					statecheck.ExpectKnownValue(projectAddr, tfjsonpath.New("image_rule"), knownvalue.StringExact("{{.Service}}:{{.Timestamp}}-{{.Branch}}")),
					statecheck.ExpectKnownValue(projectAddr, tfjsonpath.New("startup_order"), knownvalue.ListExact([]knownvalue.Check{
						knownvalue.ListExact([]knownvalue.Check{knownvalue.StringExact("db")}),
						knownvalue.ListExact([]knownvalue.Check{knownvalue.StringExact("api"), knownvalue.StringExact("web")}),
					})),
				},
				Check: checkProjectRecord(cs, name, "acceptance test project", 3),
			},
			{
				Config:           cfg,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
			},
			{
				// kubectl edit of the record: the plan shows it and apply puts it back.
				PreConfig: func() { editProjectRecord(t, cs, name) },
				Config:    cfg,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(projectAddr, plancheck.ResourceActionUpdate),
				}},
				Check: checkProjectRecord(cs, name, "acceptance test project", 3),
			},
			{
				ResourceName:            projectAddr,
				ImportState:             true,
				ImportStateId:           name,
				ImportStateVerify:       true,
				ImportStateVerifyIgnore: []string{"timeouts"},
			},
		},
	})
}

// TestAccProject_badInput fails at plan time on an unknown service in the
// startup order, invalid YAML and a variable nobody declares.
func TestAccProject_badInput(t *testing.T) {
	testAccPreCheck(t)
	bed := testenv.Kube(t)
	good := projectHCL("kiln-bad")
	cases := []struct {
		config string
		want   string
	}{
		{strings.Replace(good, `[["db"], ["api", "web"]]`, `[["db"], ["api", "web", "cache"]]`, 1), `unknown service "cache"`},
		{strings.Replace(good, `[["db"], ["api", "web"]]`, `[["db"], ["api"]]`, 1), `"web" is missing from the startup order`},
		{strings.Replace(good, "kind: Deployment\n      metadata:\n        name: web", "kind: [Deployment\n      metadata:\n        name: web", 1), `service "web": YAML document 1`},
		{strings.Replace(good, `greeting  = "hello"`, ``, 1), `uses \$\{greeting\}, which is neither a built-in`},
	}
	var steps []resource.TestStep
	for _, c := range cases {
		if c.config == good {
			t.Fatalf("case %q did not change the configuration", c.want)
		}
		steps = append(steps, resource.TestStep{
			Config:      kubeProviderHCL(bed) + c.config,
			PlanOnly:    true,
			ExpectError: regexp.MustCompile(c.want),
		})
	}
	resource.Test(t, resource.TestCase{ProtoV6ProviderFactories: testAccProviders, Steps: steps})
}

func projectRecord(cs kubernetes.Interface, name string) (map[string]string, error) {
	cm, err := cs.CoreV1().ConfigMaps("kiln-system").Get(context.Background(), "kiln-project-"+name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	if cm.Labels["kiln.dev/kind"] != "project" || cm.Labels["kiln.dev/project"] != name || cm.Labels["app.kubernetes.io/managed-by"] != "kiln" {
		return nil, fmt.Errorf("record labels %v", cm.Labels)
	}
	return cm.Data, nil
}

func checkProjectRecord(cs kubernetes.Interface, name, description string, services int) resource.TestCheckFunc {
	return func(*terraform.State) error {
		data, err := projectRecord(cs, name)
		if err != nil {
			return err
		}
		if data["description"] != description {
			return fmt.Errorf("record description %q, want %q", data["description"], description)
		}
		n := 0
		for k := range data {
			if strings.HasPrefix(k, "service.") {
				n++
			}
		}
		if n != services {
			return fmt.Errorf("record has %d services, want %d", n, services)
		}
		if data["startup-order"] != `[["db"],["api","web"]]` {
			return fmt.Errorf("record startup order %s", data["startup-order"])
		}
		return nil
	}
}

func editProjectRecord(t *testing.T, cs kubernetes.Interface, name string) {
	t.Helper()
	ctx := context.Background()
	cm, err := cs.CoreV1().ConfigMaps("kiln-system").Get(ctx, "kiln-project-"+name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cm.Data["description"] = "edited by hand"
	delete(cm.Data, "service.web.yaml")
	if _, err := cs.CoreV1().ConfigMaps("kiln-system").Update(ctx, cm, metav1.UpdateOptions{FieldManager: "kubectl-edit"}); err != nil {
		t.Fatal(err)
	}
}

func checkProjectGone(cs kubernetes.Interface, name string) resource.TestCheckFunc {
	return func(*terraform.State) error {
		if _, err := projectRecord(cs, name); err == nil {
			return fmt.Errorf("project record of %s still exists", name)
		}
		return nil
	}
}
