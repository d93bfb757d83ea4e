package provider

import (
	"context"

	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/types"
)

var _ datasource.DataSourceWithConfigure = (*environmentStatusDataSource)(nil)

func newEnvironmentStatusDataSource() datasource.DataSource { return &environmentStatusDataSource{} }

type environmentStatusDataSource struct{ clients *clients }

type environmentStatusModel struct {
	Project          types.String          `tfsdk:"project"`
	Environment      types.String          `tfsdk:"environment"`
	ControlNamespace types.String          `tfsdk:"control_namespace"`
	ID               types.String          `tfsdk:"id"`
	Namespace        types.String          `tfsdk:"namespace"`
	Workloads        []workloadStatusModel `tfsdk:"workloads"`
}

type workloadStatusModel struct {
	Service   types.String `tfsdk:"service"`
	Kind      types.String `tfsdk:"kind"`
	Name      types.String `tfsdk:"name"`
	Images    types.List   `tfsdk:"images"`
	RolledOut types.Bool   `tfsdk:"rolled_out"`
	Message   types.String `tfsdk:"message"`
}

func (d *environmentStatusDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_environment_status"
}

func (d *environmentStatusDataSource) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "The live state of an environment's workloads (Deployments, StatefulSets and " +
			"DaemonSets Kiln applied): their images as running now and whether each has rolled out. " +
			"Requires the provider's `kubernetes` block.",
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
			"namespace": schema.StringAttribute{
				MarkdownDescription: "The environment's namespace.",
				Computed:            true,
			},
			"workloads": schema.ListNestedAttribute{
				MarkdownDescription: "Workloads by service, then name.",
				Computed:            true,
				NestedObject: schema.NestedAttributeObject{
					Attributes: map[string]schema.Attribute{
						"service": schema.StringAttribute{MarkdownDescription: "Service name.", Computed: true},
						"kind":    schema.StringAttribute{MarkdownDescription: "`Deployment`, `StatefulSet` or `DaemonSet`.", Computed: true},
						"name":    schema.StringAttribute{MarkdownDescription: "Object name.", Computed: true},
						"images": schema.ListAttribute{
							MarkdownDescription: "Images of the pod template's containers (init containers first).",
							ElementType:         types.StringType,
							Computed:            true,
						},
						"rolled_out": schema.BoolAttribute{MarkdownDescription: "Whether the current spec has rolled out.", Computed: true},
						"message":    schema.StringAttribute{MarkdownDescription: "Why it has not rolled out yet; empty when it has.", Computed: true},
					},
				},
			},
		},
	}
}

func (d *environmentStatusDataSource) Configure(_ context.Context, req datasource.ConfigureRequest, resp *datasource.ConfigureResponse) {
	d.clients = configuredClients(req.ProviderData, &resp.Diagnostics)
}

func (d *environmentStatusDataSource) Read(ctx context.Context, req datasource.ReadRequest, resp *datasource.ReadResponse) {
	var m environmentStatusModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	engine := requireEngine(d.clients, kubernetesBlock, &resp.Diagnostics)
	if resp.Diagnostics.HasError() {
		return
	}
	env, workloads, err := engine.Status(ctx, m.ControlNamespace.ValueString(), m.Project.ValueString(), m.Environment.ValueString())
	if err != nil {
		resp.Diagnostics.AddError("Could not read environment status", err.Error())
		return
	}
	m.ID = types.StringValue(m.Project.ValueString() + "/" + m.Environment.ValueString())
	m.Namespace = types.StringValue(env.Namespace)
	m.Workloads = []workloadStatusModel{}
	for _, w := range workloads {
		m.Workloads = append(m.Workloads, workloadStatusModel{
			Service: types.StringValue(w.Service), Kind: types.StringValue(w.Kind), Name: types.StringValue(w.Name),
			Images: stringList(w.Images), RolledOut: types.BoolValue(w.RolledOut), Message: types.StringValue(w.Message),
		})
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}
