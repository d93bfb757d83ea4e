package delivery

import (
	"fmt"
	"strings"
	"testing"
)

func TestCheckVersionName(t *testing.T) {
	for name, ok := range map[string]bool{
		"v1":                    true,
		"v1.2.0":                true,
		"2026-11-29.rc1":        true,
		"V1":                    false, // not a ConfigMap name
		"v1_0":                  false,
		"-v1":                   false,
		"v1.":                   false,
		"":                      false,
		strings.Repeat("a", 63): true,
		strings.Repeat("a", 64): false,
	} {
		if err := CheckVersionName(name); (err == nil) != ok {
			t.Errorf("CheckVersionName(%q) = %v, want ok %t", name, err, ok)
		}
	}
}

func TestVersionDrift(t *testing.T) {
	wrote := Version{
		Description:  "first cut",
		Labels:       map[string]string{"stable": "true"},
		Services:     map[string]string{"api": "r.test/api:1.0", "web": "r.test/web@sha256:bb"},
		Images:       map[string]string{"api": "r.test/api@sha256:aa", "web": "r.test/web@sha256:bb"},
		StartupOrder: [][]string{{"db"}, {"api", "web"}},
	}
	if d := wrote.Drift(wrote); len(d) != 0 {
		t.Fatalf("a record as written drifts: %q", d)
	}
	edited := wrote
	edited.Images = map[string]string{"api": "r.test/api@sha256:ee", "worker": "r.test/worker@sha256:ff"}
	edited.Labels = nil
	edited.StartupOrder = [][]string{{"api", "web"}, {"db"}}
	got := strings.Join(wrote.Drift(edited), "\n")
	want := strings.Join([]string{
		`labels["stable"]: Kiln wrote "true", the record has none`,
		`images["api"]: Kiln wrote "r.test/api@sha256:aa", the record holds "r.test/api@sha256:ee"`,
		`images["web"]: Kiln wrote "r.test/web@sha256:bb", the record has none`,
		`images["worker"]: Kiln wrote none, the record holds "r.test/worker@sha256:ff"`,
		`startup_order: Kiln wrote "[[db] [api web]]", the record holds "[[api web] [db]]"`,
	}, "\n")
	if got != want {
		t.Errorf("drift:\n%s\nwant:\n%s", got, want)
	}
}

func TestVersionReleaseOrder(t *testing.T) {
	p := testProject()
	p.Services = map[string]string{"db": deployTmpl, "api": deployTmpl, "web": deployTmpl, "cache": deployTmpl}
	p.StartupOrder = [][]string{{"db", "cache"}, {"api"}, {"web"}}
	// The snapshot ran api first; "gone" left the project since, cache joined it.
	v := Version{StartupOrder: [][]string{{"api", "gone"}, {"db"}, {"web"}}}
	got := fmt.Sprint(v.releaseOrder(p))
	if want := "[[api] [db] [web] [cache]]"; got != want {
		t.Errorf("release order %s, want %s", got, want)
	}
}

func TestVersionCheckServices(t *testing.T) {
	p := testProject()
	v := Version{Services: map[string]string{"api": "r.test/api@sha256:aa", "nope": "r.test/nope@sha256:aa"}}
	err := v.checkServices(p)
	if err == nil || !strings.Contains(err.Error(), `has no service "nope"`) {
		t.Errorf("unknown service: %v", err)
	}
}
