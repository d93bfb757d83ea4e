package provider

import (
	"context"
	"fmt"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/kilnhq/terraform-provider-kiln/internal/gotoolchain"
)

var _ datasource.DataSourceWithConfigure = (*goReleaseDataSource)(nil)

func newGoReleaseDataSource() datasource.DataSource { return &goReleaseDataSource{} }

type goReleaseDataSource struct {
	clients *clients
}

type goReleaseModel struct {
	Version       types.String `tfsdk:"version"`
	OS            types.String `tfsdk:"os"`
	Arch          types.String `tfsdk:"arch"`
	Source        types.String `tfsdk:"source"`
	ProxyURL      types.String `tfsdk:"proxy_url"`
	SumDB         types.String `tfsdk:"sumdb"`
	IndexURL      types.String `tfsdk:"index_url"`
	Resolved      types.String `tfsdk:"resolved"`
	ModuleVersion types.String `tfsdk:"module_version"`
	ModuleHash    types.String `tfsdk:"module_hash"`
	Filename      types.String `tfsdk:"filename"`
	SHA256        types.String `tfsdk:"sha256"`
}

func (d *goReleaseDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_go_release"
}

func (d *goReleaseDataSource) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "Resolves a Go version request (`1.24.4`, `1.24` for its newest patch, or `stable`) " +
			"and shows what verifies it: the checksum database's `h1:` hash of the toolchain module " +
			"(`module_proxy`, looked up through the database's signed tree), or the release index's SHA-256 of " +
			"the tarball (`dl`).",
		Attributes: map[string]schema.Attribute{
			"version": schema.StringAttribute{
				MarkdownDescription: "Version request: `1.24.4`, `1.24` or `stable`.",
				Required:            true,
				Validators:          []validator.String{stringvalidator.LengthAtLeast(1)},
			},
			"os": schema.StringAttribute{
				MarkdownDescription: "GOOS of the archive. Defaults to `linux`.",
				Optional:            true,
			},
			"arch": schema.StringAttribute{
				MarkdownDescription: "GOARCH of the archive. Defaults to `amd64`.",
				Optional:            true,
			},
			"source": schema.StringAttribute{
				MarkdownDescription: "`module_proxy` or `dl`. Defaults to `module_proxy`.",
				Optional:            true,
				Validators:          []validator.String{stringvalidator.OneOf(gotoolchain.FromModuleProxy, gotoolchain.FromMirror)},
			},
			"proxy_url": schema.StringAttribute{
				MarkdownDescription: "With `module_proxy`: the GOPROXY. Defaults to `" + gotoolchain.DefaultProxy + "`.",
				Optional:            true,
			},
			"sumdb": schema.StringAttribute{
				MarkdownDescription: "With `module_proxy`: the checksum database (`name+hash+key`). Defaults to sum.golang.org.",
				Optional:            true,
			},
			"index_url": schema.StringAttribute{
				MarkdownDescription: "With `dl`: the release index. Defaults to `" + gotoolchain.DefaultIndexURL + "`.",
				Optional:            true,
			},
			"resolved": schema.StringAttribute{
				MarkdownDescription: "The release the request names, for example `1.24.4`.",
				Computed:            true,
			},
			"module_version": schema.StringAttribute{
				MarkdownDescription: "With `module_proxy`: the golang.org/toolchain module version.",
				Computed:            true,
			},
			"module_hash": schema.StringAttribute{
				MarkdownDescription: "With `module_proxy`: the `h1:` hash the checksum database records for it.",
				Computed:            true,
			},
			"filename": schema.StringAttribute{
				MarkdownDescription: "With `dl`: the release tarball's file name.",
				Computed:            true,
			},
			"sha256": schema.StringAttribute{
				MarkdownDescription: "With `dl`: the tarball's SHA-256 from the release index.",
				Computed:            true,
			},
		},
	}
}

func (d *goReleaseDataSource) Configure(_ context.Context, req datasource.ConfigureRequest, resp *datasource.ConfigureResponse) {
	d.clients = configuredClients(req.ProviderData, &resp.Diagnostics)
}

func (d *goReleaseDataSource) Read(ctx context.Context, req datasource.ReadRequest, resp *datasource.ReadResponse) {
	var m goReleaseModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	goos, goarch := firstSet(m.OS.ValueString(), "linux"), firstSet(m.Arch.ValueString(), "amd64")
	f := d.clients.toolchains
	m.ModuleVersion, m.ModuleHash, m.Filename, m.SHA256 = types.StringNull(), types.StringNull(), types.StringNull(), types.StringNull()
	proxy := gotoolchain.ModuleProxy{URL: m.ProxyURL.ValueString(), SumDB: m.SumDB.ValueString()}
	source := gotoolchain.Source{Kind: m.Source.ValueString(), Proxy: proxy, Mirror: gotoolchain.Mirror{IndexURL: m.IndexURL.ValueString()}, Fetcher: f}
	releases, err := source.Releases(ctx, gotoolchain.Platform{OS: goos, Arch: goarch})
	if err != nil {
		resp.Diagnostics.AddError("Could not list Go releases", err.Error())
		return
	}
	if m.Source.ValueString() == gotoolchain.FromMirror {
		version, err := gotoolchain.Resolve(m.Version.ValueString(), releases)
		if err != nil {
			resp.Diagnostics.AddAttributeError(path.Root("version"), "Unknown Go version", err.Error())
			return
		}
		for _, r := range releases {
			if strings.TrimPrefix(r.Version, "go") == version {
				if file, ok := r.Archive(goos, goarch); ok {
					m.Filename, m.SHA256 = types.StringValue(file.Filename), types.StringValue(file.SHA256)
				}
			}
		}
		if m.SHA256.IsNull() {
			resp.Diagnostics.AddError("No archive", fmt.Sprintf("go%s has no archive for %s/%s in the release index", version, goos, goarch))
			return
		}
		m.Resolved = types.StringValue(version)
	} else {
		version, err := gotoolchain.Resolve(m.Version.ValueString(), releases)
		if err != nil {
			resp.Diagnostics.AddAttributeError(path.Root("version"), "Unknown Go version", err.Error())
			return
		}
		hash, err := f.Checksum(ctx, proxy, version, goos, goarch)
		if err != nil {
			resp.Diagnostics.AddError("Could not look the toolchain up in the checksum database", err.Error())
			return
		}
		m.Resolved = types.StringValue(version)
		m.ModuleVersion = types.StringValue(gotoolchain.ModuleVersion(version, goos, goarch))
		m.ModuleHash = types.StringValue(hash)
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}
