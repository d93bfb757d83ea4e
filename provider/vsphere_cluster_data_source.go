package provider

import (
	"context"

	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
)

var _ datasource.DataSourceWithConfigure = (*vsphereClusterDataSource)(nil)

func newVsphereClusterDataSource() datasource.DataSource { return &vsphereClusterDataSource{} }

type vsphereClusterDataSource struct{ vsphereDataSource }

type vsphereClusterModel struct {
	Name         types.String `tfsdk:"name"`
	Datacenter   types.String `tfsdk:"datacenter"`
	ID           types.String `tfsdk:"id"`
	Path         types.String `tfsdk:"path"`
	ResourcePool types.String `tfsdk:"resource_pool"`
	Hosts        types.List   `tfsdk:"hosts"`
}

func (d *vsphereClusterDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_vsphere_cluster"
}

func (d *vsphereClusterDataSource) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "Looks a vSphere cluster up by name or inventory path, with its hosts. Requires the provider's `vsphere` block.",
		Attributes: map[string]schema.Attribute{
			"name": schema.StringAttribute{
				MarkdownDescription: "Cluster name or inventory path.",
				Required:            true,
				Validators:          []validator.String{stringvalidator.LengthAtLeast(1)},
			},
			"datacenter": datacenterAttribute(),
			"id": schema.StringAttribute{
				MarkdownDescription: "Managed object ID, for example `domain-c7`.",
				Computed:            true,
			},
			"path": schema.StringAttribute{
				MarkdownDescription: "Inventory path, for example `/DC0/host/C0`.",
				Computed:            true,
			},
			"resource_pool": schema.StringAttribute{
				MarkdownDescription: "Inventory path of the cluster's root resource pool.",
				Computed:            true,
			},
			"hosts": schema.ListAttribute{
				MarkdownDescription: "Names of the cluster's hosts.",
				ElementType:         types.StringType,
				Computed:            true,
			},
		},
	}
}

func (d *vsphereClusterDataSource) Read(ctx context.Context, req datasource.ReadRequest, resp *datasource.ReadResponse) {
	var m vsphereClusterModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	engine := d.engine(&resp.Diagnostics)
	if resp.Diagnostics.HasError() {
		return
	}
	cl, err := engine.FindCluster(ctx, m.Datacenter.ValueString(), m.Name.ValueString())
	if err != nil {
		resp.Diagnostics.AddError("Could not find vSphere cluster", err.Error())
		return
	}
	m.ID, m.Path = types.StringValue(cl.MOID), types.StringValue(cl.Path)
	m.ResourcePool, m.Hosts = types.StringValue(cl.ResourcePool), stringList(cl.Hosts)
	resp.Diagnostics.Append(resp.State.Set(ctx, m)...)
}
