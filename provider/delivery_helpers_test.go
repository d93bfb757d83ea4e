package provider

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kilnhq/terraform-provider-kiln/internal/testenv"
)

// kubeClient is a client-go clientset on the test control plane, for asserting
// outcomes in the cluster rather than in Terraform state.
func kubeClient(t *testing.T, bed testenv.KubeBed) kubernetes.Interface {
	t.Helper()
	rc, err := clientcmd.BuildConfigFromFlags("", bed.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// deploymentTemplate is a service template: one Deployment scheduled on kwok's
// nodes through ${node_type}; no replicas, so another manager may scale it.
const deploymentTemplate = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: %[1]s
spec:
  selector:
    matchLabels:
      app: %[1]s
  template:
    metadata:
      labels:
        app: %[1]s
    spec:
      nodeSelector:
        type: $${node_type}
      containers:
      - name: %[1]s
        image: $${image}
        env:
        - name: GREETING
          value: "$${greeting}"
`

const serviceTemplate = `---
apiVersion: v1
kind: Service
metadata:
  name: %[1]s
spec:
  selector:
    app: %[1]s
  ports:
  - port: 80
    protocol: TCP
`

// projectHCL renders a kiln_project of db (group 1), api and web (group 2);
// api also has a Service.
func projectHCL(name string) string {
	return fmt.Sprintf(`
resource "kiln_project" "test" {
  name        = %[1]q
  description = "acceptance test project"
  services = {
    db  = <<-YAML
%[2]s
    YAML
    api = <<-YAML
%[3]s
%[4]s
    YAML
    web = <<-YAML
%[5]s
    YAML
  }
  startup_order = [["db"], ["api", "web"]]
  variables = {
    node_type = "kwok"
    greeting  = "hello"
  }
  build_pool_labels = { pool = "go" }
}
`, name, indent(fmt.Sprintf(deploymentTemplate, "db")), indent(fmt.Sprintf(deploymentTemplate, "api")),
		indent(fmt.Sprintf(serviceTemplate, "api")), indent(fmt.Sprintf(deploymentTemplate, "web")))
}

func indent(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = "      " + l
	}
	return strings.Join(lines, "\n")
}

func kubeProviderHCL(bed testenv.KubeBed) string {
	return fmt.Sprintf(`
provider "kiln" {
  kubernetes {
    config_path = %q
  }
}
`, bed.Kubeconfig)
}

// checkNamespaceGone is a CheckDestroy for the namespaces of environments.
func checkNamespacesGone(cs kubernetes.Interface, names ...string) func(*terraform.State) error {
	return func(*terraform.State) error {
		for _, n := range names {
			if ns, err := cs.CoreV1().Namespaces().Get(context.Background(), n, metav1.GetOptions{}); err == nil {
				return fmt.Errorf("namespace %s still exists (phase %s)", n, ns.Status.Phase)
			}
		}
		return nil
	}
}

func sortedMapString(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%s,", k, m[k])
	}
	return b.String()
}

func resourceQuantity(s string) resource.Quantity { return resource.MustParse(s) }
