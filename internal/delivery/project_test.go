package delivery

import (
	"strings"
	"testing"

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
