package provider

import (
	"context"

	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
)

var _ datasource.DataSourceWithConfigure = (*vsphereNetworkDataSource)(nil)

func newVsphereNetworkDataSource() datasource.DataSource { return &vsphereNetworkDataSource{} }

type vsphereNetworkDataSource struct{ vsphereDataSource }

type vsphereNetworkModel struct {
	Name       types.String `tfsdk:"name"`
	Datacenter types.String `tfsdk:"datacenter"`
	ID         types.String `tfsdk:"id"`
	Path       types.String `tfsdk:"path"`
	Type       types.String `tfsdk:"type"`
}

func (d *vsphereNetworkDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_vsphere_network"
}

func (d *vsphereNetworkDataSource) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "Looks a vSphere network (a standard or distributed port group) up by name or " +
			"inventory path. Its `name` is what `kiln_vsphere_vm`'s `networks` takes. Requires the provider's `vsphere` block.",
		Attributes: map[string]schema.Attribute{
			"name": schema.StringAttribute{
				MarkdownDescription: "Network name or inventory path.",
				Required:            true,
				Validators:          []validator.String{stringvalidator.LengthAtLeast(1)},
			},
			"datacenter": datacenterAttribute(),
			"id": schema.StringAttribute{
				MarkdownDescription: "Managed object ID, for example `network-7` or `dvportgroup-13`.",
				Computed:            true,
			},
			"path": schema.StringAttribute{
				MarkdownDescription: "Inventory path, for example `/DC0/network/VM Network`.",
				Computed:            true,
			},
			"type": schema.StringAttribute{
				MarkdownDescription: "Managed object type: `Network`, `DistributedVirtualPortgroup` or `OpaqueNetwork`.",
				Computed:            true,
			},
		},
	}
}

func (d *vsphereNetworkDataSource) Read(ctx context.Context, req datasource.ReadRequest, resp *datasource.ReadResponse) {
	var m vsphereNetworkModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	engine := d.engine(&resp.Diagnostics)
	if resp.Diagnostics.HasError() {
		return
	}
	n, err := engine.FindNetwork(ctx, m.Datacenter.ValueString(), m.Name.ValueString())
	if err != nil {
		resp.Diagnostics.AddError("Could not find vSphere network", err.Error())
		return
	}
	m.ID, m.Path, m.Type = types.StringValue(n.MOID), types.StringValue(n.Path), types.StringValue(n.Type)
	resp.Diagnostics.Append(resp.State.Set(ctx, m)...)
}
