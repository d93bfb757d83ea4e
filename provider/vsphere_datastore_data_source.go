package provider

import (
	"context"

	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
)

var _ datasource.DataSourceWithConfigure = (*vsphereDatastoreDataSource)(nil)

func newVsphereDatastoreDataSource() datasource.DataSource { return &vsphereDatastoreDataSource{} }

type vsphereDatastoreDataSource struct{ vsphereDataSource }

type vsphereDatastoreModel struct {
	Name          types.String `tfsdk:"name"`
	Datacenter    types.String `tfsdk:"datacenter"`
	ID            types.String `tfsdk:"id"`
	Path          types.String `tfsdk:"path"`
	Type          types.String `tfsdk:"type"`
	CapacityBytes types.Int64  `tfsdk:"capacity_bytes"`
	FreeBytes     types.Int64  `tfsdk:"free_space_bytes"`
}

func (d *vsphereDatastoreDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_vsphere_datastore"
}

func (d *vsphereDatastoreDataSource) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "Looks a vSphere datastore up by name or inventory path, with its capacity. Requires the provider's `vsphere` block.",
		Attributes: map[string]schema.Attribute{
			"name": schema.StringAttribute{
				MarkdownDescription: "Datastore name or inventory path.",
				Required:            true,
				Validators:          []validator.String{stringvalidator.LengthAtLeast(1)},
			},
			"datacenter": datacenterAttribute(),
			"id": schema.StringAttribute{
				MarkdownDescription: "Managed object ID, for example `datastore-11`.",
				Computed:            true,
			},
			"path": schema.StringAttribute{
				MarkdownDescription: "Inventory path, for example `/DC0/datastore/ds1`.",
				Computed:            true,
			},
			"type": schema.StringAttribute{
				MarkdownDescription: "File system type: `VMFS`, `NFS`, `vsan`, `OTHER`, ...",
				Computed:            true,
			},
			"capacity_bytes": schema.Int64Attribute{
				MarkdownDescription: "Capacity in bytes.",
				Computed:            true,
			},
			"free_space_bytes": schema.Int64Attribute{
				MarkdownDescription: "Free space in bytes, when read.",
				Computed:            true,
			},
		},
	}
}

func (d *vsphereDatastoreDataSource) Read(ctx context.Context, req datasource.ReadRequest, resp *datasource.ReadResponse) {
	var m vsphereDatastoreModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	engine := d.engine(&resp.Diagnostics)
	if resp.Diagnostics.HasError() {
		return
	}
	ds, err := engine.FindDatastore(ctx, m.Datacenter.ValueString(), m.Name.ValueString())
	if err != nil {
		resp.Diagnostics.AddError("Could not find vSphere datastore", err.Error())
		return
	}
	m.ID, m.Path, m.Type = types.StringValue(ds.MOID), types.StringValue(ds.Path), types.StringValue(ds.Type)
	m.CapacityBytes, m.FreeBytes = types.Int64Value(ds.CapacityBytes), types.Int64Value(ds.FreeBytes)
	resp.Diagnostics.Append(resp.State.Set(ctx, m)...)
}
