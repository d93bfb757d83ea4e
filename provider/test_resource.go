package provider

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-validators/float64validator"
	"github.com/hashicorp/terraform-plugin-framework-validators/int64validator"
	"github.com/hashicorp/terraform-plugin-framework-validators/listvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/mapvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/float64default"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/float64planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/int64default"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/int64planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/listplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringdefault"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/kilnhq/terraform-provider-kiln/internal/buildfarm"
)

var (
	_ resource.ResourceWithConfigure  = (*testResource)(nil)
	_ resource.ResourceWithModifyPlan = (*testResource)(nil)
)

func newTestResource() resource.Resource { return &testResource{} }

type testResource struct {
	clients *clients
}

type testModel struct {
	ID               types.String      `tfsdk:"id"`
	Project          types.String      `tfsdk:"project"`
	Name             types.String      `tfsdk:"name"`
	Service          types.String      `tfsdk:"service"`
	ControlNamespace types.String      `tfsdk:"control_namespace"`
	PoolLabels       types.Map         `tfsdk:"pool_labels"`
	GoVersion        types.String      `tfsdk:"go_version"`
	Source           *buildSourceModel `tfsdk:"source"`
	Build            types.String      `tfsdk:"build"`
	Script           types.String      `tfsdk:"script"`
	Reports          types.List        `tfsdk:"reports"`
	PassRate         types.Float64     `tfsdk:"pass_rate"`
	MinTests         types.Int64       `tfsdk:"min_tests"`
	OnFailure        types.String      `tfsdk:"on_failure"`
	Env              types.Map         `tfsdk:"env"`
	Timeout          goDuration        `tfsdk:"timeout"`

	Commit           types.String  `tfsdk:"commit"`
	SourceHash       types.String  `tfsdk:"source_hash"`
	RunNumber        types.Int64   `tfsdk:"run_number"`
	Status           types.String  `tfsdk:"status"`
	Total            types.Int64   `tfsdk:"total"`
	Passed           types.Int64   `tfsdk:"passed"`
	Failed           types.Int64   `tfsdk:"failed"`
	Skipped          types.Int64   `tfsdk:"skipped"`
	Errors           types.Int64   `tfsdk:"errors"`
	MeasuredPassRate types.Float64 `tfsdk:"measured_pass_rate"`
	FailedTests      types.List    `tfsdk:"failed_tests"`
	ExitStatus       types.Int64   `tfsdk:"exit_status"`
	ReportRef        types.String  `tfsdk:"report_ref"`
	ReportSHA256     types.String  `tfsdk:"report_sha256"`
	Host             types.String  `tfsdk:"host"`
	GoVersionExact   types.String  `tfsdk:"go_version_exact"`
	DurationSeconds  types.Int64   `tfsdk:"duration_seconds"`
	LogTail          types.String  `tfsdk:"log_tail"`
}

var failedTestType = types.ObjectType{AttrTypes: map[string]attr.Type{"name": types.StringType, "message": types.StringType}}

// The values of on_failure.
const (
	onFailureFail   = "fail"
	onFailureRecord = "record"
)

func (r *testResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_test"
}

func (r *testResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	computedString := func(description string) schema.StringAttribute {
		return schema.StringAttribute{MarkdownDescription: description, Computed: true, PlanModifiers: keepString}
	}
	computedInt := func(description string) schema.Int64Attribute {
		return schema.Int64Attribute{MarkdownDescription: description, Computed: true,
			PlanModifiers: []planmodifier.Int64{int64planmodifier.UseStateForUnknown()}}
	}
	resp.Schema = schema.Schema{
		MarkdownDescription: "One run of a project's test suite, as a gate: the tests run on a `kiln_build_pool` host " +
			"as the pool's build user (the same hosts, slots, source streaming and toolchains as `kiln_build`), their " +
			"reports are read as JUnit, and a run below `pass_rate` fails the apply, naming the failed tests, so whatever " +
			"depends on the suite (a `kiln_release`) does not happen.\n\n" +
			"The default `script`, `go test -json ./...`, has its output converted to JUnit with go-junit-report (a " +
			"package that does not compile is a test in error); a custom `script` writes JUnit XML files matching " +
			"`reports`. The pass rate counts the tests that ran (skipped ones do not); fewer than `min_tests` tests " +
			"(default 1) fail the suite, so a suite that ran nothing never passes. The merged JUnit report is pushed to " +
			"the provider's `registry` as an OCI artifact (`<project>/tests/<name>`, tagged with the run number), and the " +
			"run is recorded in the control namespace (a Secret `kiln-test-<project>.<name>-<n>`: numbers, commit, " +
			"failed tests, report, host, times), where `kiln_test_history` reads it.\n\n" +
			"A git `ref` is resolved to `commit` at plan time, or `build = kiln_build.x.id` tests exactly the commit " +
			"that build used: a new commit shows in `terraform plan` as a new run. Every input forces a new run. Refresh " +
			"checks the run's record is still there; destroying the resource forgets the run (its record and report " +
			"stay). A test run is not importable: it is an event, and its inputs cannot be read back from its record. " +
			"Requires the provider's `kubernetes` and `registry` blocks.",
		Attributes: map[string]schema.Attribute{
			"id": computedString("`<project>.<name>/<run_number>`."),
			"project": schema.StringAttribute{
				MarkdownDescription: "The `kiln_project` the suite belongs to; its `build_pool_labels` are the default `pool_labels`.",
				Required:            true, PlanModifiers: replaceString, Validators: dnsLabelValidators,
			},
			"name": schema.StringAttribute{
				MarkdownDescription: "The suite's name, unique in the project: runs are numbered and kept per suite.",
				Required:            true, PlanModifiers: replaceString, Validators: dnsLabelValidators,
			},
			"service": schema.StringAttribute{
				MarkdownDescription: "The service of `project` the suite tests, if any (recorded with each run).",
				Optional:            true, PlanModifiers: replaceString, Validators: dnsLabelValidators,
			},
			"control_namespace": controlNamespaceAttribute(),
			"pool_labels": schema.MapAttribute{
				MarkdownDescription: "Labels of the pools the suite may run on. Defaults to the project's `build_pool_labels`.",
				ElementType:         types.StringType, Optional: true, PlanModifiers: replaceMap,
			},
			"go_version": schema.StringAttribute{
				MarkdownDescription: "The Go version: `1.24` (its newest patch any matching host has) or exact (`1.24.4`). " +
					"A plan fails when no matching pool host has it.",
				Required: true, PlanModifiers: replaceString,
			},
			"build": schema.StringAttribute{
				MarkdownDescription: "A `kiln_build`'s `id`: test exactly the commit that build used, read from its record " +
					"in the control namespace. The `source.git` block then gives the repository (`url` and credentials) " +
					"and no `ref`.",
				Optional: true, PlanModifiers: replaceString,
				Validators: []validator.String{stringvalidator.ConflictsWith(path.MatchRoot("source").AtName("path")),
					stringvalidator.ConflictsWith(path.MatchRoot("source").AtName("git").AtName("ref"))},
			},
			"script": schema.StringAttribute{
				MarkdownDescription: "A bash script run in the source tree (with `-euo pipefail`, the toolchain first on " +
					"`PATH`). Defaults to `" + buildfarm.DefaultTestScript + "`, whose standard output is converted to " +
					"JUnit; with `reports`, the script writes JUnit XML files instead and its output is the log. Its exit " +
					"status alone does not decide: a script that fails with a report that shows no failure fails the suite.",
				Optional: true, PlanModifiers: replaceString,
				Validators: []validator.String{stringvalidator.LengthAtLeast(1)},
			},
			"reports": schema.ListAttribute{
				MarkdownDescription: "Glob patterns, relative to the source tree, of the JUnit XML files `script` writes " +
					"(`test-report/*.xml`; `**` crosses directories). A pattern that matches nothing is no error; no tests is.",
				ElementType: types.StringType, Optional: true, PlanModifiers: replaceList,
				Validators: []validator.List{listvalidator.SizeAtLeast(1), listvalidator.AlsoRequires(path.MatchRoot("script"))},
			},
			"pass_rate": schema.Float64Attribute{
				MarkdownDescription: "The threshold: the percentage of the tests that ran which must pass. Defaults to `100`.",
				Optional:            true, Computed: true, Default: float64default.StaticFloat64(100),
				PlanModifiers: []planmodifier.Float64{float64planmodifier.RequiresReplace()},
				Validators:    []validator.Float64{float64validator.Between(0, 100)},
			},
			"min_tests": schema.Int64Attribute{
				MarkdownDescription: "The fewest tests that must run (skipped ones do not count). Defaults to `1`: zero tests is a failure, not a pass.",
				Optional:            true, Computed: true, Default: int64default.StaticInt64(1),
				PlanModifiers: []planmodifier.Int64{int64planmodifier.RequiresReplace()},
				Validators:    []validator.Int64{int64validator.AtLeast(0)},
			},
			"on_failure": schema.StringAttribute{
				MarkdownDescription: "What a run below the threshold does: `fail` (the default) fails the apply naming the " +
					"failed tests; `record` records it and passes its numbers on (`status` is `failed`). A run that could " +
					"not run at all (no host, a lost connection) fails the apply either way.",
				Optional: true, Computed: true, Default: stringdefault.StaticString(onFailureFail),
				PlanModifiers: replaceString,
				Validators:    []validator.String{stringvalidator.OneOf(onFailureFail, onFailureRecord)},
			},
			"env": schema.MapAttribute{
				MarkdownDescription: "Environment of the script (`GOFLAGS`, `CGO_ENABLED`, ...), over the toolchain's `go.env`.",
				ElementType:         types.StringType, Optional: true, PlanModifiers: replaceMap,
				Validators: []validator.Map{mapvalidator.SizeAtLeast(1)},
			},
			"timeout": func() schema.StringAttribute {
				a := durationAttribute("How long the run may take, waiting for a slot included; then its process group is killed.", "30m")
				a.PlanModifiers = replaceString
				return a
			}(),
			"commit":      computedString("The commit tested: `source.git.ref` resolved at plan time, or the `build`'s."),
			"source_hash": computedString("For a `source.path`: the content hash of the directory, taken at plan time (a change runs again)."),
			"run_number":  computedInt("The run's number in the suite's history."),
			"status":      computedString("`passed`, or `failed` (kept only with `on_failure = \"record\"`)."),
			"total":       computedInt("Test cases in the report."),
			"passed":      computedInt("Test cases that passed."),
			"failed":      computedInt("Test cases that failed."),
			"skipped":     computedInt("Test cases that were skipped."),
			"errors":      computedInt("Test cases in error: no verdict (a package that did not compile, a test binary that died)."),
			"measured_pass_rate": schema.Float64Attribute{
				MarkdownDescription: "The run's pass rate in percent: `passed` of the tests that ran (`total - skipped`); 0 when none ran.",
				Computed:            true, PlanModifiers: []planmodifier.Float64{float64planmodifier.UseStateForUnknown()},
			},
			"failed_tests": schema.ListAttribute{
				MarkdownDescription: "The first failed or errored tests (up to 10), in report order: `name` " +
					"(`<classname>.<name>`, for Go `<package>.<test>`) and `message` (the failure's own lines).",
				ElementType: failedTestType, Computed: true,
				PlanModifiers: []planmodifier.List{listplanmodifier.UseStateForUnknown()},
			},
			"exit_status":      computedInt("The script's exit status."),
			"report_ref":       computedString("The merged JUnit report in the registry: `<registry>/<project>/tests/<name>@sha256:…` (an OCI artifact holding `junit.xml`)."),
			"report_sha256":    computedString("The sha256 (hex) of `junit.xml`."),
			"host":             computedString("The pool host the suite ran on (`host:port`)."),
			"go_version_exact": computedString("The exact Go version the suite used."),
			"duration_seconds": computedInt("How long the run took, waiting for a slot and pushing the report included."),
			"log_tail":         computedString("The last lines of the run's log."),
		},
		Blocks: map[string]schema.Block{"source": sourceBlock()},
	}
}

func (r *testResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	r.clients = configuredClients(req.ProviderData, &resp.Diagnostics)
}

// spec converts the model; password is the write-only password when set.
func (m testModel) spec(password types.String) (buildfarm.SuiteSpec, bool) {
	s := buildfarm.SuiteSpec{
		Project: m.Project.ValueString(), Name: m.Name.ValueString(), Service: m.Service.ValueString(),
		PoolLabels: stringMap(m.PoolLabels), GoVersion: m.GoVersion.ValueString(), Build: m.Build.ValueString(),
		Script: m.Script.ValueString(), Reports: listStrings(m.Reports), PassRate: m.PassRate.ValueFloat64(),
		MinTests: int(m.MinTests.ValueInt64()), RecordFailure: m.OnFailure.ValueString() == onFailureRecord,
		Env: stringMap(m.Env),
	}
	if d, diags := m.Timeout.ValueGoDuration(); !diags.HasError() {
		s.Timeout = d
	}
	if m.Source == nil {
		return s, false
	}
	var known bool
	s.Source, known = m.Source.source(password, m.Commit)
	for _, v := range []attr.Value{m.Project, m.Name, m.Service, m.PoolLabels, m.GoVersion, m.Build, m.Script, m.Reports,
		m.PassRate, m.MinTests, m.OnFailure, m.Env} {
		known = known && !v.IsUnknown()
	}
	return s, known
}

// ModifyPlan resolves the ref (or the build) to a commit, hashes a path
// source, and checks the project, the service and that some pool host has
// the labels and the Go version: a new commit is a new run.
func (r *testResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	if req.Plan.Raw.IsNull() {
		return
	}
	var plan testModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	var password types.String
	resp.Diagnostics.Append(req.Config.GetAttribute(ctx, path.Root("source").AtName("git").AtName("password_wo"), &password)...)
	if resp.Diagnostics.HasError() {
		return
	}
	spec, known := plan.spec(password)
	farm := buildFarm(r.clients, plan.ControlNamespace.ValueString(), true, &resp.Diagnostics)
	if !known || farm == nil {
		return
	}
	planned, warnings, err := farm.PlanSuite(ctx, &spec, false)
	if err != nil {
		addBuildError(&resp.Diagnostics, "Invalid test suite", err)
		return
	}
	for _, w := range warnings {
		resp.Diagnostics.AddWarning("Test suite checked in part", w)
	}
	if planResolvedSource(ctx, req, resp, planned) {
		planUnknown(ctx, resp, types.StringUnknown(), "id", "status", "report_ref", "report_sha256", "host", "go_version_exact", "log_tail")
		planUnknown(ctx, resp, types.Int64Unknown(), "run_number", "total", "passed", "failed", "skipped", "errors", "exit_status", "duration_seconds")
		resp.Diagnostics.Append(resp.Plan.SetAttribute(ctx, path.Root("measured_pass_rate"), types.Float64Unknown())...)
		resp.Diagnostics.Append(resp.Plan.SetAttribute(ctx, path.Root("failed_tests"), types.ListUnknown(failedTestType))...)
	}
}

func (r *testResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan testModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	var password types.String
	resp.Diagnostics.Append(req.Config.GetAttribute(ctx, path.Root("source").AtName("git").AtName("password_wo"), &password)...)
	farm := buildFarm(r.clients, plan.ControlNamespace.ValueString(), true, &resp.Diagnostics)
	if resp.Diagnostics.HasError() {
		return
	}
	spec, _ := plan.spec(password)
	// The suite tests the commit the plan showed; a plan that could not
	// know it (a build made in this apply) resolves it now.
	commit := spec.Source.Commit
	planned, _, err := farm.PlanSuite(ctx, &spec, true)
	if err != nil {
		addBuildError(&resp.Diagnostics, "Invalid test suite", err)
		return
	}
	if commit != "" && spec.Source.Git != nil {
		spec.Source.Commit = commit
	}
	if plan.Commit.IsUnknown() {
		plan.Commit = optionalString(spec.Source.Commit)
	}
	if plan.SourceHash.IsUnknown() {
		plan.SourceHash = optionalString(planned.SourceHash)
	}
	res, err := farm.RunSuite(ctx, spec)
	var failure *buildfarm.SuiteFailure
	switch {
	case errors.As(err, &failure):
		resp.Diagnostics.AddError(fmt.Sprintf("Test suite %s failed", spec.Name), err.Error())
		return
	case err != nil:
		addBuildError(&resp.Diagnostics, fmt.Sprintf("Test suite %s could not run", spec.Name), err)
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, withSuiteResult(plan, res))...)
}

// withSuiteResult is m with a run's outputs.
func withSuiteResult(m testModel, res buildfarm.SuiteResult) testModel {
	m.ID = types.StringValue(res.Project + "." + res.Name + "/" + strconv.Itoa(res.Number))
	m.RunNumber = types.Int64Value(int64(res.Number))
	m.Status = types.StringValue(res.Status)
	m.Total, m.Passed, m.Failed = types.Int64Value(int64(res.Total)), types.Int64Value(int64(res.Passed)), types.Int64Value(int64(res.Failed))
	m.Skipped, m.Errors = types.Int64Value(int64(res.Skipped)), types.Int64Value(int64(res.Errors))
	m.MeasuredPassRate = types.Float64Value(res.PassRate)
	m.FailedTests = failedTestsValue(res.Failures)
	m.ExitStatus = types.Int64Value(int64(res.ExitStatus))
	m.ReportRef, m.ReportSHA256 = types.StringValue(res.ReportRef), types.StringValue(res.ReportSHA256)
	m.Host, m.GoVersionExact = types.StringValue(res.Host), types.StringValue(res.GoVersion)
	m.DurationSeconds = types.Int64Value(int64(res.Finished.Sub(res.Started).Round(time.Second) / time.Second))
	m.LogTail = types.StringValue(res.LogTail)
	return m
}

func failedTestsValue(failures []buildfarm.FailedTest) types.List {
	elems := make([]attr.Value, 0, len(failures))
	for _, f := range failures {
		elems = append(elems, types.ObjectValueMust(failedTestType.AttrTypes, map[string]attr.Value{
			"name": types.StringValue(f.Name), "message": types.StringValue(f.Message)}))
	}
	return types.ListValueMust(failedTestType, elems)
}

// Update has nothing to change: every input is a new run.
func (r *testResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan testModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(resp.State.Set(ctx, plan)...)
}

// Read checks the run's record is still in the control namespace: gone, the
// run is gone, and the next plan runs the suite again.
func (r *testResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var state testModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	farm := buildFarm(r.clients, state.ControlNamespace.ValueString(), false, &resp.Diagnostics)
	if resp.Diagnostics.HasError() {
		return
	}
	_, err := farm.ReadSuiteRun(ctx, state.Project.ValueString(), state.Name.ValueString(), int(state.RunNumber.ValueInt64()))
	switch {
	case errors.Is(err, buildfarm.ErrNotFound):
		resp.State.RemoveResource(ctx)
	case err != nil:
		resp.Diagnostics.AddError("Could not read the test run's record", err.Error())
	}
}

// Delete forgets the run: its record and its report stay.
func (r *testResource) Delete(context.Context, resource.DeleteRequest, *resource.DeleteResponse) {}
