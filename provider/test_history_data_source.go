package provider

import (
	"context"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/kilnhq/terraform-provider-kiln/internal/delivery"
)

var _ datasource.DataSourceWithConfigure = (*testHistoryDataSource)(nil)

func newTestHistoryDataSource() datasource.DataSource { return &testHistoryDataSource{} }

type testHistoryDataSource struct{ clients *clients }

type testHistoryModel struct {
	Project          types.String   `tfsdk:"project"`
	Name             types.String   `tfsdk:"name"`
	ControlNamespace types.String   `tfsdk:"control_namespace"`
	ID               types.String   `tfsdk:"id"`
	Runs             []testRunModel `tfsdk:"runs"`
}

type testRunModel struct {
	Number       types.Int64   `tfsdk:"number"`
	Status       types.String  `tfsdk:"status"`
	Commit       types.String  `tfsdk:"commit"`
	Build        types.String  `tfsdk:"build"`
	Total        types.Int64   `tfsdk:"total"`
	Passed       types.Int64   `tfsdk:"passed"`
	Failed       types.Int64   `tfsdk:"failed"`
	Skipped      types.Int64   `tfsdk:"skipped"`
	Errors       types.Int64   `tfsdk:"errors"`
	PassRate     types.Float64 `tfsdk:"pass_rate"`
	Threshold    types.Float64 `tfsdk:"threshold"`
	FailedTests  types.List    `tfsdk:"failed_tests"`
	ReportRef    types.String  `tfsdk:"report_ref"`
	ReportSHA256 types.String  `tfsdk:"report_sha256"`
	Host         types.String  `tfsdk:"host"`
	Started      types.String  `tfsdk:"started"`
	Finished     types.String  `tfsdk:"finished"`
}

func (d *testHistoryDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_test_history"
}

func (d *testHistoryDataSource) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	str := func(description string) schema.StringAttribute {
		return schema.StringAttribute{MarkdownDescription: description, Computed: true}
	}
	num := func(description string) schema.Int64Attribute {
		return schema.Int64Attribute{MarkdownDescription: description, Computed: true}
	}
	resp.Schema = schema.Schema{
		MarkdownDescription: "The past runs of a project's test suite (`kiln_test`), oldest first, read from the run " +
			"records Kiln wrote in the control namespace; a record whose name and content disagree is left out with a " +
			"warning. Requires the provider's `kubernetes` block.",
		Attributes: map[string]schema.Attribute{
			"project": schema.StringAttribute{
				MarkdownDescription: "Project name.",
				Required:            true, Validators: dnsLabelValidators,
			},
			"name": schema.StringAttribute{
				MarkdownDescription: "The suite's name (`kiln_test.name`).",
				Required:            true, Validators: dnsLabelValidators,
			},
			"control_namespace": schema.StringAttribute{
				MarkdownDescription: controlNamespaceDescription,
				Optional:            true, Validators: dnsLabelValidators,
			},
			"id": str("`<project>.<name>`."),
			"runs": schema.ListNestedAttribute{
				MarkdownDescription: "Runs, oldest first; none when the suite never ran.",
				Computed:            true,
				NestedObject: schema.NestedAttributeObject{Attributes: map[string]schema.Attribute{
					"number":  num("Run number."),
					"status":  str("`passed`, `failed`, or `running` (a run under way, or one whose provider died)."),
					"commit":  str("The commit tested (empty for a directory source)."),
					"build":   str("The `kiln_build` id whose commit was tested, if the suite named one."),
					"total":   num("Test cases in the report."),
					"passed":  num("Test cases that passed."),
					"failed":  num("Test cases that failed."),
					"skipped": num("Test cases that were skipped."),
					"errors":  num("Test cases in error."),
					"pass_rate": schema.Float64Attribute{
						MarkdownDescription: "The run's pass rate in percent (passed of the tests that ran).",
						Computed:            true,
					},
					"threshold": schema.Float64Attribute{
						MarkdownDescription: "The suite's `pass_rate` threshold at that run.",
						Computed:            true,
					},
					"failed_tests": schema.ListAttribute{
						MarkdownDescription: "The first failed or errored tests: `name` and `message`.",
						ElementType:         failedTestType, Computed: true,
					},
					"report_ref":    str("The JUnit report in the registry (`…@sha256:…`); empty when the run pushed none."),
					"report_sha256": str("The sha256 (hex) of the report's `junit.xml`."),
					"host":          str("The pool host the suite ran on."),
					"started":       str("Start time (RFC 3339)."),
					"finished":      str("End time (RFC 3339); empty while running."),
				}},
			},
		},
	}
}

func (d *testHistoryDataSource) Configure(_ context.Context, req datasource.ConfigureRequest, resp *datasource.ConfigureResponse) {
	d.clients = configuredClients(req.ProviderData, &resp.Diagnostics)
}

func (d *testHistoryDataSource) Read(ctx context.Context, req datasource.ReadRequest, resp *datasource.ReadResponse) {
	var m testHistoryModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	control := m.ControlNamespace.ValueString()
	if control == "" {
		control = delivery.DefaultControlNamespace
	}
	farm := buildFarm(d.clients, control, false, &resp.Diagnostics)
	if resp.Diagnostics.HasError() {
		return
	}
	runs, warnings, err := farm.SuiteHistory(ctx, m.Project.ValueString(), m.Name.ValueString())
	addWarnings(&resp.Diagnostics, warnings)
	if err != nil {
		resp.Diagnostics.AddError("Could not read the test suite's history", err.Error())
		return
	}
	m.ID = types.StringValue(m.Project.ValueString() + "." + m.Name.ValueString())
	m.Runs = []testRunModel{}
	for _, r := range runs {
		finished := ""
		if !r.Finished.IsZero() {
			finished = r.Finished.Format(time.RFC3339)
		}
		m.Runs = append(m.Runs, testRunModel{
			Number: types.Int64Value(int64(r.Number)), Status: types.StringValue(r.Status),
			Commit: types.StringValue(r.Commit), Build: types.StringValue(r.Build),
			Total: types.Int64Value(int64(r.Total)), Passed: types.Int64Value(int64(r.Passed)),
			Failed: types.Int64Value(int64(r.Failed)), Skipped: types.Int64Value(int64(r.Skipped)),
			Errors: types.Int64Value(int64(r.Errors)), PassRate: types.Float64Value(r.PassRate),
			Threshold: types.Float64Value(r.Threshold), FailedTests: failedTestsValue(r.Failures),
			ReportRef: types.StringValue(r.ReportRef), ReportSHA256: types.StringValue(r.ReportSHA256),
			Host:    types.StringValue(r.Host),
			Started: types.StringValue(r.Started.Format(time.RFC3339)), Finished: types.StringValue(finished),
		})
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}
