package buildfarm

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"

	"github.com/kilnhq/terraform-provider-kiln/internal/delivery/label"
	"github.com/kilnhq/terraform-provider-kiln/internal/oci"
)

func validSuite() SuiteSpec {
	return SuiteSpec{Project: "shop", Name: "unit", GoVersion: "1.24", Source: Source{Path: "."}, PassRate: 100, MinTests: 1}
}

// Inputs at fault are named.
func TestSuiteSpec_Validate(t *testing.T) {
	if err := validSuite().Validate(); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		edit  func(*SuiteSpec)
		field string
	}{
		"bad name":          {func(s *SuiteSpec) { s.Name = "Unit_Tests" }, "name"},
		"bad service":       {func(s *SuiteSpec) { s.Service = "a.b" }, "service"},
		"bad version":       {func(s *SuiteSpec) { s.GoVersion = "latest" }, "go_version"},
		"no source":         {func(s *SuiteSpec) { s.Source = Source{} }, "source"},
		"build, no git":     {func(s *SuiteSpec) { s.Build = "shop.backend/1" }, "source.git"},
		"report outside":    {func(s *SuiteSpec) { s.Reports = []string{"../x.xml"} }, "reports"},
		"report absolute":   {func(s *SuiteSpec) { s.Reports = []string{"/tmp/*.xml"} }, "reports"},
		"rate above 100":    {func(s *SuiteSpec) { s.PassRate = 101 }, "pass_rate"},
		"negative min":      {func(s *SuiteSpec) { s.MinTests = -1 }, "min_tests"},
		"env name":          {func(s *SuiteSpec) { s.Env = map[string]string{"A-B": "1"} }, "env"},
		"env value newline": {func(s *SuiteSpec) { s.Env = map[string]string{"A": "1\n2"} }, "env"},
	} {
		s := validSuite()
		tc.edit(&s)
		if err := s.Validate(); fieldOf(err) != tc.field {
			t.Errorf("%s: %v, want an error on %s", name, err, tc.field)
		}
	}
}

func TestParseBuildID(t *testing.T) {
	for id, want := range map[string]string{"shop.backend/3": "shop.backend", "tool/12": "tool"} {
		r, n, err := parseBuildID(id)
		if err != nil || r.Series() != want || n < 1 {
			t.Errorf("%s: %s %d %v", id, r.Series(), n, err)
		}
	}
	for _, bad := range []string{"shop.backend", "shop/0", "shop/x", "Shop/1", "a.b.c/1", "/1"} {
		if _, _, err := parseBuildID(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// A suite of a build tests the commit in that build's record, read by name;
// a build of a directory has none to test.
func TestBuildCommit(t *testing.T) {
	f := farmWithPools(t)
	ctx := context.Background()
	commit := strings.Repeat("ab", 20)
	for _, r := range []Result{
		{Project: "shop", Service: "backend", Number: 2, Commit: commit, Status: StatusSucceeded},
		{Name: "tool", Number: 1, Status: StatusSucceeded},
	} {
		if err := f.writeBuild(ctx, r, true); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := f.buildCommit(ctx, "shop.backend/2"); err != nil || got != commit {
		t.Errorf("shop.backend/2: %s %v", got, err)
	}
	if _, err := f.buildCommit(ctx, "shop.backend/3"); fieldOf(err) != "build" || !errors.Is(err, ErrNotFound) {
		t.Errorf("no such build: %v", err)
	}
	if _, err := f.buildCommit(ctx, "tool/1"); fieldOf(err) != "build" || !strings.Contains(err.Error(), "directory") {
		t.Errorf("a directory build: %v", err)
	}
	// A record under a build's name that describes another build is refused.
	data, _ := json.Marshal(Result{Project: "shop", Service: "backend", Number: 9, Commit: commit})
	if err := f.Records.Put(ctx, record{Name: "kiln-build-shop.backend-4", Labels: map[string]string{label.Kind: kindBuild}, Data: data}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.buildCommit(ctx, "shop.backend/4"); fieldOf(err) != "build" {
		t.Errorf("a record of another build: %v", err)
	}
}

// PlanSuite with a build takes its commit; the suite's service is checked
// only when set, and the project's pool labels are the default.
func TestPlanSuite(t *testing.T) {
	f := farmWithPools(t, Pool{Name: "a", Labels: map[string]string{"team": "shop"}, Hosts: []PoolHost{{Addr: "h1:22", GoVersions: []string{"1.24.4"}}}})
	ctx := context.Background()
	spec := validSuite()
	spec.Source.Path = t.TempDir()
	p, _, err := f.PlanSuite(ctx, &spec, true)
	if err != nil || p.PoolLabels["team"] != "shop" || spec.PoolLabels["team"] != "shop" {
		t.Errorf("plan: %+v %v", p, err)
	}
	spec.Service = "frontend"
	if _, _, err := f.PlanSuite(ctx, &spec, true); fieldOf(err) != "service" {
		t.Errorf("unknown service: %v", err)
	}
	spec.Service = "backend"
	spec.GoVersion = "1.25"
	if _, _, err := f.PlanSuite(ctx, &spec, true); fieldOf(err) != "go_version" {
		t.Errorf("no host with 1.25: %v", err)
	}
}

// Test runs are numbered per suite and listed oldest first; a record that is
// not what its name says is left out with a warning.
func TestSuiteHistory(t *testing.T) {
	f := farmWithPools(t)
	ctx := context.Background()
	for range 3 {
		r := SuiteResult{Project: "shop", Name: "unit", Status: StatusRunning}
		if err := f.claim(ctx, map[string]string{label.Kind: kindTestRun, label.Project: "shop", labelSuite: "unit"},
			func(n int) error { r.Number = n; return f.writeSuite(ctx, r, true) }); err != nil {
			t.Fatal(err)
		}
		r.Status, r.Counts, r.PassRate = SuitePassed, Counts{Total: r.Number, Passed: r.Number}, 100
		if err := f.writeSuite(ctx, r, false); err != nil {
			t.Fatal(err)
		}
	}
	other := SuiteResult{Project: "shop", Name: "e2e", Number: 1, Status: SuiteFailed}
	if err := f.writeSuite(ctx, other, true); err != nil {
		t.Fatal(err)
	}
	// A forged record: labelled as run 7 of unit, describing another run.
	data, _ := json.Marshal(SuiteResult{Project: "shop", Name: "unit", Number: 1, Status: SuitePassed})
	if err := f.Records.Put(ctx, record{Name: "kiln-test-shop.unit-7",
		Labels: map[string]string{label.Kind: kindTestRun, label.Project: "shop", labelSuite: "unit"}, Data: data}); err != nil {
		t.Fatal(err)
	}
	runs, warnings, err := f.SuiteHistory(ctx, "shop", "unit")
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 3 || runs[0].Number != 1 || runs[2].Number != 3 || runs[2].Total != 3 || runs[2].Status != SuitePassed {
		t.Errorf("runs %+v", runs)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "kiln-test-shop.unit-7") {
		t.Errorf("warnings %q", warnings)
	}
	if r, err := f.ReadSuiteRun(ctx, "shop", "e2e", 1); err != nil || r.Status != SuiteFailed {
		t.Errorf("e2e run 1: %+v %v", r, err)
	}
	if _, err := f.ReadSuiteRun(ctx, "shop", "unit", 7); err == nil {
		t.Error("the forged record was read")
	}
}

// writeOut lays out a run's results as build.sh sends them.
func writeOut(t *testing.T, exit string, files map[string]string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "out")
	files["exit-status"] = exit + "\n"
	for name, content := range files {
		p := filepath.Join(out, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// readReports judges a run's results, pushes the merged JUnit report to the
// registry and gives its digest; a report that is not JUnit names reports.
func TestReadReports(t *testing.T) {
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	f := farmWithPools(t)
	f.Registry = oci.Registry{Host: strings.TrimPrefix(srv.URL, "http://"), Insecure: true}
	ctx := context.Background()

	goJSON, err := os.ReadFile("testdata/go-test.json")
	if err != nil {
		t.Fatal(err)
	}
	spec := validSuite()
	res := SuiteResult{Number: 4, Started: time.Unix(1700000000, 0)}
	if err := f.readReports(ctx, spec, writeOut(t, "1", map[string]string{"stdout": string(goJSON)}), &res); err != nil {
		t.Fatal(err)
	}
	if res.Status != SuiteFailed || res.Total != 6 || res.ExitStatus != 1 || len(res.Failures) != 2 ||
		!strings.Contains(strings.Join(res.Reasons, ";"), "pass rate 60% is below 100%") {
		t.Errorf("go test: %+v", res)
	}
	if !strings.HasPrefix(res.ReportRef, f.Registry.Host+"/shop/tests/unit@sha256:") || len(res.ReportSHA256) != 64 {
		t.Errorf("report %s %s", res.ReportRef, res.ReportSHA256)
	}
	ok, err := f.Registry.Exists(ctx, res.ReportRef)
	if err != nil || !ok {
		t.Errorf("the report is not in the registry: %v", err)
	}

	spec.Reports = []string{"test-report/*.xml"}
	res = SuiteResult{Number: 5}
	out := writeOut(t, "0", map[string]string{
		"reports/test-report/a.xml": `<testsuite><testcase name="a"/></testsuite>`,
		"reports/test-report/b.xml": `<testsuites><testsuite><testcase name="b"/><testcase name="c"><skipped/></testcase></testsuite></testsuites>`,
	})
	if err := f.readReports(ctx, spec, out, &res); err != nil {
		t.Fatal(err)
	}
	if res.Status != SuitePassed || res.Counts != (Counts{Total: 3, Passed: 2, Skipped: 1}) || res.PassRate != 100 {
		t.Errorf("reports: %+v", res)
	}

	res = SuiteResult{Number: 6}
	if err := f.readReports(ctx, spec, writeOut(t, "0", map[string]string{}), &res); err != nil || res.Status != SuiteFailed ||
		res.Reasons[0] != "0 tests ran, fewer than min_tests 1" {
		t.Errorf("no report files: %+v %v", res, err)
	}
	res = SuiteResult{Number: 7}
	err = f.readReports(ctx, spec, writeOut(t, "0", map[string]string{"reports/test-report/x.xml": "<html/>"}), &res)
	if fieldOf(err) != "reports" || !strings.Contains(err.Error(), "test-report/x.xml") {
		t.Errorf("not JUnit: %v", err)
	}
}

// A run below its threshold fails naming the failed tests and their messages.
func TestSuiteFailure_names(t *testing.T) {
	err := &SuiteFailure{Result: SuiteResult{Project: "shop", Name: "unit", Number: 2,
		Reasons:   []string{"pass rate 50% is below 100%"},
		Failures:  []FailedTest{{Name: "example.com/calc.TestBroken", Message: "calc_test.go:6: want 4\ngot 5"}},
		ReportRef: "r/shop/tests/unit@sha256:00"}}
	want := "test suite shop/unit run 2 failed: pass rate 50% is below 100%\n--- example.com/calc.TestBroken:\n    calc_test.go:6: want 4\n    got 5\nreport: r/shop/tests/unit@sha256:00"
	if err.Error() != want {
		t.Errorf("got\n%s\nwant\n%s", err, want)
	}
}
