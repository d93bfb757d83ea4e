package provider

import (
	"context"

	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/kilnhq/terraform-provider-kiln/internal/vsphere"
)

// vsphereDataSource is what the vSphere data sources share: the engine, and the
// check that the provider has a vsphere block.
type vsphereDataSource struct {
	clients *clients
}

func (d *vsphereDataSource) Configure(_ context.Context, req datasource.ConfigureRequest, resp *datasource.ConfigureResponse) {
	d.clients = configuredClients(req.ProviderData, &resp.Diagnostics)
}

func (d *vsphereDataSource) engine(diags *diag.Diagnostics) *vsphere.Client {
	return requireEngine(d.clients, vsphereBlock, diags)
}

func datacenterAttribute() schema.StringAttribute {
	return schema.StringAttribute{
		MarkdownDescription: "Name of the datacenter to look in. Defaults to the provider's `datacenter`, or the only datacenter.",
		Optional:            true,
		Validators:          []validator.String{stringvalidator.LengthAtLeast(1)},
	}
}

var _ datasource.DataSourceWithConfigure = (*vsphereDatacenterDataSource)(nil)

func newVsphereDatacenterDataSource() datasource.DataSource { return &vsphereDatacenterDataSource{} }

type vsphereDatacenterDataSource struct{ vsphereDataSource }

type vsphereDatacenterModel struct {
	Name types.String `tfsdk:"name"`
	ID   types.String `tfsdk:"id"`
	Path types.String `tfsdk:"path"`
}

func (d *vsphereDatacenterDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_vsphere_datacenter"
}

func (d *vsphereDatacenterDataSource) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "Looks a vSphere datacenter up by name or inventory path. Requires the provider's `vsphere` block.",
		Attributes: map[string]schema.Attribute{
			"name": schema.StringAttribute{
				MarkdownDescription: "Datacenter name or inventory path. Defaults to the provider's `datacenter`, or the only datacenter.",
				Optional:            true,
				Computed:            true,
				Validators:          []validator.String{stringvalidator.LengthAtLeast(1)},
			},
			"id": schema.StringAttribute{
				MarkdownDescription: "Managed object ID, for example `datacenter-2`.",
				Computed:            true,
			},
			"path": schema.StringAttribute{
				MarkdownDescription: "Inventory path, for example `/DC0`.",
				Computed:            true,
			},
		},
	}
}

func (d *vsphereDatacenterDataSource) Read(ctx context.Context, req datasource.ReadRequest, resp *datasource.ReadResponse) {
	var m vsphereDatacenterModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	engine := d.engine(&resp.Diagnostics)
	if resp.Diagnostics.HasError() {
		return
	}
	dc, err := engine.FindDatacenter(ctx, m.Name.ValueString())
	if err != nil {
		resp.Diagnostics.AddError("Could not find vSphere datacenter", err.Error())
		return
	}
	m.Name, m.ID, m.Path = types.StringValue(dc.Name), types.StringValue(dc.MOID), types.StringValue(dc.Path)
	resp.Diagnostics.Append(resp.State.Set(ctx, m)...)
}
