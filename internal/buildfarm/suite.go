package buildfarm

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jstemmer/go-junit-report/v2/junit"

	"github.com/kilnhq/terraform-provider-kiln/internal/delivery"
	"github.com/kilnhq/terraform-provider-kiln/internal/delivery/label"
	"github.com/kilnhq/terraform-provider-kiln/internal/oci"
	"github.com/kilnhq/terraform-provider-kiln/internal/redact"
)

// DefaultTestScript runs a Go module's tests; its output is converted to a
// JUnit report.
const DefaultTestScript = "go test -json ./..."

// Test run outcomes, in a test run's record.
const (
	SuitePassed = "passed"
	SuiteFailed = "failed"
)

// ReportArtifactType is the artifact type of a pushed test report.
const ReportArtifactType = "application/vnd.kiln.test.report.v1"

// reportFile is the merged JUnit report's path in the pushed artifact.
const reportFile = "junit.xml"

// SuiteSpec is one run of a test suite of a project.
type SuiteSpec struct {
	Project, Name string
	Service       string // optional: the service the suite tests
	PoolLabels    map[string]string
	GoVersion     string
	// Source is where the tests come from. With Build, its git repository
	// only: the commit is that build's.
	Source Source
	// Build is a kiln_build's id ("<project>.<service>/<n>", "<name>/<n>"):
	// the suite tests exactly the commit that build used.
	Build string
	// Script is DefaultTestScript when "". With Reports, the script writes
	// JUnit XML reports matching these glob patterns (relative, ** allowed);
	// without, its standard output is go test -json output.
	Script   string
	Reports  []string
	PassRate float64 // percent, 0..100
	MinTests int     // fewer tests run fail the suite
	// RecordFailure makes a run below the threshold a result that is
	// recorded and returned, not an error.
	RecordFailure bool
	Env           map[string]string
	Timeout       time.Duration // DefaultTimeout when 0
}

// SuiteResult is a test run, as its record holds it.
type SuiteResult struct {
	Number    int    `json:"number"`
	Project   string `json:"project"`
	Name      string `json:"name"`
	Service   string `json:"service,omitempty"`
	Build     string `json:"build,omitempty"`
	Commit    string `json:"commit,omitempty"`
	Status    string `json:"status"` // running, passed, failed
	Host      string `json:"host,omitempty"`
	GoVersion string `json:"go_version,omitempty"`
	Counts
	PassRate  float64 `json:"pass_rate"`
	Threshold float64 `json:"threshold"`
	MinTests  int     `json:"min_tests"`
	// ExitStatus is the test script's.
	ExitStatus int          `json:"exit_status"`
	Failures   []FailedTest `json:"failures,omitempty"`
	// Reasons say why a failed run failed.
	Reasons      []string  `json:"reasons,omitempty"`
	ReportRef    string    `json:"report_ref,omitempty"` // repository@sha256:… of the artifact
	ReportSHA256 string    `json:"report_sha256,omitempty"`
	Started      time.Time `json:"started"`
	Finished     time.Time `json:"finished,omitzero"`
	LogTail      string    `json:"log_tail,omitempty"`
}

// SuiteFailure is a run below its threshold: the apply fails naming the
// failed tests.
type SuiteFailure struct{ Result SuiteResult }

func (e *SuiteFailure) Error() string {
	r := e.Result
	msg := fmt.Sprintf("test suite %s/%s run %d failed: %s", r.Project, r.Name, r.Number, strings.Join(r.Reasons, "; "))
	for _, f := range r.Failures {
		msg += "\n--- " + f.Name
		if f.Message != "" {
			msg += ":\n" + indentLines(f.Message, "    ")
		}
	}
	if r.ReportRef != "" {
		msg += "\nreport: " + r.ReportRef
	}
	return msg
}

func indentLines(s, prefix string) string {
	return prefix + strings.ReplaceAll(s, "\n", "\n"+prefix)
}

// Validate checks what needs nothing but the spec.
func (s SuiteSpec) Validate() error {
	var errs []error
	for field, v := range map[string]string{"project": s.Project, "name": s.Name} {
		if !delivery.ValidName(v) {
			errs = append(errs, fieldError(field, "%q is not a DNS label", v))
		}
	}
	if s.Service != "" && !delivery.ValidName(s.Service) {
		errs = append(errs, fieldError("service", "%q is not a DNS label", s.Service))
	}
	if !goVersionReq.MatchString(s.GoVersion) {
		errs = append(errs, fieldError("go_version", "%q: want a Go version such as 1.24 or 1.24.4", s.GoVersion))
	}
	switch {
	case s.Build != "" && s.Source.Git == nil:
		errs = append(errs, fieldError("source.git", "a suite of a build needs the build's git repository (url and credentials)"))
	case s.Build != "" && s.Source.Ref != "":
		errs = append(errs, fieldError("source.git.ref", "the build fixes the commit: leave ref out"))
	case s.Build != "":
		if _, _, err := parseBuildID(s.Build); err != nil {
			errs = append(errs, &FieldError{Field: "build", Err: err})
		}
	case (s.Source.Git == nil) == (s.Source.Path == ""):
		errs = append(errs, fieldError("source", "set exactly one of git and path"))
	case s.Source.Git != nil && s.Source.Ref == "":
		errs = append(errs, fieldError("source.git.ref", "required"))
	}
	for _, p := range s.Reports {
		if p == "" || strings.HasPrefix(p, "/") || slices.Contains(strings.Split(p, "/"), "..") {
			errs = append(errs, fieldError("reports", "%q: want a relative pattern inside the source tree", p))
		}
	}
	if s.PassRate < 0 || s.PassRate > 100 {
		errs = append(errs, fieldError("pass_rate", "%v: want a percentage from 0 to 100", s.PassRate))
	}
	if s.MinTests < 0 {
		errs = append(errs, fieldError("min_tests", "%d: want 0 or more", s.MinTests))
	}
	for k, v := range s.Env {
		if !envKey.MatchString(k) {
			errs = append(errs, fieldError("env", "%q is not an environment variable name", k))
		}
		if strings.ContainsAny(v, "\n\x00") {
			errs = append(errs, fieldError("env", "the value of %s holds a newline or NUL", k))
		}
	}
	return errors.Join(errs...)
}

// parseBuildID reads a kiln_build id: "<project>.<service>/<n>" or
// "<name>/<n>".
func parseBuildID(id string) (Result, int, error) {
	series, num, ok := strings.Cut(id, "/")
	n, err := strconv.Atoi(num)
	if !ok || err != nil || n < 1 {
		return Result{}, 0, fmt.Errorf("%q is not a kiln_build id (<project>.<service>/<number> or <name>/<number>)", id)
	}
	var r Result
	if project, service, ok := strings.Cut(series, "."); ok {
		r.Project, r.Service = project, service
	} else {
		r.Name = series
	}
	parts := []string{r.Name}
	if r.Name == "" {
		parts = []string{r.Project, r.Service}
	}
	for _, part := range parts {
		if !delivery.ValidName(part) {
			return Result{}, 0, fmt.Errorf("%q is not a kiln_build id (<project>.<service>/<number> or <name>/<number>)", id)
		}
	}
	return r, n, nil
}

// buildCommit is the commit a recorded build used, read from its record in
// the control namespace.
func (f *Farm) buildCommit(ctx context.Context, id string) (string, error) {
	r, n, err := parseBuildID(id)
	if err != nil {
		return "", &FieldError{Field: "build", Err: err}
	}
	b, err := f.ReadBuild(ctx, r.Project, r.Service, r.Name, n)
	if err != nil {
		return "", &FieldError{Field: "build", Err: err}
	}
	if b.Number != n || b.Series() != r.Series() {
		return "", fieldError("build", "the record of build %s describes build %s/%d", id, b.Series(), b.Number)
	}
	if b.Commit == "" {
		return "", fieldError("build", "build %s built a directory, not a git commit: give the suite a source instead", id)
	}
	return b.Commit, nil
}

// PlanSuite checks spec against the world as a plan can, as Plan does for a
// build; with Build, it reads that build's commit. It sets spec.Source's
// Commit and spec.PoolLabels.
func (f *Farm) PlanSuite(ctx context.Context, spec *SuiteSpec, strict bool) (Planned, []string, error) {
	if err := spec.Validate(); err != nil {
		return Planned{}, nil, err
	}
	src := spec.Source
	if spec.Build != "" {
		commit, err := f.buildCommit(ctx, spec.Build)
		if err != nil {
			return Planned{}, nil, err
		}
		src.Ref = commit
	}
	p, warnings, err := f.plan(ctx, &src, spec.Project, spec.Service, &spec.PoolLabels, spec.GoVersion, strict)
	spec.Source.Commit = src.Commit
	return p, warnings, err
}

// RunSuite runs a planned suite (PlanSuite set its commit and labels) on a
// pool host as the build user, reads its reports (go test -json converted
// to JUnit), pushes the JUnit report as an OCI artifact and records the run.
// A run below its threshold is a *SuiteFailure, unless spec.RecordFailure:
// then it is only recorded as failed. A run that could not run (no host, a
// lost connection) is an error whatever spec says.
func (f *Farm) RunSuite(ctx context.Context, spec SuiteSpec) (SuiteResult, error) {
	secrets := secretsOf(BuildSpec{Source: spec.Source})
	res, err := f.runSuite(ctx, spec, secrets)
	return res, secrets.Error(err)
}

func (f *Farm) runSuite(ctx context.Context, spec SuiteSpec, secrets redact.Secrets) (SuiteResult, error) {
	if err := spec.Validate(); err != nil {
		return SuiteResult{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, runTimeout(spec.Timeout))
	defer cancel()
	ws, err := f.prepare(ctx, "suite", spec.Source, spec.PoolLabels, spec.GoVersion)
	if err != nil {
		return SuiteResult{}, err
	}
	defer ws.remove()
	hosts, version, src, work := ws.hosts, ws.version, ws.src, ws.dir
	res := SuiteResult{Project: spec.Project, Name: spec.Name, Service: spec.Service, Build: spec.Build,
		Commit: spec.Source.Commit, GoVersion: version, Status: StatusRunning, Threshold: spec.PassRate,
		MinTests: spec.MinTests, Started: time.Now().UTC()}
	match := suiteLabels(res)
	delete(match, labelStatus)
	if err := f.claim(ctx, match, func(n int) error { res.Number = n; return f.writeSuite(ctx, res, true) }); err != nil {
		return SuiteResult{}, err
	}
	out := filepath.Join(work, "out")
	if err := os.Mkdir(out, 0o700); err != nil {
		return res, err
	}
	script := spec.Script
	if script == "" {
		script = DefaultTestScript
	}
	capture := "0"
	if len(spec.Reports) == 0 {
		capture = "1"
	}
	host := Result{Number: res.Number}
	_, err = f.runOnAHost(ctx, job{mode: append([]string{"test", script, capture}, spec.Reports...), env: spec.Env},
		hosts, version, src, out, &host)
	res.Host, res.LogTail = host.Host, host.LogTail
	if err == nil {
		err = f.readReports(ctx, spec, out, &res)
	}
	res.Finished = time.Now().UTC()
	if err != nil {
		res.Status = StatusFailed
		res.Reasons = []string{err.Error()}
		var be *BuildError
		if errors.As(err, &be) {
			res.LogTail = be.LogTail
		}
	}
	res.LogTail = secrets.Text(res.LogTail)
	for i, r := range res.Reasons {
		res.Reasons[i] = secrets.Text(r)
	}
	// As a build's, the record is written whatever happened.
	rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer rcancel()
	if rerr := f.writeSuite(rctx, res, false); rerr != nil {
		return res, errors.Join(err, rerr)
	}
	if err == nil && res.Status == SuiteFailed && !spec.RecordFailure {
		err = &SuiteFailure{Result: res}
	}
	return res, err
}

// readReports reads a run's results in out (exit-status, stdout, reports/),
// judges them and pushes the report.
func (f *Farm) readReports(ctx context.Context, spec SuiteSpec, out string, res *SuiteResult) error {
	status, err := os.ReadFile(filepath.Join(out, "exit-status"))
	if err != nil {
		return fmt.Errorf("the host sent no exit status: %w", err)
	}
	if res.ExitStatus, err = strconv.Atoi(strings.TrimSpace(string(status))); err != nil {
		return fmt.Errorf("exit status %q: %w", status, err)
	}
	suites, err := collectReports(spec, out, res.Started)
	if err != nil {
		return err
	}
	res.Counts, res.Failures = summary(suites)
	res.PassRate = res.Counts.PassRate()
	res.Reasons = judge(res.Counts, spec.PassRate, spec.MinTests, res.ExitStatus)
	res.Status = SuitePassed
	if len(res.Reasons) > 0 {
		res.Status = SuiteFailed
	}
	data, err := marshalJUnit(suites)
	if err != nil {
		return err
	}
	file := filepath.Join(filepath.Dir(out), reportFile)
	if err := os.WriteFile(file, data, 0o600); err != nil {
		return err
	}
	sum := sha256.Sum256(data)
	res.ReportSHA256 = hex.EncodeToString(sum[:])
	art, err := f.Registry.PushArtifact(ctx, reportRepository(spec.Project, spec.Name), ReportArtifactType,
		[]oci.File{{Path: reportFile, Source: file}}, strconv.Itoa(res.Number))
	if err != nil {
		return err
	}
	res.ReportRef = art.Ref
	return nil
}

// reportRepository is where a suite's reports go, beside the project's images.
func reportRepository(project, name string) string { return project + "/tests/" + name }

// collectReports reads the reports of a run: the captured go test -json
// output, or the JUnit files the script wrote, merged in path order.
func collectReports(spec SuiteSpec, out string, started time.Time) (junit.Testsuites, error) {
	if len(spec.Reports) == 0 {
		fh, err := os.Open(filepath.Join(out, "stdout"))
		if err != nil {
			return junit.Testsuites{}, fmt.Errorf("the host sent no test output: %w", err)
		}
		defer func() { _ = fh.Close() }()
		return goTestJSON(fh, started)
	}
	var reports []junit.Testsuites
	dir := filepath.Join(out, "reports")
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		r, err := parseJUnit(data)
		if err != nil {
			rel, _ := filepath.Rel(dir, p)
			return &FieldError{Field: "reports", Err: fmt.Errorf("%s: %w", filepath.ToSlash(rel), err)}
		}
		reports = append(reports, r)
		return nil
	})
	if errors.Is(err, fs.ErrNotExist) {
		err = nil
	}
	return merge(reports...), err
}

// judge says why a run fails its gate; nothing when it passes: fewer tests
// ran than minTests (zero tests is a failure, not a pass), the pass rate is
// below passRate, or the script failed although its report shows no failure
// (a crash after the tests, a report that missed one).
func judge(c Counts, passRate float64, minTests, exitStatus int) []string {
	var reasons []string
	if c.Ran() < minTests {
		reasons = append(reasons, fmt.Sprintf("%d tests ran, fewer than min_tests %d", c.Ran(), minTests))
	}
	if c.Ran() > 0 && c.PassRate() < passRate {
		reasons = append(reasons, fmt.Sprintf("pass rate %s%% is below %s%% (%d of %d passed, %d failed, %d errors)",
			FormatRate(c.PassRate()), FormatRate(passRate), c.Passed, c.Ran(), c.Failed, c.Errors))
	}
	if exitStatus != 0 && c.Failed+c.Errors == 0 {
		reasons = append(reasons, fmt.Sprintf("the test script exited with status %d though its report shows no failure", exitStatus))
	}
	return reasons
}

// FormatRate is a percentage with at most two decimals: 100, 66.67.
func FormatRate(r float64) string {
	return strconv.FormatFloat(float64(int64(r*100+0.5))/100, 'f', -1, 64)
}

func suiteRecordName(r SuiteResult) string {
	return fmt.Sprintf("kiln-test-%s.%s-%d", r.Project, r.Name, r.Number)
}

func suiteLabels(r SuiteResult) map[string]string {
	l := map[string]string{label.Kind: kindTestRun, label.Project: r.Project, labelSuite: r.Name, labelStatus: r.Status}
	if r.Service != "" {
		l[label.Service] = r.Service
	}
	return l
}

func (f *Farm) writeSuite(ctx context.Context, r SuiteResult, create bool) error {
	data, err := json.Marshal(r)
	if err != nil {
		return err
	}
	rec := record{Name: suiteRecordName(r), Labels: suiteLabels(r), Data: data}
	if create {
		return f.Records.Create(ctx, rec)
	}
	return f.Records.Put(ctx, rec)
}

// decodeSuite reads a test run's record; one whose name, labels and content
// disagree is not a record Kiln wrote.
func decodeSuite(rec record) (SuiteResult, error) {
	var r SuiteResult
	if err := json.Unmarshal(rec.Data, &r); err != nil {
		return SuiteResult{}, fmt.Errorf("test run record %s: %w", rec.Name, err)
	}
	if rec.Labels[label.Kind] != kindTestRun || rec.Name != suiteRecordName(r) ||
		rec.Labels[label.Project] != r.Project || rec.Labels[labelSuite] != r.Name {
		return SuiteResult{}, fmt.Errorf("record %s is not the record of test run %s", rec.Name, suiteRecordName(r))
	}
	return r, nil
}

// ReadSuiteRun reads the record of run n of a project's suite.
func (f *Farm) ReadSuiteRun(ctx context.Context, project, name string, n int) (SuiteResult, error) {
	rec, err := f.Records.Get(ctx, suiteRecordName(SuiteResult{Project: project, Name: name, Number: n}))
	if err != nil {
		return SuiteResult{}, err
	}
	return decodeSuite(rec)
}

// SuiteHistory lists a suite's runs, oldest first, from the Kiln records of
// the control namespace; warnings name the records it left out.
func (f *Farm) SuiteHistory(ctx context.Context, project, name string) ([]SuiteResult, []string, error) {
	recs, err := f.Records.List(ctx, map[string]string{label.Kind: kindTestRun, label.Project: project, labelSuite: name})
	if err != nil {
		return nil, nil, err
	}
	var runs []SuiteResult
	var warnings []string
	for _, rec := range recs {
		r, err := decodeSuite(rec)
		if err != nil {
			warnings = append(warnings, err.Error()+": left out")
			continue
		}
		runs = append(runs, r)
	}
	slices.SortFunc(runs, func(a, b SuiteResult) int { return a.Number - b.Number })
	return runs, warnings, nil
}
