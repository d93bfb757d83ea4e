package provider

import (
	"context"

	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
)

var _ datasource.DataSourceWithConfigure = (*vsphereTemplateDataSource)(nil)

func newVsphereTemplateDataSource() datasource.DataSource { return &vsphereTemplateDataSource{} }

type vsphereTemplateDataSource struct{ vsphereDataSource }

type vsphereTemplateModel struct {
	Name            types.String `tfsdk:"name"`
	Datacenter      types.String `tfsdk:"datacenter"`
	ID              types.String `tfsdk:"id"`
	MOID            types.String `tfsdk:"moid"`
	Path            types.String `tfsdk:"path"`
	GuestID         types.String `tfsdk:"guest_id"`
	NumCPUs         types.Int64  `tfsdk:"num_cpus"`
	MemoryMiB       types.Int64  `tfsdk:"memory_mib"`
	Disks           types.List   `tfsdk:"disks"`
	Networks        types.List   `tfsdk:"networks"`
	IsTemplate      types.Bool   `tfsdk:"is_template"`
	CurrentSnapshot types.String `tfsdk:"current_snapshot"`
}

var templateDiskType = types.ObjectType{AttrTypes: map[string]attr.Type{"label": types.StringType, "size_gib": types.Int64Type}}

func (d *vsphereTemplateDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_vsphere_template"
}

func (d *vsphereTemplateDataSource) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "Looks a template (or a VM) up to clone from: its guest OS, hardware, disks, " +
			"networks and current snapshot. Pass its `path` to `kiln_vsphere_vm`'s `source`. Requires the " +
			"provider's `vsphere` block.",
		Attributes: map[string]schema.Attribute{
			"name": schema.StringAttribute{
				MarkdownDescription: "Inventory path (absolute, or relative to the datacenter's VM folder like " +
					"`templates/debian-12`), name, or UUID of the template.",
				Required:   true,
				Validators: []validator.String{stringvalidator.LengthAtLeast(1)},
			},
			"datacenter": datacenterAttribute(),
			"id": schema.StringAttribute{
				MarkdownDescription: "The template's BIOS UUID.",
				Computed:            true,
			},
			"moid": schema.StringAttribute{
				MarkdownDescription: "Managed object ID, for example `vm-42`.",
				Computed:            true,
			},
			"path": schema.StringAttribute{
				MarkdownDescription: "Inventory path, for example `/DC0/vm/templates/debian-12`.",
				Computed:            true,
			},
			"guest_id": schema.StringAttribute{
				MarkdownDescription: "Guest OS identifier, for example `debian12_64Guest`.",
				Computed:            true,
			},
			"num_cpus": schema.Int64Attribute{
				MarkdownDescription: "Virtual CPUs.",
				Computed:            true,
			},
			"memory_mib": schema.Int64Attribute{
				MarkdownDescription: "Memory in MiB.",
				Computed:            true,
			},
			"disks": schema.ListNestedAttribute{
				MarkdownDescription: "Disks in device order.",
				Computed:            true,
				NestedObject: schema.NestedAttributeObject{
					Attributes: map[string]schema.Attribute{
						"label": schema.StringAttribute{
							MarkdownDescription: "Device label, for example `Hard disk 1`.",
							Computed:            true,
						},
						"size_gib": schema.Int64Attribute{
							MarkdownDescription: "Size in GiB, rounded up.",
							Computed:            true,
						},
					},
				},
			},
			"networks": schema.ListAttribute{
				MarkdownDescription: "Network of each network adapter, in device order.",
				ElementType:         types.StringType,
				Computed:            true,
			},
			"is_template": schema.BoolAttribute{
				MarkdownDescription: "Whether it is marked as a template (`false` for a plain VM).",
				Computed:            true,
			},
			"current_snapshot": schema.StringAttribute{
				MarkdownDescription: "Name of the current snapshot, which a linked clone starts from by default; null when there is none.",
				Computed:            true,
			},
		},
	}
}

func (d *vsphereTemplateDataSource) Read(ctx context.Context, req datasource.ReadRequest, resp *datasource.ReadResponse) {
	var m vsphereTemplateModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	engine := d.engine(&resp.Diagnostics)
	if resp.Diagnostics.HasError() {
		return
	}
	t, err := engine.FindTemplate(ctx, m.Datacenter.ValueString(), m.Name.ValueString())
	if err != nil {
		resp.Diagnostics.AddError("Could not find vSphere template", err.Error())
		return
	}
	m.ID, m.MOID, m.Path = types.StringValue(t.UUID), types.StringValue(t.MOID), types.StringValue(t.Path)
	m.GuestID, m.NumCPUs, m.MemoryMiB = types.StringValue(t.GuestID), types.Int64Value(int64(t.NumCPUs)), types.Int64Value(t.MemoryMiB)
	m.IsTemplate, m.CurrentSnapshot, m.Networks = types.BoolValue(t.IsTemplate), optionalString(t.CurrentSnapshot), stringList(t.Networks)
	disks := make([]attr.Value, 0, len(t.Disks))
	for _, disk := range t.Disks {
		disks = append(disks, types.ObjectValueMust(templateDiskType.AttrTypes, map[string]attr.Value{
			"label": types.StringValue(disk.Label), "size_gib": types.Int64Value(disk.SizeGiB),
		}))
	}
	m.Disks = types.ListValueMust(templateDiskType, disks)
	resp.Diagnostics.Append(resp.State.Set(ctx, m)...)
}
