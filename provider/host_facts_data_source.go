package provider

import (
	"context"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-validators/objectvalidator"
	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/kilnhq/terraform-provider-kiln/internal/hostprep"
	"github.com/kilnhq/terraform-provider-kiln/internal/remote"
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
			"ssh": schema.SingleNestedBlock{
				MarkdownDescription: "How to reach the host; unset values come from the provider's `ssh` block.",
				Validators:          []validator.Object{objectvalidator.IsRequired()},
				Attributes: map[string]schema.Attribute{
					"host":             schema.StringAttribute{MarkdownDescription: "Host name or address.", Optional: true},
					"port":             schema.Int64Attribute{MarkdownDescription: "SSH port; defaults to the provider's, then `22`.", Optional: true},
					"user":             schema.StringAttribute{MarkdownDescription: "Login user; commands run through `sudo -n` unless `root`.", Optional: true},
					"private_key":      schema.StringAttribute{MarkdownDescription: "Private key (PEM or OpenSSH).", Optional: true, Sensitive: true},
					"use_agent":        schema.BoolAttribute{MarkdownDescription: "Authenticate through the agent at `SSH_AUTH_SOCK`.", Optional: true},
					"host_key":         schema.StringAttribute{MarkdownDescription: "The host's public key, authorized_keys format.", Optional: true},
					"known_hosts_file": schema.StringAttribute{MarkdownDescription: "known_hosts file used when `host_key` is unset.", Optional: true},
				},
				Blocks: map[string]schema.Block{"bastion": schema.SingleNestedBlock{
					MarkdownDescription: bastionDescription,
					Attributes: map[string]schema.Attribute{
						"host":             schema.StringAttribute{MarkdownDescription: bastionAttributes["host"], Optional: true},
						"port":             schema.Int64Attribute{MarkdownDescription: bastionAttributes["port"], Optional: true},
						"user":             schema.StringAttribute{MarkdownDescription: bastionAttributes["user"], Optional: true},
						"private_key":      schema.StringAttribute{MarkdownDescription: bastionAttributes["private_key"], Optional: true, Sensitive: true},
						"host_key":         schema.StringAttribute{MarkdownDescription: bastionAttributes["host_key"], Optional: true},
						"known_hosts_file": schema.StringAttribute{MarkdownDescription: bastionAttributes["known_hosts_file"], Optional: true},
					},
				}},
			},
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
	target, err := sshTarget(d.clients.ssh, m.Connection)
	if err != nil {
		resp.Diagnostics.AddError("Invalid ssh block", err.Error())
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	c, err := remote.Dial(ctx, target)
	if err != nil {
		resp.Diagnostics.AddError("Could not connect to the host", err.Error())
		return
	}
	defer c.Close()
	facts, err := hostprep.ReadFacts(ctx, c, hostprep.Spec{Root: firstSet(m.Root.ValueString(), hostprep.DefaultRoot)})
	if err != nil {
		resp.Diagnostics.AddError("Could not read the host's facts", err.Error())
		return
	}
	m.Facts, m.Installed = factsValue(facts), installedValue(facts)
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}
