package provider

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-validators/int64validator"
	"github.com/hashicorp/terraform-plugin-framework-validators/listvalidator"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/int64default"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringdefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/tfsdk"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/kilnhq/terraform-provider-kiln/internal/buildfarm"
	"github.com/kilnhq/terraform-provider-kiln/internal/redact"
	"github.com/kilnhq/terraform-provider-kiln/internal/remote"
)

var (
	_ resource.ResourceWithConfigure   = (*buildPoolResource)(nil)
	_ resource.ResourceWithImportState = (*buildPoolResource)(nil)
	_ resource.ResourceWithModifyPlan  = (*buildPoolResource)(nil)
)

func newBuildPoolResource() resource.Resource { return &buildPoolResource{} }

type buildPoolResource struct {
	clients *clients
}

type buildPoolModel struct {
	ID               types.String    `tfsdk:"id"`
	Name             types.String    `tfsdk:"name"`
	Labels           types.Map       `tfsdk:"labels"`
	BuildUser        types.String    `tfsdk:"build_user"`
	Workspace        types.String    `tfsdk:"workspace"`
	ControlNamespace types.String    `tfsdk:"control_namespace"`
	Hosts            []poolHostModel `tfsdk:"host"`
}

type poolHostModel struct {
	Connection  *resourceConnectionModel `tfsdk:"ssh"`
	Concurrency types.Int64              `tfsdk:"concurrency"`
	Address     types.String             `tfsdk:"address"`
	Ready       types.Bool               `tfsdk:"ready"`
	Problem     types.String             `tfsdk:"problem"`
	GoVersions  types.List               `tfsdk:"go_versions"`
	OS          types.String             `tfsdk:"os"`
	Arch        types.String             `tfsdk:"arch"`
}

// poolTimeout bounds registering or deregistering a pool's hosts.
const poolTimeout = 10 * time.Minute

func (r *buildPoolResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_build_pool"
}

func (r *buildPoolResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "Hosts registered as build infrastructure for `kiln_build`. Apply logs in to each host " +
			"(its `ssh` block, as root or a user with sudo), creates the unprivileged build user with its own " +
			"workspace, module cache (`~/go/pkg/mod`) and build cache (`~/.cache/go-build`) — builds never run as " +
			"root or as the login user — and authorizes the pool's key for it (a key Kiln generates, kept in the " +
			"pool's record only). It reads each host's OS, architecture and the Go toolchains `kiln_go_host` " +
			"installed there.\n\n" +
			"The cluster is the system of record: the pool is kept as a Secret `kiln-pool-<name>` labelled " +
			"`kiln.dev/kind=build-pool` in the control namespace (it holds the pool's key and the pinned host keys), " +
			"so builds, other configurations and tools find the pool through the cluster. A refresh probes every " +
			"host as a build would reach it (the build user, the pool's key, the pinned host key) and reports " +
			"per host: a changed host key, a removed build user or key, or a registered toolchain that is gone make " +
			"the host not `ready`, and the plan registers it again; an edited or deleted record shows too.\n\n" +
			"Destroying the pool withdraws its key from the hosts and deletes the record; the build user, its " +
			"caches (kept warm for a later pool) and the build records stay. Builds run on pool hosts, not as " +
			"Kubernetes Jobs: those need a container runtime on the cluster's nodes. Requires the provider's " +
			"`kubernetes` block. Import with `<name>` or `<control_namespace>/<name>`.",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{
				MarkdownDescription: "The pool name.",
				Computed:            true,
				PlanModifiers:       []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"name": schema.StringAttribute{
				MarkdownDescription: "Pool name, a DNS label.",
				Required:            true,
				PlanModifiers:       []planmodifier.String{stringplanmodifier.RequiresReplace()},
				Validators:          dnsLabelValidators,
			},
			"labels": schema.MapAttribute{
				MarkdownDescription: "Labels builds select the pool by (`kiln_build.pool_labels`, or the project's " +
					"`build_pool_labels`): a build runs on a pool whose labels include all it asks for.",
				ElementType: types.StringType,
				Optional:    true,
			},
			"build_user": schema.StringAttribute{
				MarkdownDescription: "The unprivileged user builds run as, created where missing (no password, no sudo, " +
					"key logins only). Defaults to `" + buildfarm.DefaultBuildUser + "`. Changing it means a new pool.",
				Optional:      true,
				Computed:      true,
				Default:       stringdefault.StaticString(buildfarm.DefaultBuildUser),
				PlanModifiers: []planmodifier.String{stringplanmodifier.RequiresReplace()},
				Validators:    []validator.String{userName},
			},
			"workspace": schema.StringAttribute{
				MarkdownDescription: "Absolute directory of the builds on every host, owned by the build user: one " +
					"directory per slot, emptied at the start of each build. Defaults to the build user's `~/workspace`.",
				Optional:   true,
				Validators: []validator.String{cleanAbsolutePath},
			},
			"control_namespace": controlNamespaceAttribute(),
		},
		Blocks: map[string]schema.Block{
			"host": schema.ListNestedBlock{
				MarkdownDescription: "A host of the pool, prepared with `kiln_go_host` (its toolchains are what builds use).",
				Validators:          []validator.List{listvalidator.SizeAtLeast(1), listvalidator.IsRequired()},
				NestedObject: schema.NestedBlockObject{
					Blocks: map[string]schema.Block{"ssh": sshResourceBlock()},
					Attributes: map[string]schema.Attribute{
						"concurrency": schema.Int64Attribute{
							MarkdownDescription: "How many builds run on the host at once: its slots, each a lock on the " +
								"host, so concurrent applies and other workspaces respect it. Defaults to `1`.",
							Optional:   true,
							Computed:   true,
							Default:    int64default.StaticInt64(1),
							Validators: []validator.Int64{int64validator.Between(1, 64)},
						},
						"address": schema.StringAttribute{
							MarkdownDescription: "`host:port`, as recorded for builds.",
							Computed:            true,
						},
						"ready": schema.BoolAttribute{
							MarkdownDescription: "Whether the last probe reached the host as its builds do and found every " +
								"registered toolchain intact. A host that is not ready makes the plan register it again.",
							Computed: true,
						},
						"problem": schema.StringAttribute{
							MarkdownDescription: "Why the host is not ready; empty when it is.",
							Computed:            true,
						},
						"go_versions": schema.ListAttribute{
							MarkdownDescription: "The intact Go toolchains on the host (exact versions), as `kiln_go_host` installed them.",
							ElementType:         types.StringType,
							Computed:            true,
						},
						"os": schema.StringAttribute{
							MarkdownDescription: "The host's GOOS, e.g. `linux`.",
							Computed:            true,
						},
						"arch": schema.StringAttribute{
							MarkdownDescription: "The host's GOARCH, e.g. `amd64`.",
							Computed:            true,
						},
					},
				},
			},
		},
	}
}

func (r *buildPoolResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	r.clients = configuredClients(req.ProviderData, &resp.Diagnostics)
}

// ModifyPlan plans every host ready: a host a probe found not ready is a
// change, which registers it again.
func (r *buildPoolResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	if req.Plan.Raw.IsNull() || r.clients == nil {
		return
	}
	requireEngine(r.clients, kubernetesBlock, &resp.Diagnostics)
	var hosts []poolHostModel
	resp.Diagnostics.Append(req.Plan.GetAttribute(ctx, path.Root("host"), &hosts)...)
	for i := range hosts {
		resp.Diagnostics.Append(resp.Plan.SetAttribute(ctx, path.Root("host").AtListIndex(i).AtName("ready"), true)...)
		resp.Diagnostics.Append(resp.Plan.SetAttribute(ctx, path.Root("host").AtListIndex(i).AtName("problem"), "")...)
	}
}

// poolSecrets are what a pool's errors and logs must not show.
func poolSecrets(m buildPoolModel) redact.Secrets {
	var s redact.Secrets
	for _, h := range m.Hosts {
		if c := h.Connection.connection(); c != nil {
			s.Add(c.PrivateKey.ValueString())
		}
	}
	return s
}

// admins resolves the hosts' ssh blocks.
func (r *buildPoolResource) admins(m buildPoolModel, diags *diag.Diagnostics) []remote.Target {
	var out []remote.Target
	secrets := poolSecrets(m)
	for i, h := range m.Hosts {
		t, err := sshTarget(r.clients.ssh, h.Connection.connection())
		if err != nil {
			diags.AddAttributeError(path.Root("host").AtListIndex(i).AtName("ssh"), "Invalid ssh block", err.Error())
			continue
		}
		t.Secrets = secrets
		out = append(out, t)
	}
	return out
}

func (r *buildPoolResource) writeOnlyKeys(ctx context.Context, config tfsdk.Config, m *buildPoolModel, diags *diag.Diagnostics) {
	for i := range m.Hosts {
		if m.Hosts[i].Connection == nil {
			continue
		}
		diags.Append(config.GetAttribute(ctx, path.Root("host").AtListIndex(i).AtName("ssh").AtName("private_key_wo"),
			&m.Hosts[i].Connection.PrivateKeyWO)...)
	}
}

func (r *buildPoolResource) register(ctx context.Context, m buildPoolModel, diags *diag.Diagnostics) (buildPoolModel, bool) {
	farm := buildFarm(r.clients, m.ControlNamespace.ValueString(), false, diags)
	admins := r.admins(m, diags)
	if farm == nil || diags.HasError() {
		return m, false
	}
	spec := buildfarm.PoolSpec{Name: m.Name.ValueString(), Labels: stringMap(m.Labels),
		BuildUser: m.BuildUser.ValueString(), Workspace: m.Workspace.ValueString()}
	for i, h := range m.Hosts {
		spec.Hosts = append(spec.Hosts, buildfarm.HostSpec{Admin: admins[i], Concurrency: int(h.Concurrency.ValueInt64())})
	}
	ctx, cancel := context.WithTimeout(ctx, poolTimeout)
	defer cancel()
	pool, err := farm.Register(ctx, spec)
	if err != nil {
		diags.AddError("Could not register the build pool", poolSecrets(m).Text(err.Error()))
		return m, false
	}
	m.ID = m.Name
	for i := range m.Hosts {
		h := pool.Hosts[i]
		fillPoolHost(&m.Hosts[i], h, buildfarm.HostStatus{Ready: true, OS: h.OS, Arch: h.Arch, GoVersions: h.GoVersions})
	}
	return m, true
}

func fillPoolHost(m *poolHostModel, h buildfarm.PoolHost, s buildfarm.HostStatus) {
	m.Address = types.StringValue(h.Addr)
	m.Concurrency = types.Int64Value(int64(h.Concurrency))
	m.Ready = types.BoolValue(s.Ready)
	m.Problem = types.StringValue(s.Problem)
	m.OS, m.Arch = types.StringValue(s.OS), types.StringValue(s.Arch)
	m.GoVersions = stringList(s.GoVersions)
}

func (r *buildPoolResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	r.apply(ctx, req.Plan, req.Config, &resp.State, &resp.Diagnostics)
}

func (r *buildPoolResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	r.apply(ctx, req.Plan, req.Config, &resp.State, &resp.Diagnostics)
}

// apply registers the planned pool (the write-only keys from config) and
// stores the result.
func (r *buildPoolResource) apply(ctx context.Context, plan tfsdk.Plan, config tfsdk.Config, state *tfsdk.State, diags *diag.Diagnostics) {
	var m buildPoolModel
	diags.Append(plan.Get(ctx, &m)...)
	r.writeOnlyKeys(ctx, config, &m, diags)
	if diags.HasError() {
		return
	}
	if m, ok := r.register(ctx, m, diags); ok {
		diags.Append(state.Set(ctx, withoutWriteOnly(m))...)
	}
}

// withoutWriteOnly clears the write-only keys, which state never holds.
func withoutWriteOnly(m buildPoolModel) buildPoolModel {
	for i := range m.Hosts {
		if c := m.Hosts[i].Connection; c != nil {
			conn := *c
			conn.PrivateKeyWO = types.StringNull()
			m.Hosts[i].Connection = &conn
		}
	}
	return m
}

// Read reads the pool's record (gone: the pool is gone) and probes its
// hosts; labels, concurrency and the hosts' facts come from there.
func (r *buildPoolResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var state buildPoolModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	farm := buildFarm(r.clients, state.ControlNamespace.ValueString(), false, &resp.Diagnostics)
	if resp.Diagnostics.HasError() {
		return
	}
	pool, err := farm.ReadPool(ctx, state.Name.ValueString())
	if errors.Is(err, buildfarm.ErrNotFound) {
		resp.State.RemoveResource(ctx)
		return
	}
	if err != nil {
		resp.Diagnostics.AddError("Could not read the build pool's record", err.Error())
		return
	}
	state.ID = types.StringValue(pool.Name)
	state.Labels = optionalStringMapValue(pool.Labels)
	state.BuildUser = types.StringValue(pool.BuildUser)
	statuses := farm.Probe(ctx, pool)
	if len(state.Hosts) == 0 { // an import: the hosts come from the record
		for _, h := range pool.Hosts {
			state.Hosts = append(state.Hosts, importedPoolHost(h))
		}
	}
	for i := range state.Hosts {
		if i >= len(pool.Hosts) {
			state.Hosts[i].Ready = types.BoolValue(false)
			state.Hosts[i].Problem = types.StringValue("not in the pool's record")
			continue
		}
		fillPoolHost(&state.Hosts[i], pool.Hosts[i], statuses[i])
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, state)...)
}

// importedPoolHost is a host block rebuilt from the record: its address and
// pinned host key; the login comes from the provider's ssh block.
func importedPoolHost(h buildfarm.PoolHost) poolHostModel {
	host, portText, _ := net.SplitHostPort(h.Addr)
	port, _ := strconv.ParseInt(portText, 10, 64)
	conn := &resourceConnectionModel{hostConnectionModel: hostConnectionModel{
		Host: types.StringValue(host), Port: types.Int64Value(port), HostKey: types.StringValue(h.HostKey),
		User: types.StringNull(), PrivateKey: types.StringNull(), UseAgent: types.BoolNull(), KnownHostsFile: types.StringNull(),
	}, PrivateKeyWO: types.StringNull()}
	return poolHostModel{Connection: conn, GoVersions: types.ListNull(types.StringType)}
}

func (r *buildPoolResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var state buildPoolModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	farm := buildFarm(r.clients, state.ControlNamespace.ValueString(), false, &resp.Diagnostics)
	if resp.Diagnostics.HasError() {
		return
	}
	pool, err := farm.ReadPool(ctx, state.Name.ValueString())
	if errors.Is(err, buildfarm.ErrNotFound) {
		return
	}
	if err != nil {
		resp.Diagnostics.AddError("Could not read the build pool's record", err.Error())
		return
	}
	var diags diag.Diagnostics
	admins := r.admins(state, &diags)
	ctx, cancel := context.WithTimeout(ctx, poolTimeout)
	defer cancel()
	if err := farm.Deregister(ctx, pool, admins); err != nil || diags.HasError() {
		resp.Diagnostics.AddWarning("The pool's key may still be authorized on some hosts",
			fmt.Sprintf("The pool's record is deleted, but withdrawing its key failed: %v", poolSecrets(state).Error(errors.Join(err, diagsError(diags)))))
	}
}

func diagsError(d diag.Diagnostics) error {
	var errs []error
	for _, e := range d.Errors() {
		errs = append(errs, errors.New(e.Detail()))
	}
	return errors.Join(errs...)
}

func (r *buildPoolResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	control, names, ok := importIDParts(req.ID, 1)
	if !ok {
		resp.Diagnostics.AddError("Invalid import ID", "Import a build pool as <name> or <control_namespace>/<name>, got "+req.ID+".")
		return
	}
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("name"), names[0])...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("control_namespace"), control)...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("build_user"), buildfarm.DefaultBuildUser)...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("labels"), types.MapNull(types.StringType))...)
}
