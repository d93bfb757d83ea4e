package delivery

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kilnhq/terraform-provider-kiln/internal/delivery/label"
)

const deployTmpl = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: ${service}
spec:
  selector:
    matchLabels: {app: ${service}}
  template:
    metadata:
      labels: {app: ${service}}
    spec:
      containers:
      - name: app
        image: ${image}
        env:
        - {name: PORT, value: "${port}"}
`

func testProject() Project {
	return Project{
		Name:         "shop",
		Services:     map[string]string{"db": deployTmpl, "api": deployTmpl, "web": deployTmpl},
		StartupOrder: [][]string{{"db"}, {"api", "web"}},
		Variables:    map[string]string{"port": "8080"},
		ImageRule:    DefaultImageRule,
	}
}

func TestValidate(t *testing.T) {
	if err := testProject().Validate(); err != nil {
		t.Fatalf("valid project: %v", err)
	}
	cases := map[string]struct {
		edit func(*Project)
		want string
	}{
		"unknown service in order": {func(p *Project) { p.StartupOrder = [][]string{{"db"}, {"api", "web", "cache"}} }, `unknown service "cache"`},
		"service twice":            {func(p *Project) { p.StartupOrder = [][]string{{"db", "api"}, {"api", "web"}} }, `"api" is in startup order groups 1 and 2`},
		"service missing":          {func(p *Project) { p.StartupOrder = [][]string{{"db"}, {"api"}} }, `"web" is missing from the startup order`},
		"invalid YAML":             {func(p *Project) { p.Services["web"] = "kind: [Deployment\n" }, `service "web": YAML document 1`},
		"no name":                  {func(p *Project) { p.Services["web"] = "apiVersion: v1\nkind: ConfigMap\n" }, "metadata.name is missing"},
		"undeclared variable":      {func(p *Project) { p.Variables = nil }, `uses ${port}, which is neither a built-in`},
		"bad image rule":           {func(p *Project) { p.ImageRule = "{{.Nope}}" }, "image naming rule"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			p := testProject()
			p.Services = map[string]string{"db": deployTmpl, "api": deployTmpl, "web": deployTmpl}
			c.edit(&p)
			err := p.Validate()
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Validate() = %v, want an error containing %q", err, c.want)
			}
		})
	}
}

func TestRenderService(t *testing.T) {
	p := testProject()
	env := Environment{Project: "shop", Name: "dev", Namespace: "shop-env-dev", Variables: map[string]string{"port": "9090"}}
	r, err := RenderService(p, env, "v1", "api", "api:1")
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Objects) != 1 {
		t.Fatalf("got %d objects", len(r.Objects))
	}
	u := r.Objects[0]
	if u.GetName() != "api" || u.GetNamespace() != "shop-env-dev" {
		t.Errorf("object %s/%s", u.GetNamespace(), u.GetName())
	}
	if l := u.GetLabels(); l[label.ManagedBy] != "kiln" || l[label.Project] != "shop" || l[label.Env] != "dev" || l[label.Service] != "api" {
		t.Errorf("labels %v", l)
	}
	if !strings.Contains(r.YAML, "image: api:1") || !strings.Contains(r.YAML, `value: "9090"`) {
		t.Errorf("render:\n%s", r.YAML)
	}
	if _, err := RenderService(p, env, "v1", "api", ""); err == nil || !strings.Contains(err.Error(), "no image") {
		t.Errorf("render without image: %v", err)
	}
	p.Services["api"] = strings.Replace(deployTmpl, "${port}", "${missing}", 1)
	if _, err := RenderService(p, env, "v1", "api", "api:1"); err == nil || !strings.Contains(err.Error(), "${missing}") {
		t.Errorf("render with a missing variable: %v", err)
	}
}

func TestOrder(t *testing.T) {
	p := testProject()
	got := p.Order([]string{"web", "db"})
	if len(got) != 2 || got[0][0] != "db" || got[1][0] != "web" || len(got[1]) != 1 {
		t.Fatalf("Order = %v", got)
	}
	p.StartupOrder = nil
	if got := p.Order([]string{"web", "db", "api"}); len(got) != 1 || len(got[0]) != 3 {
		t.Fatalf("Order without startup order = %v", got)
	}
}

func TestImageName(t *testing.T) {
	got, err := ImageName(DefaultImageRule, ImageNameData{Service: "api", Timestamp: "20250101120000", Branch: "main"})
	if err != nil || got != "api:20250101120000-main" {
		t.Fatalf("ImageName = %q, %v", got, err)
	}
}

// TestRenderInjection: values go into parsed scalars, never into the YAML
// text: a value holding documents stays one string, an image must be a
// reference, and a whole unquoted placeholder takes its value's type.
func TestRenderInjection(t *testing.T) {
	p := testProject()
	p.Variables["replicas"] = "1"
	p.Services["api"] = strings.Replace(deployTmpl, "spec:\n  selector", "spec:\n  replicas: ${replicas} # scaled by ${project}\n  selector", 1)
	payload := "9090\"\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: injected\n"
	env := Environment{Project: "shop", Name: "dev", Namespace: "shop-env-dev", Variables: map[string]string{"port": payload, "replicas": "3"}}
	r, err := RenderService(p, env, "v1", "api", "registry.shop.test/api@sha256:"+strings.Repeat("a", 64))
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Objects) != 1 {
		t.Fatalf("a variable added objects: %d\n%s", len(r.Objects), r.YAML)
	}
	containers, _, _ := unstructured.NestedSlice(r.Objects[0].Object, "spec", "template", "spec", "containers")
	env0 := containers[0].(map[string]any)["env"].([]any)[0].(map[string]any)
	if env0["value"] != payload {
		t.Errorf("PORT = %q, want the whole value", env0["value"])
	}
	if got, _, _ := unstructured.NestedInt64(r.Objects[0].Object, "spec", "replicas"); got != 3 {
		t.Errorf("replicas = %v, want the number 3\n%s", r.Objects[0].Object["spec"].(map[string]any)["replicas"], r.YAML)
	}
	if strings.Contains(r.YAML, "scaled by") {
		t.Errorf("comments kept:\n%s", r.YAML)
	}
	for _, image := range []string{"nginx:1.27\n---\nkind: ClusterRole", "nginx 1.27", "Nginx:latest"} {
		if _, err := RenderService(p, env, "v1", "api", image); err == nil || !strings.Contains(err.Error(), "not a valid image reference") {
			t.Errorf("image %q: %v", image, err)
		}
	}
}
