package buildfarm

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/kilnhq/terraform-provider-kiln/internal/delivery"
	"github.com/kilnhq/terraform-provider-kiln/internal/delivery/label"
)

type fakeProjects map[string]delivery.Project

func (f fakeProjects) ReadProject(_ context.Context, _, name string) (delivery.Project, error) {
	p, ok := f[name]
	if !ok {
		return delivery.Project{}, delivery.ErrNotFound
	}
	return p, nil
}

func farmWithPools(t *testing.T, pools ...Pool) *Farm {
	t.Helper()
	f := &Farm{Records: &Memory{}, Projects: fakeProjects{"shop": {Name: "shop",
		Services: map[string]string{"backend": "kind: Deployment"}, BuildPoolLabels: map[string]string{"team": "shop"}}}}
	for _, p := range pools {
		if err := f.writePool(context.Background(), p); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

func fieldOf(err error) string {
	var fe *FieldError
	if errors.As(err, &fe) {
		return fe.Field
	}
	return ""
}

// Hosts are chosen by the pool's labels and the newest Go version matching
// the request; what no host offers is an error naming the field.
func TestCandidates(t *testing.T) {
	f := farmWithPools(t,
		Pool{Name: "a", Labels: map[string]string{"team": "shop", "arch": "amd64"}, Hosts: []PoolHost{
			{Addr: "h1:22", GoVersions: []string{"1.24.4", "1.23.10"}},
			{Addr: "h2:22", GoVersions: []string{"1.24.9"}},
		}},
		Pool{Name: "b", Labels: map[string]string{"team": "other"}, Hosts: []PoolHost{{Addr: "h3:22", GoVersions: []string{"1.25.1"}}}},
	)
	ctx := context.Background()
	hosts, v, err := f.candidates(ctx, map[string]string{"team": "shop"}, "1.24")
	if err != nil || v != "1.24.9" || len(hosts) != 1 || hosts[0].host.Addr != "h2:22" {
		t.Errorf("1.24: %v %s %v", hosts, v, err)
	}
	if hosts, v, err = f.candidates(ctx, nil, "1.24.4"); err != nil || v != "1.24.4" || len(hosts) != 1 {
		t.Errorf("1.24.4: %v %s %v", hosts, v, err)
	}
	if _, _, err = f.candidates(ctx, map[string]string{"team": "shop"}, "1.25"); fieldOf(err) != "go_version" {
		t.Errorf("1.25 on team=shop: %v", err)
	}
	if _, _, err = f.candidates(ctx, map[string]string{"team": "none"}, "1.24"); fieldOf(err) != "pool_labels" {
		t.Errorf("team=none: %v", err)
	}
	if !matchesVersion("1.24.10", "1.24") || matchesVersion("1.2.4", "1.2.4.1") || matchesVersion("1.240.1", "1.24") {
		t.Error("matchesVersion")
	}
	if compareVersions("1.24.10", "1.24.9") <= 0 {
		t.Error("compareVersions is not numeric")
	}
}

// Plan checks the project's service and takes its pool labels.
func TestPlan_projectService(t *testing.T) {
	f := farmWithPools(t, Pool{Name: "a", Labels: map[string]string{"team": "shop"}, Hosts: []PoolHost{{Addr: "h1:22", GoVersions: []string{"1.24.4"}}}})
	dir := t.TempDir()
	spec := BuildSpec{Project: "shop", Service: "frontend", GoVersion: "1.24", Source: Source{Path: dir}, Go: &GoBuild{Package: "."}}
	if _, _, err := f.Plan(context.Background(), &spec, true); fieldOf(err) != "service" || !strings.Contains(err.Error(), "backend") {
		t.Errorf("unknown service: %v", err)
	}
	spec.Service = "backend"
	p, _, err := f.Plan(context.Background(), &spec, true)
	if err != nil || p.PoolLabels["team"] != "shop" || !strings.HasPrefix(p.SourceHash, "sha256:") {
		t.Errorf("plan: %+v %v", p, err)
	}
}

func TestValidate(t *testing.T) {
	for name, tc := range map[string]struct {
		spec  BuildSpec
		field string
	}{
		"both go and script":       {BuildSpec{Name: "x", GoVersion: "1.24", Source: Source{Path: "."}, Go: &GoBuild{Package: "."}, Script: "make"}, "go"},
		"script without artifacts": {BuildSpec{Name: "x", GoVersion: "1.24", Source: Source{Path: "."}, Script: "make"}, "artifacts"},
		"artifact outside":         {BuildSpec{Name: "x", GoVersion: "1.24", Source: Source{Path: "."}, Script: "make", Artifacts: []string{"../x"}}, "artifacts"},
		"bad version":              {BuildSpec{Name: "x", GoVersion: "go1.24", Source: Source{Path: "."}, Go: &GoBuild{Package: "."}}, "go_version"},
		"newline in env":           {BuildSpec{Name: "x", GoVersion: "1.24", Source: Source{Path: "."}, Go: &GoBuild{Package: "."}, Env: map[string]string{"A": "1\n2"}}, "env"},
		"name and project":         {BuildSpec{Name: "x", Project: "p", Service: "s", GoVersion: "1.24", Source: Source{Path: "."}, Go: &GoBuild{Package: "."}}, "name"},
	} {
		if err := tc.spec.Validate(); fieldOf(err) != tc.field {
			t.Errorf("%s: %v, want an error on %s", name, err, tc.field)
		}
	}
}

// Build numbers count per series, and two claims never share one.
func TestClaimNumber(t *testing.T) {
	f := farmWithPools(t)
	ctx := context.Background()
	for want := 1; want <= 3; want++ {
		r := Result{Project: "shop", Service: "backend", Status: StatusRunning}
		if err := f.claimNumber(ctx, &r); err != nil || r.Number != want {
			t.Fatalf("claim %d: got %d, %v", want, r.Number, err)
		}
	}
	other := Result{Name: "tool", Status: StatusRunning}
	if err := f.claimNumber(ctx, &other); err != nil || other.Number != 1 {
		t.Errorf("standalone series: %d %v", other.Number, err)
	}
	rec, err := f.Records.Get(ctx, "kiln-build-shop.backend-3")
	if err != nil || rec.Labels[label.Kind] != kindBuild {
		t.Fatalf("record: %v %v", rec, err)
	}
	var r Result
	if err := json.Unmarshal(rec.Data, &r); err != nil || r.Status != StatusRunning {
		t.Errorf("record data %s: %v", rec.Data, err)
	}
}

func TestBranchName(t *testing.T) {
	commit := strings.Repeat("ab", 20)
	for ref, want := range map[string]string{"main": "main", "refs/heads/feature/x": "feature-x", "refs/tags/v1.2": "v1.2", commit: "abababababab"} {
		if got := branchName(ref, commit); got != want {
			t.Errorf("branchName(%q) = %q, want %q", ref, got, want)
		}
	}
}

func TestExpandLDFlags(t *testing.T) {
	commit := strings.Repeat("c", 40)
	src := source{time: time.Unix(1700000000, 0), branch: "main"}
	got, err := expandLDFlags("-X main.buildStamp={{.Git.CommitDate}} -X main.rev={{.Git.ShortCommit}}@{{.Git.CommitTimestamp}}", Source{Commit: commit}, src)
	if want := "-X main.buildStamp=2023-11-14T22:13:20Z -X main.rev=cccccccccccc@1700000000"; err != nil || got != want {
		t.Errorf("got %q (%v), want %q", got, err, want)
	}
	if _, err := expandLDFlags("{{.Nope}}", Source{Commit: commit}, src); fieldOf(err) != "go.ldflags" {
		t.Errorf("unknown field: %v", err)
	}
}

func TestBinaryName(t *testing.T) {
	for _, tc := range [][3]string{
		{"./cmd/backend", "example.com/x", "backend"},
		{".", "example.com/kiln-sample/backend", "backend"},
		{"./", "example.com/x", "x"},
		{".", "", "app"},
	} {
		if got := binaryName(tc[0], tc[1]); got != tc[2] {
			t.Errorf("binaryName(%q, %q) = %q, want %q", tc[0], tc[1], got, tc[2])
		}
	}
}

// A service's hosts are those of every pool with the labels, each once, in
// pool name order; a record that is not a pool's does not count.
func TestLabelledHosts(t *testing.T) {
	f := farmWithPools(t,
		Pool{Name: "b", Labels: map[string]string{"team": "shop"}, Hosts: []PoolHost{{Addr: "h2:22", HostKey: "key-2"}, {Addr: "h1:22"}}},
		Pool{Name: "a", Labels: map[string]string{"team": "shop", "arch": "amd64"}, Hosts: []PoolHost{{Addr: "h1:22", HostKey: "key-1"}}},
		Pool{Name: "c", Labels: map[string]string{"team": "other"}, Hosts: []PoolHost{{Addr: "h3:22"}}},
	)
	ctx := context.Background()
	data, err := json.Marshal(Pool{Name: "d", Labels: map[string]string{"team": "shop"}, Hosts: []PoolHost{{Addr: "h4:22"}}})
	if err != nil {
		t.Fatal(err)
	}
	// Labelled as a pool of another name than it holds.
	if err := f.Records.Put(ctx, record{Name: poolRecordName("d"), Labels: map[string]string{label.Kind: kindPool, labelPool: "e"}, Data: data}); err != nil {
		t.Fatal(err)
	}
	hosts, err := f.LabelledHosts(ctx, map[string]string{"team": "shop"})
	var got []string
	for _, h := range hosts {
		got = append(got, h.Addr+" "+h.HostKey)
	}
	if err != nil || strings.Join(got, ",") != "h1:22 key-1,h2:22 key-2" {
		t.Errorf("team=shop: %q, %v", got, err)
	}
	if _, err := f.LabelledHosts(ctx, map[string]string{"team": "none"}); fieldOf(err) != "pool_labels" {
		t.Errorf("team=none: %v", err)
	}
}
