package provider

import (
	"context"
	"errors"
	"regexp"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-timeouts/resource/timeouts"
	"github.com/hashicorp/terraform-plugin-framework-validators/listvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/mapvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/booldefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringdefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/tfsdk"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/kilnhq/terraform-provider-kiln/internal/delivery"
)

var (
	_ resource.ResourceWithConfigure      = (*projectResource)(nil)
	_ resource.ResourceWithImportState    = (*projectResource)(nil)
	_ resource.ResourceWithModifyPlan     = (*projectResource)(nil)
	_ resource.ResourceWithValidateConfig = (*projectResource)(nil)
)

func newProjectResource() resource.Resource { return &projectResource{} }

type projectResource struct {
	clients *clients
}

type projectModel struct {
	ID                 types.String   `tfsdk:"id"`
	Name               types.String   `tfsdk:"name"`
	Description        types.String   `tfsdk:"description"`
	Services           types.Map      `tfsdk:"services"`
	StartupOrder       types.List     `tfsdk:"startup_order"`
	ImageRule          types.String   `tfsdk:"image_rule"`
	BuildPoolLabels    types.Map      `tfsdk:"build_pool_labels"`
	Variables          types.Map      `tfsdk:"variables"`
	ControlNamespace   types.String   `tfsdk:"control_namespace"`
	AllowClusterScoped types.Bool     `tfsdk:"allow_cluster_scoped"`
	Timeouts           timeouts.Value `tfsdk:"timeouts"`
}

const defaultDeliveryTimeout = 5 * time.Minute

// dnsLabelPattern is what names projects, environments, services and namespaces.
var dnsLabelPattern = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

var dnsLabelValidators = []validator.String{
	stringvalidator.LengthBetween(1, 63),
	stringvalidator.RegexMatches(dnsLabelPattern, "must be a DNS label: lower-case letters, digits and `-`, starting and ending with a letter or digit"),
}

func (r *projectResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_project"
}

func (r *projectResource) Schema(ctx context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "A delivery project (a ZadigX-style project): its services as Kubernetes YAML templates, " +
			"the order they start in, the image naming rule and the labels of its build pool.\n\n" +
			"The cluster is the system of record: the project is kept as a ConfigMap " +
			"`kiln-project-<name>` labelled `kiln.dev/kind=project` in the control namespace, and read back from " +
			"there, so an edit made with kubectl shows in `terraform plan`. The startup order, every template's " +
			"YAML and every `${variable}` are checked at plan time. Requires the provider's `kubernetes` block.",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{
				MarkdownDescription: "The project name.",
				Computed:            true,
				PlanModifiers:       []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"name": schema.StringAttribute{
				MarkdownDescription: "Project name, a DNS label; it prefixes environment namespaces (`<name>-env-<env>`).",
				Required:            true,
				PlanModifiers:       []planmodifier.String{stringplanmodifier.RequiresReplace()},
				Validators:          dnsLabelValidators,
			},
			"description": schema.StringAttribute{
				MarkdownDescription: "Free text describing the project.",
				Optional:            true,
				Validators:          []validator.String{stringvalidator.LengthAtLeast(1)},
			},
			"services": schema.MapAttribute{
				MarkdownDescription: "Services by name (DNS labels): each a Kubernetes YAML stream (one or more " +
					"documents, namespaced kinds) with `${name}` placeholders. Placeholders are the built-ins " +
					"`${image}` (the service's image in a release), `${project}`, `${env}`, `${namespace}`, " +
					"`${service}`, `${version}` and `${ingress_domain}`, and the project's `variables`. Leave " +
					"`replicas` out of a Deployment an autoscaler scales.",
				ElementType: types.StringType,
				Required:    true,
				Validators:  []validator.Map{mapvalidator.SizeAtLeast(1)},
			},
			"startup_order": schema.ListAttribute{
				MarkdownDescription: "Ordered groups of service names, for example `[[\"db\"], [\"api\", \"worker\"]]`: " +
					"a release applies the groups in order and waits for each group's rollout; members of a group " +
					"roll out together. Every service appears exactly once. Without it every service is in one group.",
				ElementType: types.ListType{ElemType: types.StringType},
				Optional:    true,
				Validators:  []validator.List{listvalidator.SizeAtLeast(1)},
			},
			"image_rule": schema.StringAttribute{
				MarkdownDescription: "Image naming rule for builds, a Go template over `.Project`, `.Service`, " +
					"`.Branch`, `.Version` and `.Timestamp`. Defaults to `" + delivery.DefaultImageRule + "`.",
				Optional:   true,
				Computed:   true,
				Default:    stringdefault.StaticString(delivery.DefaultImageRule),
				Validators: []validator.String{stringvalidator.LengthAtLeast(1)},
			},
			"build_pool_labels": schema.MapAttribute{
				MarkdownDescription: "Labels that select the build hosts of this project's builds.",
				ElementType:         types.StringType,
				Optional:            true,
				Validators:          []validator.Map{mapvalidator.SizeAtLeast(1)},
			},
			"variables": schema.MapAttribute{
				MarkdownDescription: "Default values of the `${variable}` placeholders the services use; every " +
					"placeholder that is not a built-in must be declared here. Environments override values. " +
					"Sensitive: values may be credentials, and Kiln replaces them in its errors and logs.",
				ElementType: types.StringType,
				Optional:    true,
				Sensitive:   true,
				Validators:  []validator.Map{mapvalidator.SizeAtLeast(1)},
			},
			"allow_cluster_scoped": schema.BoolAttribute{
				MarkdownDescription: "Let the services hold cluster-scoped kinds (a ClusterRole, a " +
					"CustomResourceDefinition). Without it a release refuses them, so a project's YAML reaches only its " +
					"environments' namespaces. Defaults to `false`.",
				Optional: true,
				Computed: true,
				Default:  booldefault.StaticBool(false),
			},
			"control_namespace": schema.StringAttribute{
				MarkdownDescription: "Namespace holding the project's and its environments' records; created when " +
					"missing and never deleted by Kiln. Defaults to `" + delivery.DefaultControlNamespace + "`.",
				Optional:      true,
				Computed:      true,
				Default:       stringdefault.StaticString(delivery.DefaultControlNamespace),
				PlanModifiers: []planmodifier.String{stringplanmodifier.RequiresReplace()},
				Validators:    dnsLabelValidators,
			},
		},
		Blocks: map[string]schema.Block{
			"timeouts": timeouts.Block(ctx, timeouts.Opts{Create: true, Update: true, Delete: true}),
		},
	}
}

// ValidateConfig checks the project as a whole once its values are known: the
// startup order, the templates' YAML and placeholders, the image rule.
func (r *projectResource) ValidateConfig(ctx context.Context, req resource.ValidateConfigRequest, resp *resource.ValidateConfigResponse) {
	var m projectModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if m.Name.IsUnknown() || m.Services.IsUnknown() || m.StartupOrder.IsUnknown() || m.Variables.IsUnknown() || m.ImageRule.IsUnknown() {
		return
	}
	for _, el := range m.Services.Elements() {
		if el.IsUnknown() {
			return
		}
	}
	p, ok := m.toProject(ctx, &resp.Diagnostics)
	if !ok {
		return
	}
	if err := p.Validate(); err != nil {
		resp.Diagnostics.AddAttributeError(path.Root("services"), "Invalid project", err.Error())
	}
}

func (r *projectResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	r.clients = configuredClients(req.ProviderData, &resp.Diagnostics)
}

func (r *projectResource) ModifyPlan(_ context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	if req.Plan.Raw.IsNull() || r.clients == nil {
		return
	}
	requireEngine(r.clients, kubernetesBlock, &resp.Diagnostics)
}

func (m projectModel) toProject(ctx context.Context, diags *diag.Diagnostics) (delivery.Project, bool) {
	p := delivery.Project{
		Name:               m.Name.ValueString(),
		Description:        m.Description.ValueString(),
		Services:           stringMap(m.Services),
		ImageRule:          m.ImageRule.ValueString(),
		BuildPoolLabels:    stringMap(m.BuildPoolLabels),
		Variables:          stringMap(m.Variables),
		ControlNamespace:   m.ControlNamespace.ValueString(),
		AllowClusterScoped: m.AllowClusterScoped.ValueBool(),
	}
	if !m.StartupOrder.IsNull() && !m.StartupOrder.IsUnknown() {
		diags.Append(m.StartupOrder.ElementsAs(ctx, &p.StartupOrder, false)...)
	}
	if p.ControlNamespace == "" {
		p.ControlNamespace = delivery.DefaultControlNamespace
	}
	return p, !diags.HasError()
}

func fromProject(p delivery.Project, t timeouts.Value) projectModel {
	m := projectModel{
		ID:                 types.StringValue(p.Name),
		Name:               types.StringValue(p.Name),
		Description:        optionalString(p.Description),
		Services:           optionalStringMapValue(p.Services),
		StartupOrder:       types.ListNull(types.ListType{ElemType: types.StringType}),
		ImageRule:          types.StringValue(p.ImageRule),
		BuildPoolLabels:    optionalStringMapValue(p.BuildPoolLabels),
		Variables:          optionalStringMapValue(p.Variables),
		ControlNamespace:   types.StringValue(p.ControlNamespace),
		AllowClusterScoped: types.BoolValue(p.AllowClusterScoped),
		Timeouts:           t,
	}
	if len(p.StartupOrder) > 0 {
		groups := make([]attr.Value, 0, len(p.StartupOrder))
		for _, g := range p.StartupOrder {
			groups = append(groups, stringList(g))
		}
		m.StartupOrder = types.ListValueMust(types.ListType{ElemType: types.StringType}, groups)
	}
	return m
}

func (r *projectResource) write(ctx context.Context, plan projectModel, timeout func(context.Context, time.Duration) (time.Duration, diag.Diagnostics), diags *diag.Diagnostics, state *tfsdk.State, verb string) {
	engine := requireEngine(r.clients, kubernetesBlock, diags)
	if engine == nil {
		return
	}
	d, td := timeout(ctx, defaultDeliveryTimeout)
	diags.Append(td...)
	p, ok := plan.toProject(ctx, diags)
	if !ok || diags.HasError() {
		return
	}
	opCtx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	if err := engine.ApplyProject(opCtx, p); err != nil {
		diags.AddError("Could not "+verb+" project", err.Error())
		return
	}
	got, err := engine.ReadProject(opCtx, p.ControlNamespace, p.Name)
	if err != nil {
		diags.AddError("Could not read project back", err.Error())
		return
	}
	diags.Append(state.Set(ctx, fromProject(got, plan.Timeouts))...)
}

func (r *projectResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan projectModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	r.write(ctx, plan, plan.Timeouts.Create, &resp.Diagnostics, &resp.State, "create")
}

func (r *projectResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan projectModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	r.write(ctx, plan, plan.Timeouts.Update, &resp.Diagnostics, &resp.State, "update")
}

func (r *projectResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var state projectModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	engine := requireEngine(r.clients, kubernetesBlock, &resp.Diagnostics)
	if engine == nil {
		return
	}
	name := state.ID.ValueString()
	p, err := engine.ReadProject(ctx, state.ControlNamespace.ValueString(), name)
	if errors.Is(err, delivery.ErrNotFound) {
		resp.State.RemoveResource(ctx)
		return
	}
	if err != nil {
		resp.Diagnostics.AddError("Could not read project", err.Error())
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, fromProject(p, state.Timeouts))...)
}

func (r *projectResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var state projectModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	engine := requireEngine(r.clients, kubernetesBlock, &resp.Diagnostics)
	if engine == nil {
		return
	}
	d, diags := state.Timeouts.Delete(ctx, defaultDeliveryTimeout)
	resp.Diagnostics.Append(diags...)
	opCtx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	if err := engine.DeleteProject(opCtx, delivery.Project{Name: state.Name.ValueString(), ControlNamespace: state.ControlNamespace.ValueString()}); err != nil {
		resp.Diagnostics.AddError("Could not delete project", err.Error())
	}
}

// ImportState takes `<name>` or `<control_namespace>/<name>`.
func (r *projectResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	control, names, ok := importIDParts(req.ID, 1)
	if !ok {
		resp.Diagnostics.AddError("Invalid import ID", "Import a project as <name> or <control_namespace>/<name>, got "+req.ID+".")
		return
	}
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("id"), names[0])...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("control_namespace"), control)...)
}
