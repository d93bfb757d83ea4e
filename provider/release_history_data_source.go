package provider

import (
	"context"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/types"
)

var _ datasource.DataSourceWithConfigure = (*releaseHistoryDataSource)(nil)

func newReleaseHistoryDataSource() datasource.DataSource { return &releaseHistoryDataSource{} }

type releaseHistoryDataSource struct{ clients *clients }

type releaseHistoryModel struct {
	Project          types.String           `tfsdk:"project"`
	Environment      types.String           `tfsdk:"environment"`
	ControlNamespace types.String           `tfsdk:"control_namespace"`
	ID               types.String           `tfsdk:"id"`
	Revisions        []releaseRevisionModel `tfsdk:"revisions"`
}

type releaseRevisionModel struct {
	Revision    types.Int64  `tfsdk:"revision"`
	Version     types.String `tfsdk:"version"`
	FromVersion types.Bool   `tfsdk:"from_version"`
	Status      types.String `tfsdk:"status"`
	Description types.String `tfsdk:"description"`
	RollbackOf  types.Int64  `tfsdk:"rollback_of"`
	Images      types.Map    `tfsdk:"images"`
	Started     types.String `tfsdk:"started"`
	Finished    types.String `tfsdk:"finished"`
}

func (d *releaseHistoryDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_release_history"
}

func (d *releaseHistoryDataSource) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "The release history of a project environment, read from the revision Secrets in the control namespace " +
			"`kiln_release` writes, oldest first. Requires the provider's `kubernetes` block.",
		Attributes: map[string]schema.Attribute{
			"project": schema.StringAttribute{
				MarkdownDescription: "Project name.",
				Required:            true,
				Validators:          dnsLabelValidators,
			},
			"environment": schema.StringAttribute{
				MarkdownDescription: "Environment name.",
				Required:            true,
				Validators:          dnsLabelValidators,
			},
			"control_namespace": schema.StringAttribute{
				MarkdownDescription: controlNamespaceDescription,
				Optional:            true,
				Validators:          dnsLabelValidators,
			},
			"id": schema.StringAttribute{
				MarkdownDescription: "`<project>/<environment>`.",
				Computed:            true,
			},
			"revisions": schema.ListNestedAttribute{
				MarkdownDescription: "Revisions, oldest first.",
				Computed:            true,
				NestedObject: schema.NestedAttributeObject{
					Attributes: map[string]schema.Attribute{
						"revision": schema.Int64Attribute{MarkdownDescription: "Revision number.", Computed: true},
						"version":  schema.StringAttribute{MarkdownDescription: "Version name.", Computed: true},
						"from_version": schema.BoolAttribute{
							MarkdownDescription: "Whether the revision deployed the `kiln_version` named `version` (its images, " +
								"in its startup order) rather than images given in the release's `services`.",
							Computed: true,
						},
						"status":      schema.StringAttribute{MarkdownDescription: "`deployed`, `superseded` or `failed`.", Computed: true},
						"description": schema.StringAttribute{MarkdownDescription: "What happened: the release, a rollback, or the error.", Computed: true},
						"rollback_of": schema.Int64Attribute{MarkdownDescription: "For a rollback, the revision it restored; else 0.", Computed: true},
						"images": schema.MapAttribute{
							MarkdownDescription: "Images by service.",
							ElementType:         types.StringType,
							Computed:            true,
						},
						"started":  schema.StringAttribute{MarkdownDescription: "Start time (RFC 3339).", Computed: true},
						"finished": schema.StringAttribute{MarkdownDescription: "End time (RFC 3339).", Computed: true},
					},
				},
			},
		},
	}
}

func (d *releaseHistoryDataSource) Configure(_ context.Context, req datasource.ConfigureRequest, resp *datasource.ConfigureResponse) {
	d.clients = configuredClients(req.ProviderData, &resp.Diagnostics)
}

func (d *releaseHistoryDataSource) Read(ctx context.Context, req datasource.ReadRequest, resp *datasource.ReadResponse) {
	var m releaseHistoryModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	engine := requireEngine(d.clients, kubernetesBlock, &resp.Diagnostics)
	if resp.Diagnostics.HasError() {
		return
	}
	records, warnings, err := engine.History(ctx, m.ControlNamespace.ValueString(), m.Project.ValueString(), m.Environment.ValueString())
	addWarnings(&resp.Diagnostics, warnings)
	if err != nil {
		resp.Diagnostics.AddError("Could not read release history", err.Error())
		return
	}
	m.ID = types.StringValue(m.Project.ValueString() + "/" + m.Environment.ValueString())
	m.Revisions = []releaseRevisionModel{}
	for _, r := range records {
		images := optionalStringMapValue(r.Images)
		if images.IsNull() {
			images = types.MapValueMust(types.StringType, nil)
		}
		m.Revisions = append(m.Revisions, releaseRevisionModel{
			Revision:    types.Int64Value(int64(r.Revision)),
			Version:     types.StringValue(r.Version),
			FromVersion: types.BoolValue(r.FromVersion),
			Status:      types.StringValue(r.Status),
			Description: types.StringValue(r.Description),
			RollbackOf:  types.Int64Value(int64(r.RollbackOf)),
			Images:      images,
			Started:     types.StringValue(r.Started.Format(time.RFC3339)),
			Finished:    types.StringValue(r.Finished.Format(time.RFC3339)),
		})
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}
