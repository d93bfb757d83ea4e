package provider

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-timeouts/resource/timeouts"
	"github.com/hashicorp/terraform-plugin-framework-validators/int64validator"
	"github.com/hashicorp/terraform-plugin-framework-validators/mapvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/booldefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/boolplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringdefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/tfsdk"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/kilnhq/terraform-provider-kiln/internal/delivery"
)

var (
	_ resource.ResourceWithConfigure      = (*environmentResource)(nil)
	_ resource.ResourceWithImportState    = (*environmentResource)(nil)
	_ resource.ResourceWithModifyPlan     = (*environmentResource)(nil)
	_ resource.ResourceWithValidateConfig = (*environmentResource)(nil)
)

func newEnvironmentResource() resource.Resource { return &environmentResource{} }

type environmentResource struct {
	clients *clients
}

type environmentModel struct {
	ID               types.String     `tfsdk:"id"`
	Project          types.String     `tfsdk:"project"`
	Name             types.String     `tfsdk:"name"`
	Namespace        types.String     `tfsdk:"namespace"`
	Labels           types.Map        `tfsdk:"labels"`
	Annotations      types.Map        `tfsdk:"annotations"`
	Variables        types.Map        `tfsdk:"variables"`
	IngressDomain    types.String     `tfsdk:"ingress_domain"`
	ImagePullSecret  *pullSecretModel `tfsdk:"image_pull_secret"`
	Quota            types.Map        `tfsdk:"quota"`
	LimitRange       *limitRangeModel `tfsdk:"limit_range"`
	Production       types.Bool       `tfsdk:"production"`
	ForceDestroy     types.Bool       `tfsdk:"force_destroy"`
	NamespaceCreated types.Bool       `tfsdk:"namespace_created"`
	ControlNamespace types.String     `tfsdk:"control_namespace"`
	Timeouts         timeouts.Value   `tfsdk:"timeouts"`
}

type pullSecretModel struct {
	Name              types.String `tfsdk:"name"`
	Registry          types.String `tfsdk:"registry"`
	Username          types.String `tfsdk:"username"`
	Password          types.String `tfsdk:"password"`
	PasswordWO        types.String `tfsdk:"password_wo"`
	PasswordWOVersion types.Int64  `tfsdk:"password_wo_version"`
}

type limitRangeModel struct {
	Default        types.Map `tfsdk:"default"`
	DefaultRequest types.Map `tfsdk:"default_request"`
}

func (r *environmentResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_environment"
}

func (r *environmentResource) Schema(ctx context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	replace := []planmodifier.String{stringplanmodifier.RequiresReplace()}
	nonEmptyMap := []validator.Map{mapvalidator.SizeAtLeast(1)}
	resp.Schema = schema.Schema{
		MarkdownDescription: "An environment of a project (dev, qa, prod): a namespace labelled " +
			"`app.kubernetes.io/managed-by=kiln`, `kiln.dev/project` and `kiln.dev/env`, with variables merged " +
			"over the project's, an ingress domain, an image pull secret, and optionally a ResourceQuota " +
			"(`kiln-quota`) and a LimitRange (`kiln-limits`).\n\n" +
			"Kiln creates the namespace when it does not exist (marking it with the annotation " +
			"`" + delivery.AnnotationCreatedFor + "`), and otherwise only applies its labels and annotations to it " +
			"(server-side apply, field manager `kiln`) without taking over fields another manager set: a label " +
			"another tool owns with another value (a Pod Security level, say) fails the apply instead. Everything " +
			"Kiln owns is read back, so a label, the pull secret or the quota changed out of band shows in " +
			"`terraform plan`; labels and annotations other tools add are ignored. Destroy deletes the namespace " +
			"only when Kiln's own create made it and it still carries Kiln's annotation, and refuses a " +
			"`production` environment unless `force_destroy` is set. The record is a ConfigMap " +
			"`kiln-env-<project>.<name>` in the project's control namespace. Requires the provider's " +
			"`kubernetes` block and the project to exist.",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{
				MarkdownDescription: "`<project>/<name>`.",
				Computed:            true,
				PlanModifiers:       []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"project": schema.StringAttribute{
				MarkdownDescription: "Name of the `kiln_project`.",
				Required:            true,
				PlanModifiers:       replace,
				Validators:          dnsLabelValidators,
			},
			"name": schema.StringAttribute{
				MarkdownDescription: "Environment name, for example `dev`, `qa` or `prod`.",
				Required:            true,
				PlanModifiers:       replace,
				Validators:          dnsLabelValidators,
			},
			"namespace": schema.StringAttribute{
				MarkdownDescription: "Kubernetes namespace. Defaults to `<project>-env-<name>`.",
				Optional:            true,
				Computed:            true,
				PlanModifiers:       []planmodifier.String{stringplanmodifier.UseStateForUnknown(), stringplanmodifier.RequiresReplace()},
				Validators:          dnsLabelValidators,
			},
			"labels": schema.MapAttribute{
				MarkdownDescription: "Extra labels on the namespace, besides Kiln's own three.",
				ElementType:         types.StringType,
				Optional:            true,
				Validators:          nonEmptyMap,
			},
			"annotations": schema.MapAttribute{
				MarkdownDescription: "Annotations on the namespace.",
				ElementType:         types.StringType,
				Optional:            true,
				Validators:          nonEmptyMap,
			},
			"variables": schema.MapAttribute{
				MarkdownDescription: "Values of the project's `${variable}` placeholders in this environment; they " +
					"override the project's defaults. Sensitive: values may be credentials, and Kiln replaces them " +
					"in its errors and logs.",
				ElementType: types.StringType,
				Optional:    true,
				Sensitive:   true,
				Validators:  nonEmptyMap,
			},
			"ingress_domain": schema.StringAttribute{
				MarkdownDescription: "Domain of this environment's ingresses, the `${ingress_domain}` placeholder.",
				Optional:            true,
				Validators:          []validator.String{stringvalidator.LengthAtLeast(1)},
			},
			"image_pull_secret": schema.SingleNestedAttribute{
				MarkdownDescription: "A `kubernetes.io/dockerconfigjson` Secret for one registry, in the namespace.",
				Optional:            true,
				Attributes: map[string]schema.Attribute{
					"name": schema.StringAttribute{
						MarkdownDescription: "Secret name. Defaults to `" + delivery.DefaultPullSecretName + "`.",
						Optional:            true,
						Computed:            true,
						Default:             stringdefault.StaticString(delivery.DefaultPullSecretName),
						Validators:          dnsLabelValidators,
					},
					"registry": schema.StringAttribute{
						MarkdownDescription: "Registry host, for example `registry.example.com`.",
						Required:            true,
						Validators:          []validator.String{stringvalidator.LengthAtLeast(1)},
					},
					"username": schema.StringAttribute{
						MarkdownDescription: "Registry user name.",
						Required:            true,
					},
					"password": schema.StringAttribute{
						MarkdownDescription: "Registry password or token, kept in state. Set this or `password_wo`.",
						Optional:            true,
						Sensitive:           true,
						Validators: []validator.String{stringvalidator.ExactlyOneOf(
							path.MatchRelative().AtParent().AtName("password"), path.MatchRelative().AtParent().AtName("password_wo"))},
					},
					"password_wo": schema.StringAttribute{
						MarkdownDescription: "Registry password or token, write-only: written to the Secret whenever " +
							"Kiln applies the environment, never stored in the plan or state. A new value alone plans " +
							"nothing: change `password_wo_version` with it. Needs Terraform or OpenTofu 1.11 or later.",
						Optional:   true,
						Sensitive:  true,
						WriteOnly:  true,
						Validators: []validator.String{stringvalidator.AlsoRequires(path.MatchRelative().AtParent().AtName("password_wo_version"))},
					},
					"password_wo_version": schema.Int64Attribute{
						MarkdownDescription: "Version of `password_wo`: change it to write a new password.",
						Optional:            true,
						Validators:          []validator.Int64{int64validator.AlsoRequires(path.MatchRelative().AtParent().AtName("password_wo"))},
					},
				},
			},
			"quota": schema.MapAttribute{
				MarkdownDescription: "`spec.hard` of a ResourceQuota `" + delivery.QuotaName + "`, for example " +
					"`{ pods = \"50\", \"requests.cpu\" = \"8\" }`. Use canonical quantities (`1Gi`, `500m`).",
				ElementType: types.StringType,
				Optional:    true,
				Validators:  nonEmptyMap,
			},
			"limit_range": schema.SingleNestedAttribute{
				MarkdownDescription: "Container defaults of a LimitRange `" + delivery.LimitRangeName + "`.",
				Optional:            true,
				Attributes: map[string]schema.Attribute{
					"default": schema.MapAttribute{
						MarkdownDescription: "Default limits, for example `{ cpu = \"500m\", memory = \"256Mi\" }`.",
						ElementType:         types.StringType,
						Optional:            true,
						Validators:          nonEmptyMap,
					},
					"default_request": schema.MapAttribute{
						MarkdownDescription: "Default requests.",
						ElementType:         types.StringType,
						Optional:            true,
						Validators:          nonEmptyMap,
					},
				},
			},
			"production": schema.BoolAttribute{
				MarkdownDescription: "Marks a production environment: destroying it is refused unless " +
					"`force_destroy` is set. Defaults to `false`.",
				Optional: true,
				Computed: true,
				Default:  booldefault.StaticBool(false),
			},
			"force_destroy": schema.BoolAttribute{
				MarkdownDescription: "Allow destroying a `production` environment. Defaults to `false`.",
				Optional:            true,
				Computed:            true,
				Default:             booldefault.StaticBool(false),
			},
			"namespace_created": schema.BoolAttribute{
				MarkdownDescription: "Whether Kiln's own create made the namespace (and so destroy deletes it, if " +
					"it still carries Kiln's annotation).",
				Computed:      true,
				PlanModifiers: []planmodifier.Bool{boolplanmodifier.UseStateForUnknown()},
			},
			"control_namespace": controlNamespaceAttribute(),
		},
		Blocks: map[string]schema.Block{
			"timeouts": timeouts.Block(ctx, timeouts.Opts{Create: true, Update: true, Delete: true}),
		},
	}
}

// ValidateConfig requires a limit_range to set at least one of its maps.
func (r *environmentResource) ValidateConfig(ctx context.Context, req resource.ValidateConfigRequest, resp *resource.ValidateConfigResponse) {
	var lr *limitRangeModel
	resp.Diagnostics.Append(req.Config.GetAttribute(ctx, path.Root("limit_range"), &lr)...)
	if lr != nil && lr.Default.IsNull() && lr.DefaultRequest.IsNull() {
		resp.Diagnostics.AddAttributeError(path.Root("limit_range"), "Empty limit_range",
			"Set default, default_request or both, or leave limit_range out.")
	}
}

func (r *environmentResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	r.clients = configuredClients(req.ProviderData, &resp.Diagnostics)
}

// ModifyPlan refuses to plan the destruction of a production environment
// without force_destroy, and fails when the kubernetes block is missing.
func (r *environmentResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	if req.Plan.Raw.IsNull() {
		if req.State.Raw.IsNull() {
			return
		}
		var state environmentModel
		resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
		if state.Production.ValueBool() && !state.ForceDestroy.ValueBool() {
			resp.Diagnostics.AddError("Production environment",
				fmt.Sprintf("Environment %s is a production environment; set force_destroy = true (and apply) before destroying it.", state.ID.ValueString()))
		}
		return
	}
	if r.clients != nil {
		requireEngine(r.clients, kubernetesBlock, &resp.Diagnostics)
	}
}

func (m environmentModel) toEnvironment(ctx context.Context, diags *diag.Diagnostics) delivery.Environment {
	env := delivery.Environment{
		Project:          m.Project.ValueString(),
		Name:             m.Name.ValueString(),
		Namespace:        m.Namespace.ValueString(),
		Labels:           stringMap(m.Labels),
		Annotations:      stringMap(m.Annotations),
		Variables:        stringMap(m.Variables),
		IngressDomain:    m.IngressDomain.ValueString(),
		Quota:            stringMap(m.Quota),
		Production:       m.Production.ValueBool(),
		ControlNamespace: m.ControlNamespace.ValueString(),
	}
	if m.Namespace.IsUnknown() {
		env.Namespace = ""
	}
	if ps := m.ImagePullSecret; ps != nil {
		env.PullSecret = &delivery.PullSecret{Name: ps.Name.ValueString(), Registry: ps.Registry.ValueString(),
			Username: ps.Username.ValueString(), Password: ps.Password.ValueString()}
	}
	if lr := m.LimitRange; lr != nil {
		env.LimitDefaults = stringMap(lr.Default)
		env.LimitDefaultRequests = stringMap(lr.DefaultRequest)
	}
	return env
}

func fromEnvironment(env delivery.Environment, prior environmentModel) environmentModel {
	m := environmentModel{
		ID:               types.StringValue(env.Project + "/" + env.Name),
		Project:          types.StringValue(env.Project),
		Name:             types.StringValue(env.Name),
		Namespace:        types.StringValue(env.Namespace),
		Labels:           optionalStringMapValue(env.Labels),
		Annotations:      optionalStringMapValue(env.Annotations),
		Variables:        optionalStringMapValue(env.Variables),
		IngressDomain:    optionalString(env.IngressDomain),
		Quota:            optionalStringMapValue(env.Quota),
		Production:       types.BoolValue(env.Production),
		ForceDestroy:     prior.ForceDestroy,
		NamespaceCreated: types.BoolValue(env.NamespaceCreated),
		ControlNamespace: types.StringValue(env.ControlNamespace),
		Timeouts:         prior.Timeouts,
	}
	if m.ForceDestroy.IsNull() || m.ForceDestroy.IsUnknown() {
		m.ForceDestroy = types.BoolValue(false)
	}
	if env.Quota != nil && len(env.Quota) == 0 {
		// The quota was deleted out of band: show it as gone.
		m.Quota = types.MapNull(types.StringType)
	}
	if ps := env.PullSecret; ps != nil {
		m.ImagePullSecret = &pullSecretModel{Name: types.StringValue(ps.Name), Registry: types.StringValue(ps.Registry),
			Username: types.StringValue(ps.Username), Password: types.StringValue(ps.Password),
			PasswordWO: types.StringNull(), PasswordWOVersion: types.Int64Null()}
		// A write-only password never reaches the state, not even read back.
		if prior.ImagePullSecret != nil && !prior.ImagePullSecret.PasswordWOVersion.IsNull() {
			m.ImagePullSecret.Password = types.StringNull()
			m.ImagePullSecret.PasswordWOVersion = prior.ImagePullSecret.PasswordWOVersion
		}
	}
	if env.LimitDefaults != nil || env.LimitDefaultRequests != nil {
		m.LimitRange = &limitRangeModel{Default: optionalStringMapValue(env.LimitDefaults), DefaultRequest: optionalStringMapValue(env.LimitDefaultRequests)}
	}
	return m
}

func (r *environmentResource) write(ctx context.Context, plan environmentModel, config tfsdk.Config, prev *delivery.Environment, timeout time.Duration, diags *diag.Diagnostics, state *tfsdk.State, verb string) {
	engine := requireEngine(r.clients, kubernetesBlock, diags)
	if engine == nil {
		return
	}
	env := plan.toEnvironment(ctx, diags)
	if env.PullSecret != nil && env.PullSecret.Password == "" {
		// Write-only: only the configuration holds it, never the plan.
		var wo types.String
		diags.Append(config.GetAttribute(ctx, path.Root("image_pull_secret").AtName("password_wo"), &wo)...)
		env.PullSecret.Password = wo.ValueString()
	}
	if diags.HasError() {
		return
	}
	opCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	got, err := engine.ApplyEnvironment(opCtx, env, prev)
	if err != nil {
		diags.AddError("Could not "+verb+" environment", err.Error())
		return
	}
	diags.Append(state.Set(ctx, fromEnvironment(got, plan))...)
}

func (r *environmentResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan environmentModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	d, diags := plan.Timeouts.Create(ctx, defaultDeliveryTimeout)
	resp.Diagnostics.Append(diags...)
	r.write(ctx, plan, req.Config, nil, d, &resp.Diagnostics, &resp.State, "create")
}

func (r *environmentResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan, state environmentModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	d, diags := plan.Timeouts.Update(ctx, defaultDeliveryTimeout)
	resp.Diagnostics.Append(diags...)
	prev := state.toEnvironment(ctx, &resp.Diagnostics)
	prev.NamespaceCreated = state.NamespaceCreated.ValueBool()
	r.write(ctx, plan, req.Config, &prev, d, &resp.Diagnostics, &resp.State, "update")
}

func (r *environmentResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var state environmentModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	engine := requireEngine(r.clients, kubernetesBlock, &resp.Diagnostics)
	if engine == nil {
		return
	}
	env, err := engine.ReadEnvironment(ctx, state.ControlNamespace.ValueString(), state.Project.ValueString(), state.Name.ValueString())
	if errors.Is(err, delivery.ErrNotFound) {
		resp.State.RemoveResource(ctx)
		return
	}
	if err != nil {
		resp.Diagnostics.AddError("Could not read environment", err.Error())
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, fromEnvironment(env, state))...)
}

func (r *environmentResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var state environmentModel
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
	env := state.toEnvironment(ctx, &resp.Diagnostics)
	env.NamespaceCreated = state.NamespaceCreated.ValueBool()
	if err := engine.DeleteEnvironment(opCtx, env, state.ForceDestroy.ValueBool()); err != nil {
		resp.Diagnostics.AddError("Could not delete environment", err.Error())
	}
}

// ImportState takes `<project>/<name>` or `<control_namespace>/<project>/<name>`.
func (r *environmentResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	control, names, ok := importIDParts(req.ID, 2)
	if !ok {
		resp.Diagnostics.AddError("Invalid import ID", "Import an environment as <project>/<name> or "+
			"<control_namespace>/<project>/<name>, got "+req.ID+".")
		return
	}
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("id"), names[0]+"/"+names[1])...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("project"), names[0])...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("name"), names[1])...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("control_namespace"), control)...)
}
