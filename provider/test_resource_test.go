package provider

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	ggcr "github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kilnhq/terraform-provider-kiln/internal/buildfarm"
	"github.com/kilnhq/terraform-provider-kiln/internal/testenv"
)

// calcModule is the repository the suites test: two tests that pass and one
// that fails; each suite selects some with -run.
var calcModule = map[string][]byte{
	"go.mod": []byte("module example.com/calc\n\ngo 1.24\n"),
	"calc.go": []byte(`// Package calc adds and subtracts.
package calc

func Add(a, b int) int { return a + b }

func Sub(a, b int) int { return a - b }
`),
	"calc_test.go": []byte(`package calc

import "testing"

func TestAdd(t *testing.T) {
	if Add(2, 2) != 4 {
		t.Fatal("Add(2, 2) != 4")
	}
}

func TestSub(t *testing.T) {
	if Sub(5, 1) != 4 {
		t.Fatal("Sub(5, 1) != 4")
	}
}

func TestBroken(t *testing.T) {
	if got := Sub(5, 1); got != 5 {
		t.Errorf("Sub(5, 1) = %d, want 5", got)
	}
}
`),
}

// apiReport is a JUnit report as a custom test script writes it: one case
// passes, one fails.
const apiReport = `<testsuite name="api" tests="2" failures="1">
  <testcase classname="api" name="login"/>
  <testcase classname="api" name="logout"><failure message="expected 200, got 500"/></testcase>
</testsuite>`

// suiteBed is the build farm test bed with the calc repository.
type suiteBed struct {
	buildFarmBed
	commit string
}

// suite is a kiln_test of the calc repository's main; body sets its script
// and thresholds.
func (b suiteBed) suite(resourceName, body string) string {
	return fmt.Sprintf(`
resource "kiln_test" %[1]q {
  project    = kiln_project.shop.name
  name       = %[1]q
  go_version = "1.24"
  source {
    git {
      url      = %[2]q
      ref      = "main"
      username = %[3]q
      password = %[4]q
    }
  }
  %[5]s
  depends_on = [kiln_build_pool.test]
}
`, resourceName, b.repo.URL, b.git.Username, b.git.Password, body)
}

// passing is the farm with the suites that pass the gate: unit (two passing
// tests), half (one of two at pass_rate 50), api (a custom script's report,
// below its threshold but recorded), and an environment gated by them.
func (b suiteBed) passing(extra string) string {
	return b.pool() +
		b.suite("unit", `script = "go test -json -run 'TestAdd|TestSub' ./..."`) +
		b.suite("half", `script    = "go test -json -run 'TestAdd|TestBroken' ./..."
  pass_rate = 50`) +
		b.suite("api", fmt.Sprintf(`script     = %q
  reports    = ["test-report/*.xml"]
  on_failure = "record"`, "mkdir -p test-report && printf '%s' "+shellQuote(apiReport)+" > test-report/api.xml")) + `
resource "kiln_environment" "gated" {
  project    = kiln_project.shop.name
  name       = "gated"
  depends_on = [kiln_test.unit, kiln_test.half, kiln_test.api]
}
` + extra
}

// eitherRegexp matches what a or b matches: errors of resources applied at
// once come in either order.
func eitherRegexp(a, b *regexp.Regexp) *regexp.Regexp {
	return regexp.MustCompile(a.String() + "|" + b.String())
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// TestAccTest_gate is kiln_test on the build farm's test bed (the shared
// guest as the pool host): passing suites gate an environment; a suite with
// one failing test at pass_rate 100 and a suite with no tests fail the apply,
// naming the test and the cause, and the environment that depends on them is
// not created; at pass_rate 50 a suite passes and records its numbers; a
// custom script's JUnit report is read, and below its threshold with
// on_failure = "record" it passes as failed; the reports are in the registry
// as pushed; the history lists the runs; the plan is empty after each apply;
// a new commit shows as new runs; bad input fails at plan naming the field.
//
// The build user's Go build cache is seeded with the standard library as the
// suites' go test compiles it (suiteCacheSeed), as TestAccBuild_farm seeds it
// for builds: the guest compiles the calc package and links its test binary.
// The suites that select the same tests share go test's cached result.
func TestAccTest_gate(t *testing.T) {
	testAccPreCheck(t)
	b := suiteBed{buildFarmBed: newBuildFarmBed(t, "suite")}
	b.seed = suiteCacheSeed(t, newLocalBuild(t))
	b.repo = b.git.NewRepo(t)
	b.commit = b.repo.Commit(t, "calc", calcModule)
	b.host = goHostGuest(t)
	cs := kubeClient(t, b.kube)
	gated, blocked := b.name+"-env-gated", b.name+"-env-blocked"
	start := time.Now()
	defer func() { t.Logf("TestAccTest_gate took %s", time.Since(start).Round(time.Second)) }()
	failing := b.passing(b.suite("strict", `script = "go test -json -run 'TestAdd|TestBroken' ./..."`) +
		b.suite("zero", `script  = "mkdir -p r && echo '<testsuites/>' > r/none.xml"
  reports = ["r/*.xml"]`) + `
resource "kiln_environment" "blocked" {
  project    = kiln_project.shop.name
  name       = "blocked"
  depends_on = [kiln_test.strict, kiln_test.zero]
}
`)
	history := `
data "kiln_test_history" "strict" {
  project = kiln_project.shop.name
  name    = "strict"
}

data "kiln_test_history" "half" {
  project    = kiln_project.shop.name
  name       = "half"
  depends_on = [kiln_test.half]
}
`
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		CheckDestroy:             checkNamespacesGone(cs, gated, blocked),
		Steps: []resource.TestStep{
			{Config: b.pool()},
			{
				PreConfig: func() { seedBuildCache(t, b.host, b.seed) },
				Config:    b.passing(""),
				Check: resource.ComposeTestCheckFunc(
					resource.TestCheckResourceAttr("kiln_test.unit", "status", "passed"),
					resource.TestCheckResourceAttr("kiln_test.unit", "commit", b.commit),
					resource.TestCheckResourceAttr("kiln_test.unit", "total", "2"),
					resource.TestCheckResourceAttr("kiln_test.unit", "passed", "2"),
					resource.TestCheckResourceAttr("kiln_test.unit", "measured_pass_rate", "100"),
					resource.TestCheckResourceAttr("kiln_test.unit", "failed_tests.#", "0"),
					resource.TestCheckResourceAttr("kiln_test.unit", "go_version_exact", buildGoVersion),
					resource.TestCheckResourceAttr("kiln_test.unit", "run_number", "1"),
					resource.TestCheckResourceAttr("kiln_test.half", "status", "passed"),
					resource.TestCheckResourceAttr("kiln_test.half", "total", "2"),
					resource.TestCheckResourceAttr("kiln_test.half", "failed", "1"),
					resource.TestCheckResourceAttr("kiln_test.half", "measured_pass_rate", "50"),
					resource.TestCheckResourceAttr("kiln_test.half", "exit_status", "1"),
					resource.TestCheckResourceAttr("kiln_test.half", "failed_tests.0.name", "example.com/calc.TestBroken"),
					resource.TestMatchResourceAttr("kiln_test.half", "failed_tests.0.message", regexp.MustCompile(`Sub\(5, 1\) = 4, want 5`)),
					resource.TestCheckResourceAttr("kiln_test.api", "status", "failed"),
					resource.TestCheckResourceAttr("kiln_test.api", "total", "2"),
					resource.TestCheckResourceAttr("kiln_test.api", "failed_tests.0.name", "api.logout"),
					resource.TestCheckResourceAttr("kiln_test.api", "failed_tests.0.message", "expected 200, got 500"),
					b.checkReport("kiln_test.half", "TestBroken"),
					b.checkReport("kiln_test.api", "logout"),
					b.checkRecord(cs, "half", 1, buildfarm.SuitePassed),
					b.checkRecord(cs, "api", 1, buildfarm.SuiteFailed),
					func(*terraform.State) error {
						_, err := cs.CoreV1().Namespaces().Get(context.Background(), gated, metav1.GetOptions{})
						return err
					},
				),
			},
			{
				// Below the threshold and no tests at all: the apply fails
				// naming the failed test, and the environment that depends on
				// the suites is not created.
				Config: failing,
				ExpectError: eitherRegexp(
					wrappedRegexp("Test suite strict failed", "pass rate 50% is below 100%", "example.com/calc.TestBroken", "Test suite zero failed", "0 tests ran, fewer than min_tests 1"),
					wrappedRegexp("Test suite zero failed", "0 tests ran, fewer than min_tests 1", "Test suite strict failed", "pass rate 50% is below 100%", "example.com/calc.TestBroken")),
			},
			{
				PreConfig: func() {
					if _, err := cs.CoreV1().Namespaces().Get(context.Background(), blocked, metav1.GetOptions{}); err == nil {
						t.Fatal("the environment gated by the failed suites was created")
					}
				},
				Config: b.passing(history),
				Check: resource.ComposeTestCheckFunc(
					b.checkRecord(cs, "strict", 1, buildfarm.SuiteFailed),
					b.checkRecord(cs, "zero", 1, buildfarm.SuiteFailed),
					resource.TestCheckResourceAttr("data.kiln_test_history.strict", "runs.#", "1"),
					resource.TestCheckResourceAttr("data.kiln_test_history.strict", "runs.0.status", "failed"),
					resource.TestCheckResourceAttr("data.kiln_test_history.strict", "runs.0.commit", b.commit),
					resource.TestCheckResourceAttr("data.kiln_test_history.strict", "runs.0.pass_rate", "50"),
					resource.TestCheckResourceAttr("data.kiln_test_history.strict", "runs.0.threshold", "100"),
					resource.TestCheckResourceAttr("data.kiln_test_history.strict", "runs.0.failed_tests.0.name", "example.com/calc.TestBroken"),
					resource.TestCheckResourceAttr("data.kiln_test_history.half", "runs.#", "1"),
					resource.TestCheckResourceAttr("data.kiln_test_history.half", "runs.0.status", "passed"),
					resource.TestCheckResourceAttrPair("data.kiln_test_history.half", "runs.0.report_ref", "kiln_test.half", "report_ref"),
				),
			},
			// Bad input fails at plan, naming the field.
			{Config: b.passing(b.suite("bad", `pass_rate = 150`)), PlanOnly: true, ExpectError: wrappedRegexp("pass_rate", "between 0.000000 and 100.000000")},
			{Config: b.passing(b.suite("bad", `script  = "true"
  reports = ["../out.xml"]`)), PlanOnly: true, ExpectError: wrappedRegexp("reports", `"../out.xml": want a relative pattern`)},
			{Config: b.passing(b.suite("bad", `build = "shop.backend/1"`)), PlanOnly: true, ExpectError: wrappedRegexp("Invalid Attribute Combination", "build")},
			{
				// A new commit on main: the next plan runs the suites again.
				// Last, so that the destroy after the steps has a valid
				// configuration.
				PreConfig: func() {
					files := maps.Clone(calcModule)
					files["calc.go"] = append(slices.Clone(calcModule["calc.go"]), "\n// A second commit.\n"...)
					b.repo.Commit(t, "a second commit", files)
				},
				Config:             b.passing(history),
				PlanOnly:           true,
				ExpectNonEmptyPlan: true,
			},
		},
	})
}

// checkReport fetches a suite's report from the registry: its junit.xml has
// the sha256 the suite reported and holds want.
func (b suiteBed) checkReport(addr, want string) resource.TestCheckFunc {
	return func(s *terraform.State) error {
		attrs := s.RootModule().Resources[addr].Primary.Attributes
		ref, err := name.NewDigest(attrs["report_ref"], name.Insecure)
		if err != nil {
			return fmt.Errorf("%s: report_ref: %w", addr, err)
		}
		img, err := ggcr.Image(ref, b.auth())
		if err != nil {
			return fmt.Errorf("%s: the report is not in the registry: %w", addr, err)
		}
		layers, err := img.Layers()
		if err != nil || len(layers) != 1 {
			return fmt.Errorf("%s: %d files in the report, %v", addr, len(layers), err)
		}
		rc, err := layers[0].Compressed()
		if err != nil {
			return err
		}
		defer rc.Close()
		data, err := io.ReadAll(rc)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(data)
		if got := hex.EncodeToString(sum[:]); got != attrs["report_sha256"] {
			return fmt.Errorf("%s: the report has sha256 %s, the suite says %s", addr, got, attrs["report_sha256"])
		}
		if !strings.Contains(string(data), want) {
			return fmt.Errorf("%s: the report does not mention %s:\n%s", addr, want, data)
		}
		return nil
	}
}

// checkRecord checks run n of a suite is recorded in the control namespace
// with status.
func (b suiteBed) checkRecord(cs kubernetes.Interface, suite string, n int, status string) resource.TestCheckFunc {
	return func(*terraform.State) error {
		name := fmt.Sprintf("kiln-test-%s.%s-%d", b.name, suite, n)
		sec, err := cs.CoreV1().Secrets("kiln-system").Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if got := sec.Labels["kiln.dev/status"]; got != status || sec.Type != buildfarm.SecretType {
			return fmt.Errorf("record %s: status %q, type %s; want %q", name, got, sec.Type, status)
		}
		return nil
	}
}

// suiteCacheSeed returns a tar.gz of a Go build cache holding what the
// suites' go test compiles (the standard library with testing, and vet's
// facts), made once on this machine by Kiln's build script in test mode with
// the pool host's toolchain and kept in the test cache, under a name derived
// from the toolchain, build.sh and the calc module. See localBuild.cacheSeed
// for why a seed makes a guest's first compile minutes instead of half an
// hour; go test does not build with -trimpath, so the builds' seed does not
// serve it.
func suiteCacheSeed(t *testing.T, l localBuild) string {
	t.Helper()
	h := sha256.New()
	fmt.Fprintf(h, "toolchain %s\nbuild.sh %x\n", l.toolchain.SHA256, sha256.Sum256(l.script))
	for _, f := range slices.Sorted(maps.Keys(calcModule)) {
		fmt.Fprintf(h, "%s %x\n", f, sha256.Sum256(calcModule[f]))
	}
	seed := filepath.Join(testenv.CacheDir(), "build-cache-seeds", fmt.Sprintf("go%s-test-%x.tar.gz", buildGoVersion, h.Sum(nil)[:16]))
	if _, err := os.Stat(seed); err == nil {
		return seed
	}
	start := time.Now()
	var src bytes.Buffer
	tw := tar.NewWriter(&src)
	for _, f := range []string{"go.mod", "calc.go", "calc_test.go"} {
		if err := tw.WriteHeader(&tar.Header{Name: f, Mode: 0o644, Size: int64(len(calcModule[f]))}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(calcModule[f]); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	ws := filepath.Join(home, "workspace")
	for _, d := range []string{"slots", "builds"} {
		if err := os.MkdirAll(filepath.Join(ws, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("bash", "-c", string(l.script), "kiln", ws, "1", "0", l.goroot, "0", "test",
		"go test -json -run 'TestAdd|TestSub|TestBroken' ./...", "1")
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GO") && !strings.HasPrefix(kv, "CGO_") && !strings.HasPrefix(kv, "XDG_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "HOME="+home)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = io.Discard, &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(stdin, "0\n%d\n", src.Len())
	_, _ = stdin.Write(src.Bytes())
	if err := cmd.Wait(); err != nil {
		t.Fatalf("test cache seed: %v\n%s", err, stderr.String())
	}
	if err := os.MkdirAll(filepath.Dir(seed), 0o755); err != nil {
		t.Fatal(err)
	}
	tmp := fmt.Sprintf("%s.%d.tmp", seed, os.Getpid())
	if out, err := exec.Command("tar", "-czf", tmp, "-C", filepath.Join(home, ".cache", "go-build"), ".").CombinedOutput(); err != nil {
		t.Fatalf("test cache seed: %v: %s", err, out)
	}
	if err := os.Rename(tmp, seed); err != nil {
		t.Fatal(err)
	}
	t.Logf("test cache seed %s made in %s", filepath.Base(seed), time.Since(start).Round(time.Second))
	return seed
}
