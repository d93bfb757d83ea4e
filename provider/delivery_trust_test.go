package provider

// Trust tests: nothing Kiln deletes or applies is decided by a record or an
// object someone else can write. The attacks are made by the test bed's
// developer identity, bound to the edit ClusterRole in one namespace, the
// rights a developer usually has.

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/acctest"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"
	"github.com/hashicorp/terraform-plugin-testing/tfversion"
	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/yaml"

	"github.com/kilnhq/terraform-provider-kiln/internal/testenv"
)

// controlNamespace is the projects' default control namespace in these tests.
const controlNamespace = "kiln-system"

// deliveryConfig is a project, its environment dev and a release there; the
// HCL fragments (maps, extra arguments) go in as they are.
type deliveryConfig struct {
	project            string
	services           map[string]string // name -> YAML
	order              string            // startup_order, "" for none
	projectVars        string
	allowClusterScoped bool
	envVars            string // "" for none
	version            string
	images             string
	release            string // more arguments of the release
}

func (c deliveryConfig) String() string {
	var services strings.Builder
	for _, name := range slices.Sorted(maps.Keys(c.services)) {
		fmt.Fprintf(&services, "    %s = <<-YAML\n%s\n    YAML\n", name, indent(c.services[name]))
	}
	project := fmt.Sprintf("  allow_cluster_scoped = %t\n", c.allowClusterScoped)
	if c.order != "" {
		project += "  startup_order = " + c.order + "\n"
	}
	env := ""
	if c.envVars != "" {
		env = "  variables = " + c.envVars + "\n"
	}
	return fmt.Sprintf(`
provider "kiln" {
  kubernetes {}
}

resource "kiln_project" "test" {
  name      = %[1]q
  services  = {
%[2]s  }
  variables = %[3]s
%[4]s}

resource "kiln_environment" "dev" {
  project = kiln_project.test.name
  name    = "dev"
%[5]s}

resource "kiln_release" "dev" {
  project     = kiln_project.test.name
  environment = kiln_environment.dev.name
  version     = %[6]q
  services    = %[7]s
%[8]s}
`, c.project, services.String(), c.projectVars, project, env, c.version, c.images, c.release)
}

// developerClient acts as the test bed's developer identity.
func developerClient(t *testing.T, bed testenv.KubeBed) kubernetes.Interface {
	t.Helper()
	return kubeClient(t, testenv.KubeBed{Kubeconfig: bed.DeveloperKubeconfig})
}

// grantDeveloper binds the developer to the edit ClusterRole in namespace, as a
// platform team does for a team's environment.
func grantDeveloper(t *testing.T, cs kubernetes.Interface, bed testenv.KubeBed, namespace string) {
	t.Helper()
	rb := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "developer-edit", Namespace: namespace},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "edit"},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: "developer", Namespace: bed.DeveloperNamespace}},
	}
	if _, err := cs.RbacV1().RoleBindings(namespace).Create(context.Background(), rb, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
}

// victims are objects the developer cannot delete: a ClusterRole, a ConfigMap in
// default, and a Deployment in the environment's namespace without Kiln's labels.
type victims struct {
	name, envNamespace string
}

func (v victims) refs() []map[string]string {
	return []map[string]string{
		{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "name": v.name},
		{"apiVersion": "v1", "kind": "ConfigMap", "namespace": "default", "name": v.name},
		{"apiVersion": "apps/v1", "kind": "Deployment", "namespace": v.envNamespace, "name": v.name},
	}
}

func (v victims) create(t *testing.T, cs kubernetes.Interface) {
	t.Helper()
	ctx := context.Background()
	meta := metav1.ObjectMeta{Name: v.name}
	if _, err := cs.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{ObjectMeta: meta}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cs.RbacV1().ClusterRoles().Delete(context.Background(), v.name, metav1.DeleteOptions{}) })
	meta.Namespace = "default"
	if _, err := cs.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{ObjectMeta: meta}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cs.CoreV1().ConfigMaps("default").Delete(context.Background(), v.name, metav1.DeleteOptions{})
	})
	meta.Namespace = v.envNamespace
	labels := map[string]string{"app": v.name}
	dep := &appsv1.Deployment{ObjectMeta: meta, Spec: appsv1.DeploymentSpec{
		Selector: &metav1.LabelSelector{MatchLabels: labels},
		Template: corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: labels},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.shop.test/platform:1"}}},
		},
	}}
	if _, err := cs.AppsV1().Deployments(v.envNamespace).Create(ctx, dep, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func (v victims) check(cs kubernetes.Interface) resource.TestCheckFunc {
	return func(*terraform.State) error {
		ctx := context.Background()
		if _, err := cs.RbacV1().ClusterRoles().Get(ctx, v.name, metav1.GetOptions{}); err != nil {
			return fmt.Errorf("ClusterRole %s: %w", v.name, err)
		}
		if _, err := cs.CoreV1().ConfigMaps("default").Get(ctx, v.name, metav1.GetOptions{}); err != nil {
			return fmt.Errorf("ConfigMap default/%s: %w", v.name, err)
		}
		if _, err := cs.AppsV1().Deployments(v.envNamespace).Get(ctx, v.name, metav1.GetOptions{}); err != nil {
			return fmt.Errorf("Deployment %s/%s: %w", v.envNamespace, v.name, err)
		}
		return nil
	}
}

// forgeRelease has the developer write, in the environment's namespace, a
// release record in Kiln's format claiming to be the deployed revision 2 and
// listing the victims among its objects.
func forgeRelease(t *testing.T, dev kubernetes.Interface, project, ns string, v victims) {
	t.Helper()
	var objects []map[string]any
	for _, ref := range v.refs() {
		objects = append(objects, map[string]any{"service": "api", "ref": ref})
	}
	rec, _ := json.Marshal(map[string]any{
		"project": project, "env": "dev", "namespace": ns, "version": "v1", "revision": 2, "status": "deployed",
		"images": map[string]string{}, "services": []string{"api", "db", "web"}, "render": map[string]string{}, "objects": objects,
	})
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, _ = zw.Write(rec)
	_ = zw.Close()
	forged := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Name: "kiln.release.v1." + project + ".dev.v2",
			Labels: map[string]string{"owner": "kiln", "app.kubernetes.io/managed-by": "kiln", "kiln.dev/project": project,
				"kiln.dev/env": "dev", "status": "deployed", "revision": "2", "version": "v1"},
		},
		Type: "kiln.dev/release.v1",
		Data: map[string][]byte{"release": buf.Bytes()},
	}
	ctx := context.Background()
	if _, err := dev.CoreV1().Secrets(ns).Create(ctx, forged, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// Where Kiln keeps its records, the developer can write nothing.
	forged.Name += "-control"
	if _, err := dev.CoreV1().Secrets(controlNamespace).Create(ctx, forged, metav1.CreateOptions{}); !apierrors.IsForbidden(err) {
		t.Fatalf("the developer writing in the control namespace: %v, want forbidden", err)
	}
}

// TestAccRelease_forgedRecord: a release record the developer forges in the
// environment's namespace, listing objects they cannot delete themselves, is
// never acted on: the next release prunes none of them.
func TestAccRelease_forgedRecord(t *testing.T) {
	testAccPreCheck(t)
	bed := testenv.Kube(t)
	t.Setenv("KUBECONFIG", bed.Kubeconfig)
	cs := kubeClient(t, bed)
	dev := developerClient(t, bed)
	project := acctest.RandomWithPrefix("kiln-forge")
	ns := project + "-env-dev"
	v := victims{name: project + "-victim", envNamespace: ns}
	v1 := releaseConfig{project: project, version: "v1", tag: "1.0", nodeType: "kwok", timeout: "2m"}
	v2 := v1
	v2.version, v2.tag = "v2", "2.0"
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		CheckDestroy:             checkNamespacesGone(cs, ns, project+"-env-qa"),
		Steps: []resource.TestStep{
			{Config: v1.String()},
			{
				PreConfig: func() {
					grantDeveloper(t, cs, bed, ns)
					v.create(t, cs)
					forgeRelease(t, dev, project, ns, v)
				},
				Config: v2.String(),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(releaseAddr, tfjsonpath.New("revision"), knownvalue.Int64Exact(2)),
				},
				Check: resource.ComposeTestCheckFunc(checkImages(cs, ns, "2.0"), v.check(cs),
					checkHistory(cs, controlNamespace, project, map[int]string{1: "superseded", 2: "deployed"})),
			},
		},
	})
}

// TestAccProject_foreignRecord: a project record with Kiln's labels and name,
// written by the developer in their own namespace, is never read: the release
// renders the project's own services, not the forged ClusterRole.
func TestAccProject_foreignRecord(t *testing.T) {
	testAccPreCheck(t)
	bed := testenv.Kube(t)
	t.Setenv("KUBECONFIG", bed.Kubeconfig)
	cs := kubeClient(t, bed)
	dev := developerClient(t, bed)
	project := acctest.RandomWithPrefix("kiln-foreign")
	ns := project + "-env-dev"
	injected := project + "-injected"
	v1 := releaseConfig{project: project, version: "v1", tag: "1.0", nodeType: "kwok", timeout: "2m"}
	v2 := v1
	v2.version, v2.tag = "v2", "2.0"
	forge := func() {
		tmpl := func(s string) string { return strings.ReplaceAll(fmt.Sprintf(deploymentTemplate, s), "$${", "${") }
		cm := &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: "kiln-project-" + project, Namespace: bed.DeveloperNamespace, Labels: map[string]string{
				"app.kubernetes.io/managed-by": "kiln", "kiln.dev/kind": "project", "kiln.dev/project": project}},
			Data: map[string]string{
				"startup-order":   `[["db"],["api","web"]]`,
				"variables":       `{"node_type":"kwok","greeting":"hello"}`,
				"service.db.yaml": tmpl("db"), "service.web.yaml": tmpl("web"),
				"service.api.yaml": "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: " + injected + "\n",
			},
		}
		if _, err := dev.CoreV1().ConfigMaps(bed.DeveloperNamespace).Create(context.Background(), cm, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = cs.CoreV1().ConfigMaps(bed.DeveloperNamespace).Delete(context.Background(), cm.Name, metav1.DeleteOptions{})
			_ = cs.RbacV1().ClusterRoles().Delete(context.Background(), injected, metav1.DeleteOptions{})
		})
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		CheckDestroy:             checkNamespacesGone(cs, ns, project+"-env-qa"),
		Steps: []resource.TestStep{
			{Config: v1.String()},
			{
				PreConfig: forge,
				Config:    v2.String(),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("kiln_project.test", plancheck.ResourceActionNoop),
				}},
				Check: resource.ComposeTestCheckFunc(checkImages(cs, ns, "2.0"), checkAbsent(cs, injected)),
			},
		},
	})
}

// checkAbsent checks that no ClusterRole name exists.
func checkAbsent(cs kubernetes.Interface, name string) resource.TestCheckFunc {
	return func(*terraform.State) error {
		_, err := cs.RbacV1().ClusterRoles().Get(context.Background(), name, metav1.GetOptions{})
		if !apierrors.IsNotFound(err) {
			return fmt.Errorf("ClusterRole %s: %v, want it absent", name, err)
		}
		return nil
	}
}

// existingNamespace creates a namespace Kiln does not own, with a Pod Security
// label another manager set.
func existingNamespace(t *testing.T, cs kubernetes.Interface, name string) {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name,
		Labels: map[string]string{"pod-security.kubernetes.io/enforce": "baseline"}}}
	if _, err := cs.CoreV1().Namespaces().Create(context.Background(), ns, metav1.CreateOptions{FieldManager: "platform-admin"}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cs.CoreV1().Namespaces().Delete(context.Background(), name, metav1.DeleteOptions{}) })
}

// flakyAPI is a proxy to the test API server that answers 503 to reads of one
// namespace until a namespace is first written: an API server under load.
func flakyAPI(t *testing.T, bed testenv.KubeBed, namespace string) (host, token string) {
	t.Helper()
	rc, err := clientcmd.BuildConfigFromFlags("", bed.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := os.ReadFile(bed.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	upstream, _ := url.Parse(bed.Host)
	proxy := httputil.NewSingleHostReverseProxy(upstream)
	proxy.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	var written atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method != http.MethodGet && (r.URL.Path == "/api/v1/namespaces" || r.URL.Path == "/api/v1/namespaces/"+namespace):
			written.Store(true)
		case r.URL.Path == "/api/v1/namespaces/"+namespace && !written.Load():
			http.Error(w, "the server is currently unable to handle the request", http.StatusServiceUnavailable)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, rc.BearerToken
}

func envInNamespaceHCL(provider, project, namespace, labels string) string {
	return provider + projectHCL(project) + fmt.Sprintf(`
resource "kiln_environment" "dev" {
  project   = kiln_project.test.name
  name      = "dev"
  namespace = %q
  labels    = %s
}
`, namespace, labels)
}

// TestAccEnvironment_namespaceReadFails: an error reading an existing namespace
// (here a 503) does not make Kiln believe it created the namespace, so destroy
// leaves it.
func TestAccEnvironment_namespaceReadFails(t *testing.T) {
	testAccPreCheck(t)
	bed := testenv.Kube(t)
	cs := kubeClient(t, bed)
	project := acctest.RandomWithPrefix("kiln-nsread")
	ns := project + "-existing"
	host, token := flakyAPI(t, bed, ns)
	provider := fmt.Sprintf(`
provider "kiln" {
  kubernetes {
    host  = %q
    token = %q
  }
}
`, host, token)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		CheckDestroy:             checkLabel(cs, ns, "pod-security.kubernetes.io/enforce", "baseline"),
		Steps: []resource.TestStep{
			{
				PreConfig: func() { existingNamespace(t, cs, ns) },
				Config:    envInNamespaceHCL(provider, project, ns, `{ team = "shop" }`),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("kiln_environment.dev", tfjsonpath.New("namespace_created"), knownvalue.Bool(false)),
				},
			},
		},
	})
}

// checkLabel checks that namespace still exists with label key = want ("" for
// no such label).
func checkLabel(cs kubernetes.Interface, namespace, key, want string) resource.TestCheckFunc {
	return func(*terraform.State) error {
		ns, err := cs.CoreV1().Namespaces().Get(context.Background(), namespace, metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("namespace %s: %w", namespace, err)
		}
		if ns.DeletionTimestamp != nil {
			return fmt.Errorf("namespace %s is being deleted", namespace)
		}
		if got := ns.Labels[key]; got != want {
			return fmt.Errorf("namespace %s label %s = %q, want %q", namespace, key, got, want)
		}
		return nil
	}
}

// TestAccEnvironment_foreignNamespaceLabels: in a namespace Kiln did not create,
// a label another manager set is not taken over (the apply fails on the
// conflict) and is still there after destroy.
func TestAccEnvironment_foreignNamespaceLabels(t *testing.T) {
	testAccPreCheck(t)
	bed := testenv.Kube(t)
	cs := kubeClient(t, bed)
	project := acctest.RandomWithPrefix("kiln-nslabels")
	ns := project + "-existing"
	provider := kubeProviderHCL(bed)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		CheckDestroy: resource.ComposeTestCheckFunc(
			checkLabel(cs, ns, "pod-security.kubernetes.io/enforce", "baseline"), checkLabel(cs, ns, "team", "")),
		Steps: []resource.TestStep{
			{
				PreConfig:   func() { existingNamespace(t, cs, ns) },
				Config:      envInNamespaceHCL(provider, project, ns, `{ "pod-security.kubernetes.io/enforce" = "privileged" }`),
				ExpectError: wrappedRegexp("another field manager owns fields"),
			},
			{
				Config: envInNamespaceHCL(provider, project, ns, `{ team = "shop" }`),
				Check: resource.ComposeTestCheckFunc(
					checkLabel(cs, ns, "pod-security.kubernetes.io/enforce", "baseline"), checkLabel(cs, ns, "team", "shop")),
			},
		},
	})
}

// TestAccEnvironment_recordNames: shop/eu-prod and shop-eu/prod keep records of
// their own; destroying one leaves the other.
func TestAccEnvironment_recordNames(t *testing.T) {
	testAccPreCheck(t)
	bed := testenv.Kube(t)
	cs := kubeClient(t, bed)
	shop := acctest.RandomWithPrefix("kiln-names")
	both := func(second bool) string {
		s := kubeProviderHCL(bed) + projectHCL(shop) + strings.ReplaceAll(projectHCL(shop+"-eu"), `"test"`, `"eu"`) + `
resource "kiln_environment" "eu_prod" {
  project = kiln_project.test.name
  name    = "eu-prod"
}
`
		if second {
			s += `
resource "kiln_environment" "prod" {
  project = kiln_project.eu.name
  name    = "prod"
}
`
		}
		return s
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		CheckDestroy:             checkNamespacesGone(cs, shop+"-env-eu-prod", shop+"-eu-env-prod"),
		Steps: []resource.TestStep{
			{
				Config: both(true),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("kiln_environment.eu_prod", tfjsonpath.New("namespace"), knownvalue.StringExact(shop+"-env-eu-prod")),
					statecheck.ExpectKnownValue("kiln_environment.prod", tfjsonpath.New("namespace"), knownvalue.StringExact(shop+"-eu-env-prod")),
				},
			},
			{Config: both(false)},
			{
				Config:           both(false),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
			},
		},
	})
}

// scope says whether a project's web is a ClusterRole and whether the project
// allows cluster-scoped kinds.
type scope struct{ clusterRole, allowed bool }

// injectionHCL is a project whose api labels its pods with ${team} and whose
// web is as web says; dev sets greeting and team.
func injectionHCL(project, image, greeting, team string, web scope) string {
	webYAML := fmt.Sprintf(deploymentTemplate, "web")
	if web.clusterRole {
		webYAML = "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: " + project + "-web\n"
	}
	api := strings.Replace(fmt.Sprintf(deploymentTemplate, "api"), "        app: api\n    spec:", "        app: api\n        team: \"$${team}\"\n    spec:", 1)
	return deliveryConfig{
		project: project, services: map[string]string{"api": api, "web": webYAML},
		projectVars: `{ node_type = "kwok", greeting = "hello", team = "shop" }`, allowClusterScoped: web.allowed,
		envVars: fmt.Sprintf("{ greeting = %q, team = %q }", greeting, team),
		version: "v1", images: fmt.Sprintf(`{ api = %q, web = "registry.shop.test/web:1" }`, image), release: `  rollout_timeout = "2m"` + "\n",
	}.String()
}

// TestAccRelease_injection: an image or a variable cannot add objects to the
// render (values are placed into parsed YAML, not its text), a cluster-scoped
// kind is refused unless the project allows it, and a variable's value never
// shows in an error.
func TestAccRelease_injection(t *testing.T) {
	testAccPreCheck(t)
	bed := testenv.Kube(t)
	t.Setenv("KUBECONFIG", bed.Kubeconfig)
	cs := kubeClient(t, bed)
	project := acctest.RandomWithPrefix("kiln-inject")
	ns := project + "-env-dev"
	injected := project + "-injected"
	t.Cleanup(func() { _ = cs.RbacV1().ClusterRoles().Delete(context.Background(), injected, metav1.DeleteOptions{}) })
	// Each payload ends in a ConfigMap that swallows the rest of the template.
	clusterRole := "\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: " + injected +
		"\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: tail\ndata:\n  x: "
	greeting := `hi"` + clusterRole + `"`
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		CheckDestroy:             resource.ComposeTestCheckFunc(checkNamespacesGone(cs, ns), checkAbsent(cs, project+"-web")),
		Steps: []resource.TestStep{
			{
				Config:      injectionHCL(project, "registry.shop.test/api:1"+clusterRole+"|", "hello", "shop", scope{}),
				ExpectError: wrappedRegexp("image reference"),
			},
			{
				Config: injectionHCL(project, "registry.shop.test/api:1", greeting, "shop", scope{}),
				Check:  resource.ComposeTestCheckFunc(checkAbsent(cs, injected), checkGreeting(cs, ns, greeting)),
			},
			{
				// A new image, so that the release applies with dev's new team.
				Config:      injectionHCL(project, "registry.shop.test/api:2", "hello", "s3cret value!", scope{}),
				ExpectError: wrappedRegexp(`Invalid value: "(sensitive value)"`),
			},
			{
				Config:      injectionHCL(project, "registry.shop.test/api:4", "hello", "shop", scope{clusterRole: true}),
				ExpectError: wrappedRegexp("ClusterRole", "cluster-scoped"),
			},
			{
				// Allowed, it is applied, and pruned on destroy (CheckDestroy).
				Config: injectionHCL(project, "registry.shop.test/api:5", "hello", "shop", scope{clusterRole: true, allowed: true}),
				Check: func(*terraform.State) error {
					_, err := cs.RbacV1().ClusterRoles().Get(context.Background(), project+"-web", metav1.GetOptions{})
					return err
				},
			},
		},
	})
}

// randomText is n bytes of base64 that gzip cannot shrink much.
func randomText(n int) string {
	b := make([]byte, n*3/4)
	_, _ = rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

// TestAccRelease_largeHistory: a release whose render is over 1 MiB (four
// ConfigMaps of 300 KiB of incompressible data) is recorded, read back and
// planned empty.
func TestAccRelease_largeHistory(t *testing.T) {
	testAccPreCheck(t)
	bed := testenv.Kube(t)
	t.Setenv("KUBECONFIG", bed.Kubeconfig)
	cs := kubeClient(t, bed)
	project := acctest.RandomWithPrefix("kiln-large")
	ns := project + "-env-dev"
	services := map[string]string{}
	for i := range 4 {
		services[fmt.Sprintf("blob%d", i)] = fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: blob%d\ndata:\n  blob: $${blob}\n", i)
	}
	config := deliveryConfig{
		project: project, services: services, projectVars: `{ blob = "small" }`,
		envVars: fmt.Sprintf("{ blob = %q }", randomText(300<<10)), version: "v1", images: `{ blob0 = "registry.shop.test/none:1" }`,
	}.String()
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		CheckDestroy:             checkNamespacesGone(cs, ns),
		Steps: []resource.TestStep{
			{
				Config: config,
				Check:  checkHistory(cs, controlNamespace, project, map[int]string{1: "deployed"}),
			},
			{
				Config:           config,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
			},
		},
	})
}

// failedHCL is db and api, and cache when cache is set, released to dev where
// pods schedule only when nodeType is kwok; the release's own deadline is
// timeout.
func failedHCL(project, version, nodeType string, cache bool, timeout string) string {
	c := deliveryConfig{
		project:  project,
		services: map[string]string{"db": fmt.Sprintf(deploymentTemplate, "db"), "api": fmt.Sprintf(deploymentTemplate, "api")},
		order:    `[["db"], ["api"]]`, projectVars: `{ node_type = "kwok", greeting = "hello" }`,
		envVars: fmt.Sprintf("{ node_type = %q }", nodeType), version: version,
		images:  `{ db = "registry.shop.test/db:1", api = "registry.shop.test/api:1" }`,
		release: fmt.Sprintf("  rollout_timeout = \"1m\"\n  timeouts {\n    update = %q\n  }\n", timeout),
	}
	if cache {
		// A fixed image: the release's services need not change with the project.
		c.services["cache"] = strings.Replace(fmt.Sprintf(deploymentTemplate, "cache"), "$${image}", "registry.shop.test/cache:1", 1)
		c.order = `[["db", "cache"], ["api"]]`
	}
	return c.String()
}

// TestAccRelease_failedRevisionPruned: a release that fails when its caller's
// deadline passes is still recorded as failed, and the objects it applied
// (cache, which then leaves the project) are pruned by the next release.
func TestAccRelease_failedRevisionPruned(t *testing.T) {
	testAccPreCheck(t)
	bed := testenv.Kube(t)
	t.Setenv("KUBECONFIG", bed.Kubeconfig)
	cs := kubeClient(t, bed)
	project := acctest.RandomWithPrefix("kiln-failed")
	ns := project + "-env-dev"
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		CheckDestroy:             checkNamespacesGone(cs, ns),
		Steps: []resource.TestStep{
			{Config: failedHCL(project, "v1", "kwok", false, "5m")},
			{
				Config:      failedHCL(project, "v2", "nowhere", true, "15s"),
				ExpectError: wrappedRegexp("(revision 2) failed"),
			},
			{
				PreConfig: func() {
					if err := checkHistory(cs, controlNamespace, project, map[int]string{1: "deployed", 2: "failed"})(nil); err != nil {
						t.Fatal(err)
					}
				},
				Config: failedHCL(project, "v3", "kwok", false, "5m"),
				Check: resource.ComposeTestCheckFunc(
					checkHistory(cs, controlNamespace, project, map[int]string{1: "superseded", 2: "failed", 3: "deployed"}),
					func(*terraform.State) error {
						_, err := cs.AppsV1().Deployments(ns).Get(context.Background(), "cache", metav1.GetOptions{})
						if !apierrors.IsNotFound(err) {
							return fmt.Errorf("cache, applied by the failed revision 2, was not pruned: %v", err)
						}
						return nil
					},
				),
			},
		},
	})
}

// TestAccEnvironment_pullSecretWriteOnly: password_wo reaches the pull secret
// but never the plan or state; a new password is written when
// password_wo_version changes, and only then planned.
func TestAccEnvironment_pullSecretWriteOnly(t *testing.T) {
	testAccPreCheck(t)
	bed := testenv.Kube(t)
	cs := kubeClient(t, bed)
	project := acctest.RandomWithPrefix("kiln-wo")
	ns := project + "-env-dev"
	config := func(password string, version int) string {
		return kubeProviderHCL(bed) + projectHCL(project) + fmt.Sprintf(`
resource "kiln_environment" "dev" {
  project = kiln_project.test.name
  name    = "dev"
  image_pull_secret = {
    registry            = "registry.shop.test"
    username            = "ci"
    password_wo         = %q
    password_wo_version = %d
  }
}
`, password, version)
	}
	noPassword := []statecheck.StateCheck{
		statecheck.ExpectKnownValue("kiln_environment.dev", tfjsonpath.New("image_pull_secret").AtMapKey("password"), knownvalue.Null()),
		statecheck.ExpectKnownValue("kiln_environment.dev", tfjsonpath.New("image_pull_secret").AtMapKey("password_wo"), knownvalue.Null()),
	}
	resource.Test(t, resource.TestCase{
		TerraformVersionChecks:   []tfversion.TerraformVersionCheck{tfversion.SkipBelow(tfversion.Version1_11_0)},
		ProtoV6ProviderFactories: testAccProviders,
		CheckDestroy:             checkNamespacesGone(cs, ns),
		Steps: []resource.TestStep{
			{Config: config("first-s3cret", 1), ConfigStateChecks: noPassword, Check: checkPullPassword(cs, ns, "first-s3cret")},
			{
				Config:           config("second-s3cret", 1),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
			},
			{Config: config("second-s3cret", 2), ConfigStateChecks: noPassword, Check: checkPullPassword(cs, ns, "second-s3cret")},
		},
	})
}

// checkPullPassword checks the password of the pull secret's only registry.
func checkPullPassword(cs kubernetes.Interface, ns, want string) resource.TestCheckFunc {
	return func(*terraform.State) error {
		sec, err := cs.CoreV1().Secrets(ns).Get(context.Background(), "kiln-registry", metav1.GetOptions{})
		if err != nil {
			return err
		}
		var cfg struct {
			Auths map[string]struct{ Password string } `json:"auths"`
		}
		if err := json.Unmarshal(sec.Data[".dockerconfigjson"], &cfg); err != nil {
			return err
		}
		if got := cfg.Auths["registry.shop.test"].Password; got != want {
			return fmt.Errorf("pull secret password %q, want %q", got, want)
		}
		return nil
	}
}

// TestAccRelease_minimalRBAC: the ClusterRole the docs give
// (examples/rbac/kiln-delivery.yaml) is enough for Kiln to create a project,
// environments and releases, update, roll back and destroy them.
func TestAccRelease_minimalRBAC(t *testing.T) {
	testAccPreCheck(t)
	bed := testenv.Kube(t)
	cs := kubeClient(t, bed)
	project := acctest.RandomWithPrefix("kiln-rbac")
	ns := project + "-env-dev"
	t.Setenv("KUBECONFIG", kilnIdentity(t, cs, bed, project))
	v1 := releaseConfig{project: project, version: "v1", tag: "1.0", nodeType: "kwok", rollback: true, timeout: "2m"}
	v2 := v1
	v2.version, v2.tag = "v2", "2.0"
	broken := v2
	broken.version, broken.tag, broken.nodeType, broken.timeout = "v3", "3.0", "nowhere", "5s"
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		CheckDestroy:             checkNamespacesGone(cs, ns, project+"-env-qa"),
		Steps: []resource.TestStep{
			{Config: v1.String(), Check: checkImages(cs, ns, "1.0")},
			{Config: v2.String(), Check: checkImages(cs, ns, "2.0")},
			{Config: broken.String(), ExpectError: wrappedRegexp("rolled back to revision 2")},
		},
	})
}

// kilnIdentity makes a service account bound to the documented ClusterRole
// (renamed for this test) and returns a kubeconfig with its token.
func kilnIdentity(t *testing.T, cs kubernetes.Interface, bed testenv.KubeBed, name string) string {
	t.Helper()
	ctx := context.Background()
	raw, err := os.ReadFile("../examples/rbac/kiln-delivery.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var role rbacv1.ClusterRole
	if err := yaml.Unmarshal([]byte(strings.Split(string(raw), "\n---\n")[0]), &role); err != nil {
		t.Fatal(err)
	}
	role.Name = name
	if _, err := cs.RbacV1().ClusterRoles().Create(ctx, &role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: bed.DeveloperNamespace}}
	if _, err := cs.CoreV1().ServiceAccounts(bed.DeveloperNamespace).Create(ctx, sa, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: name},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: name, Namespace: bed.DeveloperNamespace}},
	}
	if _, err := cs.RbacV1().ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx := context.Background()
		_ = cs.RbacV1().ClusterRoleBindings().Delete(ctx, name, metav1.DeleteOptions{})
		_ = cs.RbacV1().ClusterRoles().Delete(ctx, name, metav1.DeleteOptions{})
		_ = cs.CoreV1().ServiceAccounts(bed.DeveloperNamespace).Delete(ctx, name, metav1.DeleteOptions{})
	})
	tok, err := cs.CoreV1().ServiceAccounts(bed.DeveloperNamespace).CreateToken(ctx, name,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["kiln-test"] = &clientcmdapi.Cluster{Server: bed.Host, CertificateAuthority: bed.CAFile}
	cfg.AuthInfos[name] = &clientcmdapi.AuthInfo{Token: tok.Status.Token}
	cfg.Contexts["kiln-test"] = &clientcmdapi.Context{Cluster: "kiln-test", AuthInfo: name}
	cfg.CurrentContext = "kiln-test"
	path := t.TempDir() + "/kubeconfig"
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestAccEnvironment_createdMarkRemoved: a namespace Kiln created is deleted
// only while it carries Kiln's mark of creation; without it, destroy releases
// the namespace (drops Kiln's labels) and leaves it.
func TestAccEnvironment_createdMarkRemoved(t *testing.T) {
	testAccPreCheck(t)
	bed := testenv.Kube(t)
	cs := kubeClient(t, bed)
	project := acctest.RandomWithPrefix("kiln-mark")
	ns := project + "-env-dev"
	t.Cleanup(func() { _ = cs.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{}) })
	config := kubeProviderHCL(bed) + projectHCL(project) + `
resource "kiln_environment" "dev" {
  project = kiln_project.test.name
  name    = "dev"
}
`
	created := func(want bool) []statecheck.StateCheck {
		return []statecheck.StateCheck{statecheck.ExpectKnownValue("kiln_environment.dev", tfjsonpath.New("namespace_created"), knownvalue.Bool(want))}
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		CheckDestroy:             checkLabel(cs, ns, "kiln.dev/env", ""),
		Steps: []resource.TestStep{
			{Config: config, ConfigStateChecks: created(true)},
			{
				PreConfig: func() {
					n, err := cs.CoreV1().Namespaces().Get(context.Background(), ns, metav1.GetOptions{})
					if err != nil {
						t.Fatal(err)
					}
					delete(n.Annotations, "kiln.dev/created-for")
					if _, err := cs.CoreV1().Namespaces().Update(context.Background(), n, metav1.UpdateOptions{FieldManager: "platform-admin"}); err != nil {
						t.Fatal(err)
					}
				},
				Config:            config,
				ConfigStateChecks: created(false),
			},
		},
	})
}
