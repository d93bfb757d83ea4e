package provider

import (
	"context"
	"maps"
	"slices"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/kilnhq/terraform-provider-kiln/internal/hostprep"
	"github.com/kilnhq/terraform-provider-kiln/internal/redact"
)

var _ datasource.DataSourceWithConfigure = (*hostFactsDataSource)(nil)

func newHostFactsDataSource() datasource.DataSource { return &hostFactsDataSource{} }

type hostFactsDataSource struct {
	clients *clients
}

type hostFactsModel struct {
	Connection *hostConnectionModel `tfsdk:"ssh"`
	Root       types.String         `tfsdk:"root"`
	Facts      types.Object         `tfsdk:"facts"`
	Installed  types.List           `tfsdk:"installed"`
}

func (d *hostFactsDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_host_facts"
}

func (d *hostFactsDataSource) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "Reads a host's facts over SSH in one round trip, changing nothing: OS, kernel, " +
			"cgroup mode, swap, limits, and the Go toolchains Kiln installed under `root`.",
		Attributes: map[string]schema.Attribute{
			"root": schema.StringAttribute{
				MarkdownDescription: "Toolchain root to inspect. Defaults to `" + hostprep.DefaultRoot + "`.",
				Optional:            true,
			},
			"facts": schema.ObjectAttribute{
				MarkdownDescription: "`os`, `kernel`, `arch`, `cgroup_mode`, `swap_total_kib`, `nofile`, `nproc` (as for `kiln_go_host`).",
				AttributeTypes:      hostFactsType,
				Computed:            true,
			},
			"installed": schema.ListAttribute{
				MarkdownDescription: "Toolchains Kiln installed: `version`, `archive_sha256`, `go_binary_sha256`.",
				ElementType:         types.ObjectType{AttrTypes: installedType},
				Computed:            true,
			},
		},
		Blocks: map[string]schema.Block{
			"ssh": sshDataSourceBlock(),
		},
	}
}

func (d *hostFactsDataSource) Configure(_ context.Context, req datasource.ConfigureRequest, resp *datasource.ConfigureResponse) {
	d.clients = configuredClients(req.ProviderData, &resp.Diagnostics)
}

func (d *hostFactsDataSource) Read(ctx context.Context, req datasource.ReadRequest, resp *datasource.ReadResponse) {
	var m hostFactsModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	host := connectHost(ctx, d.clients.ssh, m.Connection, redact.Secrets{}, &resp.Diagnostics)
	if host == nil {
		return
	}
	defer host.Close()
	facts, err := host.ReadFacts(ctx, hostprep.Spec{Root: firstSet(m.Root.ValueString(), hostprep.DefaultRoot)})
	if err != nil {
		resp.Diagnostics.AddError("Could not read the host's facts", err.Error())
		return
	}
	m.Facts, m.Installed = factsValue(facts), installedValue(facts)
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

// The facts and installed toolchains of a host, as kiln_go_host records them too.
var (
	hostFactsType = map[string]attr.Type{
		"os": types.StringType, "kernel": types.StringType, "arch": types.StringType,
		"cgroup_mode": types.StringType, "swap_total_kib": types.Int64Type,
		"nofile": types.Int64Type, "nproc": types.Int64Type,
	}
	installedType = map[string]attr.Type{
		"version": types.StringType, "archive_sha256": types.StringType, "go_binary_sha256": types.StringType,
	}
)

func factsValue(f hostprep.Facts) types.Object {
	return types.ObjectValueMust(hostFactsType, map[string]attr.Value{
		"os": types.StringValue(f.OS), "kernel": types.StringValue(f.Kernel), "arch": types.StringValue(f.Arch),
		"cgroup_mode": types.StringValue(f.CgroupFS), "swap_total_kib": types.Int64Value(f.SwapTotalKiB),
		"nofile": types.Int64Value(int64(f.NoFile)), "nproc": types.Int64Value(int64(f.NProc)),
	})
}

func installedValue(f hostprep.Facts) types.List {
	installed := make([]attr.Value, 0, len(f.Toolchains))
	for _, version := range slices.Sorted(maps.Keys(f.Toolchains)) {
		t := f.Toolchains[version]
		installed = append(installed, types.ObjectValueMust(installedType, map[string]attr.Value{
			"version": types.StringValue(version), "archive_sha256": types.StringValue(t.ArchiveSHA256),
			"go_binary_sha256": types.StringValue(t.InstalledGoSHA256),
		}))
	}
	return types.ListValueMust(types.ObjectType{AttrTypes: installedType}, installed)
}
