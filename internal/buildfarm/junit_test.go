package buildfarm

import (
	"os"
	"strings"
	"testing"
	"time"
)

// go test -json output, as Go prints it for a module with a package that
// does not compile and one with a passing, a failing, a skipped test and a
// subtest (testdata/go-test.json), is converted to JUnit with every case
// counted once and the failures' own lines as their messages; the report
// Kiln pushes reads back the same.
func TestGoTestJSON(t *testing.T) {
	fh, err := os.Open("testdata/go-test.json")
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	suites, err := goTestJSON(fh, time.Unix(1700000000, 0))
	if err != nil {
		t.Fatal(err)
	}
	c, failed := summary(suites)
	if want := (Counts{Total: 6, Passed: 3, Failed: 1, Errors: 1, Skipped: 1}); c != want {
		t.Errorf("counts %+v, want %+v", c, want)
	}
	want := []FailedTest{
		{Name: "example.com/calc/broken.[build failed]", Message: "broken/b_test.go:5:28: undefined: undefinedThing"},
		{Name: "example.com/calc/ok.TestBroken", Message: "calc_test.go:6: want 4, got 5"},
	}
	if len(failed) != len(want) || failed[0] != want[0] || failed[1] != want[1] {
		t.Errorf("failed %+v, want %+v", failed, want)
	}
	data, err := marshalJUnit(suites)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(data), "<?xml") || !strings.Contains(string(data), `timestamp="2023-11-14T22:13:20Z"`) {
		t.Errorf("report:\n%s", data)
	}
	again, err := parseJUnit(data)
	if err != nil {
		t.Fatal(err)
	}
	if c2, f2 := summary(again); c2 != c || len(f2) != 2 || f2[1] != want[1] {
		t.Errorf("read back: %+v %+v", c2, f2)
	}
}

// Empty go test -json output (no packages) is a report of no tests.
func TestGoTestJSON_empty(t *testing.T) {
	suites, err := goTestJSON(strings.NewReader(""), time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if c, _ := summary(suites); c != (Counts{}) {
		t.Errorf("counts %+v", c)
	}
}

// JUnit reports as other tools write them: a <testsuites> root or a single
// <testsuite>, errors, failures with only a message attribute, skipped cases,
// and a long message kept by its end.
func TestParseJUnit(t *testing.T) {
	long := strings.Repeat("x", 1000) + " the cause"
	suites := `<?xml version="1.0"?>
<!-- written by a test runner -->
<testsuites>
  <testsuite name="api" tests="3">
    <testcase classname="api" name="login"/>
    <testcase classname="api" name="logout"><failure message="expected 200, got 500"/></testcase>
    <testcase classname="api" name="slow"><skipped/></testcase>
  </testsuite>
  <testsuite name="db">
    <testcase name="migrate"><error message="boom">` + long + `</error></testcase>
  </testsuite>
</testsuites>`
	s, err := parseJUnit([]byte(suites))
	if err != nil {
		t.Fatal(err)
	}
	c, failed := summary(s)
	if want := (Counts{Total: 4, Passed: 1, Failed: 1, Errors: 1, Skipped: 1}); c != want {
		t.Errorf("counts %+v, want %+v", c, want)
	}
	if len(failed) != 2 || failed[0] != (FailedTest{Name: "api.logout", Message: "expected 200, got 500"}) {
		t.Errorf("failed %+v", failed)
	}
	if m := failed[1].Message; failed[1].Name != "migrate" || !strings.HasSuffix(m, " the cause") || len(m) > maxMessage+len("…") {
		t.Errorf("long message: %s (%d bytes)", failed[1].Name, len(m))
	}

	single := `<testsuite name="course" tests="2" failures="0"><testcase classname="init" name="a"/><testcase classname="init" name="b"/></testsuite>`
	s, err = parseJUnit([]byte(single))
	if err != nil {
		t.Fatal(err)
	}
	if c, _ := summary(s); c != (Counts{Total: 2, Passed: 2}) {
		t.Errorf("single suite: %+v", c)
	}
	// The counts come from the cases, not from attributes that may be wrong.
	if c, _ := summary(merge(s, s)); c != (Counts{Total: 4, Passed: 4}) {
		t.Errorf("merged: %+v", c)
	}

	for name, bad := range map[string]string{
		"html":      `<html><body>not a report</body></html>`,
		"broken":    `<testsuites><testsuite>`,
		"empty":     ``,
		"plain txt": `PASS ok example.com/x`,
	} {
		if _, err := parseJUnit([]byte(bad)); err == nil || !strings.Contains(err.Error(), "not a JUnit report") {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// At most maxFailedTests failures are kept.
func TestSummary_boundsFailures(t *testing.T) {
	var b strings.Builder
	b.WriteString("<testsuite>")
	for range 15 {
		b.WriteString(`<testcase name="t"><failure>x</failure></testcase>`)
	}
	b.WriteString("</testsuite>")
	s, err := parseJUnit([]byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	c, failed := summary(s)
	if c.Failed != 15 || len(failed) != maxFailedTests {
		t.Errorf("%d failed, %d kept", c.Failed, len(failed))
	}
}

// The gate: the pass rate counts the tests that ran (skipped ones do not),
// zero tests fail by default, and a script that failed with a clean report
// fails too.
func TestJudge(t *testing.T) {
	for name, tc := range map[string]struct {
		c        Counts
		rate     float64
		min      int
		exit     int
		rateWant string
		reasons  []string
	}{
		"all pass":         {Counts{Total: 3, Passed: 3}, 100, 1, 0, "100", nil},
		"one fails at 100": {Counts{Total: 3, Passed: 2, Failed: 1}, 100, 1, 1, "66.67", []string{"pass rate 66.67% is below 100% (2 of 3 passed, 1 failed, 0 errors)"}},
		"half at 50":       {Counts{Total: 2, Passed: 1, Failed: 1}, 50, 1, 1, "50", nil},
		"half at 50.5":     {Counts{Total: 2, Passed: 1, Errors: 1}, 50.5, 1, 1, "50", []string{"pass rate 50% is below 50.5% (1 of 2 passed, 0 failed, 1 errors)"}},
		"zero tests":       {Counts{}, 100, 1, 0, "0", []string{"0 tests ran, fewer than min_tests 1"}},
		"zero allowed":     {Counts{}, 100, 0, 0, "0", nil},
		"only skipped":     {Counts{Total: 2, Skipped: 2}, 0, 1, 0, "0", []string{"0 tests ran, fewer than min_tests 1"}},
		"skips not failed": {Counts{Total: 3, Passed: 2, Skipped: 1}, 100, 2, 0, "100", nil},
		"too few":          {Counts{Total: 2, Passed: 2}, 100, 3, 0, "100", []string{"2 tests ran, fewer than min_tests 3"}},
		"script failed":    {Counts{Total: 1, Passed: 1}, 100, 1, 2, "100", []string{"the test script exited with status 2 though its report shows no failure"}},
		"rate 0 accepts":   {Counts{Total: 1, Failed: 1}, 0, 1, 1, "0", nil},
	} {
		if got := FormatRate(tc.c.PassRate()); got != tc.rateWant {
			t.Errorf("%s: pass rate %s, want %s", name, got, tc.rateWant)
		}
		got := judge(tc.c, tc.rate, tc.min, tc.exit)
		if strings.Join(got, "|") != strings.Join(tc.reasons, "|") {
			t.Errorf("%s: %q, want %q", name, got, tc.reasons)
		}
	}
}
