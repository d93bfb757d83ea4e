package provider

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-timeouts/resource/timeouts"
	"github.com/hashicorp/terraform-plugin-framework-timetypes/timetypes"
	"github.com/hashicorp/terraform-plugin-framework-validators/int64validator"
	"github.com/hashicorp/terraform-plugin-framework-validators/listvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/mapvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/booldefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/int64default"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/kilnhq/terraform-provider-kiln/internal/delivery"
	"github.com/kilnhq/terraform-provider-kiln/internal/delivery/history"
	"github.com/kilnhq/terraform-provider-kiln/internal/kube"
)

var (
	_ resource.ResourceWithConfigure   = (*releaseResource)(nil)
	_ resource.ResourceWithImportState = (*releaseResource)(nil)
	_ resource.ResourceWithModifyPlan  = (*releaseResource)(nil)
)

func newReleaseResource() resource.Resource { return &releaseResource{} }

type releaseResource struct {
	clients *clients
}

type releaseModel struct {
	ID                types.String   `tfsdk:"id"`
	Project           types.String   `tfsdk:"project"`
	Environment       types.String   `tfsdk:"environment"`
	Version           types.String   `tfsdk:"version"`
	Services          types.Map      `tfsdk:"services"`
	OnlyServices      types.List     `tfsdk:"only_services"`
	ForceConflicts    types.Bool     `tfsdk:"force_conflicts"`
	RollbackOnFailure types.Bool     `tfsdk:"rollback_on_failure"`
	HistoryLimit      types.Int64    `tfsdk:"history_limit"`
	RolloutTimeout    goDuration     `tfsdk:"rollout_timeout"`
	Namespace         types.String   `tfsdk:"namespace"`
	Revision          types.Int64    `tfsdk:"revision"`
	Status            types.String   `tfsdk:"status"`
	DeployedImages    types.Map      `tfsdk:"deployed_images"`
	Drift             types.List     `tfsdk:"drift"`
	ControlNamespace  types.String   `tfsdk:"control_namespace"`
	Timeouts          timeouts.Value `tfsdk:"timeouts"`
}

const defaultReleaseTimeout = 30 * time.Minute

const defaultRolloutTimeout = "5m"

func (r *releaseResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_release"
}

func (r *releaseResource) Schema(ctx context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	replace := []planmodifier.String{stringplanmodifier.RequiresReplace()}
	resp.Schema = schema.Schema{
		MarkdownDescription: "A release (a version) of a project in one environment, like a Helm release: each " +
			"service's YAML is rendered with the environment's variables and the release's images, and applied " +
			"with server-side apply (field manager `kiln`) startup group by startup group, waiting for each " +
			"group's Deployments, StatefulSets and DaemonSets to roll out. Objects that left the render are deleted. " +
			"A field another manager owns is a conflict that fails the apply unless `force_conflicts` is set; " +
			"fields Kiln owned in the deployed revision and someone edited out of band are taken back. Replicas " +
			"another manager set through the `scale` subresource (a HorizontalPodAutoscaler, `kubectl scale`) are " +
			"the scaler's even when the YAML sets `replicas`: Kiln's apply leaves them out, with `force_conflicts` " +
			"and in a rollback too, so it never scales the workload back.\n\n" +
			"Every apply writes a revision to the history, one Secret per revision in the project's control " +
			"namespace, where only Kiln's identity writes (type `" + history.SecretType + "`, labelled `owner=kiln`, " +
			"`kiln.dev/project`, `kiln.dev/env`, `status` and `revision`, holding gzip-compressed JSON of the render, " +
			"images, times and the objects applied with their UIDs; a record over one Secret's 1 MiB continues in " +
			"`<name>.part<i>` Secrets); the previous deployed revision becomes `superseded`, a failed one `failed`. " +
			"With `rollback_on_failure` a failed rollout restores the last deployed revision as a new revision.\n\n" +
			"Trust: objects that left the render are deleted only if the history recorded them (the deployed " +
			"revision and the revisions that failed since) and they are still what Kiln applied: in the " +
			"environment's namespace, with Kiln's labels for the environment and the UID recorded. Anything else, " +
			"and any record Kiln cannot read, is left alone with a warning. Images must be image references; " +
			"variables and images are placed into the parsed YAML's values, never into its text, and " +
			"cluster-scoped kinds are refused unless the project sets `allow_cluster_scoped`.\n\n" +
			"Drift: the fields Kiln's field manager owned after the apply are compared with the live objects, so " +
			"an image changed by hand (`kubectl set image` or `kubectl edit`: an update by another manager) or a " +
			"deleted Deployment shows in `terraform plan` (as `drift`). Fields other actors own never do: fields " +
			"they add (annotations), fields another manager took by server-side apply, and fields another manager " +
			"set through the `scale` subresource (replicas an autoscaler or `kubectl scale` sets). One " +
			"`kiln_release` per project environment; requires the provider's `kubernetes` block.",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{
				MarkdownDescription: "`<project>/<environment>`.",
				Computed:            true,
				PlanModifiers:       []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"project": schema.StringAttribute{
				MarkdownDescription: "Name of the `kiln_project`.",
				Required:            true,
				PlanModifiers:       replace,
				Validators:          dnsLabelValidators,
			},
			"environment": schema.StringAttribute{
				MarkdownDescription: "Name of the `kiln_environment`.",
				Required:            true,
				PlanModifiers:       replace,
				Validators:          dnsLabelValidators,
			},
			"version": schema.StringAttribute{
				MarkdownDescription: "Version name of the release, the `${version}` placeholder; recorded in the history. " +
					"Without `services`, the name of the `kiln_version` to release (`kiln_version.<name>.name`): its " +
					"images, in its startup order.",
				Required: true,
				Validators: []validator.String{stringvalidator.LengthBetween(1, 63),
					stringvalidator.RegexMatches(regexp.MustCompile(`^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$`), "must be a valid label value")},
			},
			"services": schema.MapAttribute{
				MarkdownDescription: "Images by service name, the services' `${image}` placeholder: image references " +
					"(`registry/repository:tag` or `@sha256:...`). A service whose YAML uses `${image}` needs one. " +
					"Give either `services` or, leaving it out, a `kiln_version`'s name in `version`.",
				ElementType: types.StringType,
				Optional:    true,
				Validators:  []validator.Map{mapvalidator.SizeAtLeast(1), mapvalidator.ValueStringsAre(imageReference{})},
			},
			"only_services": schema.ListAttribute{
				MarkdownDescription: "Release only these services; the others keep what the last deployed " +
					"revision gave them. Defaults to every service of the project.",
				ElementType: types.StringType,
				Optional:    true,
				Validators:  []validator.List{listvalidator.SizeAtLeast(1), listvalidator.UniqueValues()},
			},
			"force_conflicts": schema.BoolAttribute{
				MarkdownDescription: "Take over fields another field manager owns instead of failing on the " +
					"conflict. Defaults to `false`.",
				Optional: true,
				Computed: true,
				Default:  booldefault.StaticBool(false),
			},
			"rollback_on_failure": schema.BoolAttribute{
				MarkdownDescription: "When a rollout fails, restore the last deployed revision (written as a new " +
					"revision); the apply still fails. Defaults to `false`.",
				Optional: true,
				Computed: true,
				Default:  booldefault.StaticBool(false),
			},
			"history_limit": schema.Int64Attribute{
				MarkdownDescription: "Revisions kept in the history. Defaults to `10`.",
				Optional:            true,
				Computed:            true,
				Default:             int64default.StaticInt64(delivery.DefaultHistoryLimit),
				Validators:          []validator.Int64{int64validator.Between(1, 1000)},
			},
			"rollout_timeout": durationAttribute("How long each startup group may take to roll out, a Go duration; a rollback "+
				"waits at least `1m` per group.", defaultRolloutTimeout),
			"namespace": schema.StringAttribute{
				MarkdownDescription: "The environment's namespace.",
				Computed:            true,
				PlanModifiers:       []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"revision": schema.Int64Attribute{
				MarkdownDescription: "The deployed revision.",
				Computed:            true,
			},
			"status": schema.StringAttribute{
				MarkdownDescription: "Status of the deployed revision (`deployed`).",
				Computed:            true,
				// Every successful apply leaves a deployed revision.
				PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"deployed_images": schema.MapAttribute{
				MarkdownDescription: "Images of every service in the deployed revision: those of `services` and, " +
					"for an `only_services` release, those the other services keep.",
				ElementType: types.StringType,
				Computed:    true,
			},
			"control_namespace": controlNamespaceAttribute(),
			"drift": schema.ListAttribute{
				MarkdownDescription: "Fields Kiln owns that differ in the cluster from the deployed revision, " +
					"one line each; planned empty, so drift shows in the plan and apply restores the fields. Fields " +
					"another manager took by server-side apply or set through the `scale` subresource (replicas) " +
					"are not drift.",
				ElementType: types.StringType,
				Computed:    true,
			},
		},
		Blocks: map[string]schema.Block{
			"timeouts": timeouts.Block(ctx, timeouts.Opts{Create: true, Update: true, Delete: true}),
		},
	}
}

func (r *releaseResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	r.clients = configuredClients(req.ProviderData, &resp.Diagnostics)
}

func (m releaseModel) spec(ctx context.Context, diags *diag.Diagnostics) delivery.ReleaseSpec {
	s := delivery.ReleaseSpec{
		ControlNamespace:  m.ControlNamespace.ValueString(),
		Project:           m.Project.ValueString(),
		Env:               m.Environment.ValueString(),
		Version:           m.Version.ValueString(),
		Images:            stringMap(m.Services),
		FromVersion:       m.Services.IsNull(),
		ForceConflicts:    m.ForceConflicts.ValueBool(),
		RollbackOnFailure: m.RollbackOnFailure.ValueBool(),
		HistoryLimit:      int(m.HistoryLimit.ValueInt64()),
	}
	if !m.OnlyServices.IsNull() && !m.OnlyServices.IsUnknown() {
		diags.Append(m.OnlyServices.ElementsAs(ctx, &s.Only, false)...)
	}
	if d, err := time.ParseDuration(m.RolloutTimeout.ValueString()); err == nil {
		s.RolloutTimeout = d
	}
	return s
}

// ModifyPlan renders the release at plan time when its project and environment
// already exist (so unknown services, missing images or variables fail the
// plan), plans drift away (a non-empty drift makes the release update) and
// plans the deployed images.
func (r *releaseResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	if req.Plan.Raw.IsNull() || r.clients == nil {
		return
	}
	engine := requireEngine(r.clients, kubernetesBlock, &resp.Diagnostics)
	if engine == nil {
		return
	}
	var plan releaseModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	resp.Diagnostics.Append(resp.Plan.SetAttribute(ctx, path.Root("drift"), types.ListValueMust(types.StringType, nil))...)
	prior := types.MapNull(types.StringType)
	if !req.State.Raw.IsNull() {
		var state releaseModel
		resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
		prior = state.DeployedImages
		if len(state.Drift.Elements()) > 0 || plan.versionMoved(ctx, engine, state) {
			resp.Plan.SetAttribute(ctx, path.Root("revision"), types.Int64Unknown())
			plan.DeployedImages = types.MapUnknown(types.StringType)
		}
	}
	if plan.DeployedImages.IsUnknown() {
		resp.Diagnostics.Append(resp.Plan.SetAttribute(ctx, path.Root("deployed_images"), plan.deployedImages(prior))...)
	}
	known := !plan.Project.IsUnknown() && !plan.Environment.IsUnknown() && !plan.Version.IsUnknown() &&
		!plan.Services.IsUnknown() && !plan.OnlyServices.IsUnknown()
	for _, v := range plan.Services.Elements() {
		known = known && !v.IsUnknown()
	}
	if !known {
		return
	}
	err := engine.Plan(ctx, plan.spec(ctx, &resp.Diagnostics))
	switch {
	case errors.Is(err, delivery.ErrNotFound):
		// The project or environment is created by this apply: rendered then.
	case err != nil:
		// Without services the images come from the version.
		at := path.Root("services")
		if plan.Services.IsNull() {
			at = path.Root("version")
		}
		resp.Diagnostics.AddAttributeError(at, "Release does not render", err.Error())
	}
}

// deployedImages predicts deployed_images instead of leaving it unknown on
// every update, so what references it does not change needlessly: a release
// deploys the images of services; a subset release (only_services) keeps the
// other images of the deployed revision (prior, the state's).
func (m releaseModel) deployedImages(prior types.Map) types.Map {
	unknown := types.MapUnknown(types.StringType)
	// A version's images are known once it is read at apply: it may be
	// replaced under the same name in the same apply.
	if m.Services.IsNull() || m.Services.IsUnknown() || m.OnlyServices.IsUnknown() {
		return unknown
	}
	images := map[string]attr.Value{}
	if !m.OnlyServices.IsNull() {
		if prior.IsNull() || prior.IsUnknown() {
			return unknown
		}
		maps.Copy(images, prior.Elements())
	}
	for k, v := range m.Services.Elements() {
		if v.IsNull() || v.IsUnknown() {
			return unknown
		}
		images[k] = v
	}
	return types.MapValueMust(types.StringType, images)
}

// versionMoved reports whether the version a release deploys holds images
// other than the deployed ones (it was replaced under the same name since).
func (m releaseModel) versionMoved(ctx context.Context, engine *delivery.Engine, state releaseModel) bool {
	if !m.Services.IsNull() || m.Project.IsUnknown() || m.Version.IsUnknown() || m.ControlNamespace.IsUnknown() {
		return false
	}
	v, err := engine.ReadVersion(ctx, m.ControlNamespace.ValueString(), m.Project.ValueString(), m.Version.ValueString())
	if err != nil {
		// A version not made yet, or gone, is the apply's to report.
		return false
	}
	deployed := stringMap(state.DeployedImages)
	for s, image := range v.Images {
		if deployed[s] != image {
			return true
		}
	}
	return false
}

func fromRecord(rec *history.Record, drift []string, prior releaseModel) releaseModel {
	m := prior
	m.ID = types.StringValue(rec.Project + "/" + rec.Env)
	m.Project, m.Environment = types.StringValue(rec.Project), types.StringValue(rec.Env)
	m.Version = types.StringValue(rec.Version)
	m.Namespace = types.StringValue(rec.Namespace)
	m.Revision = types.Int64Value(int64(rec.Revision))
	m.Status = types.StringValue(rec.Status)
	m.DeployedImages = optionalStringMapValue(rec.Images)
	if m.DeployedImages.IsNull() {
		m.DeployedImages = types.MapValueMust(types.StringType, nil)
	}
	m.Drift = stringList(drift)
	if m.ControlNamespace.IsNull() || m.ControlNamespace.IsUnknown() {
		m.ControlNamespace = types.StringValue(delivery.DefaultControlNamespace)
	}
	// services reads back the images of the services the configuration names
	// (all of them after an import).
	images := map[string]string{}
	switch {
	case rec.FromVersion:
		// The version gave the images: services stays unset.
	case prior.Services.IsNull() || prior.Services.IsUnknown():
		images = rec.Images
	default:
		for k := range prior.Services.Elements() {
			if img, ok := rec.Images[k]; ok {
				images[k] = img
			}
		}
	}
	m.Services = optionalStringMapValue(images)
	if m.ForceConflicts.IsNull() {
		m.ForceConflicts = types.BoolValue(false)
	}
	if m.RollbackOnFailure.IsNull() {
		m.RollbackOnFailure = types.BoolValue(false)
	}
	if m.HistoryLimit.IsNull() {
		m.HistoryLimit = types.Int64Value(delivery.DefaultHistoryLimit)
	}
	if m.RolloutTimeout.IsNull() {
		m.RolloutTimeout = timetypes.NewGoDurationValueFromStringMust(defaultRolloutTimeout)
	}
	if m.OnlyServices.IsUnknown() {
		m.OnlyServices = types.ListNull(types.StringType)
	}
	return m
}

func (r *releaseResource) deploy(ctx context.Context, plan releaseModel, timeout time.Duration, diags *diag.Diagnostics) *history.Record {
	engine := requireEngine(r.clients, kubernetesBlock, diags)
	if engine == nil {
		return nil
	}
	spec := plan.spec(ctx, diags)
	if diags.HasError() {
		return nil
	}
	opCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	rec, warnings, err := engine.Deploy(opCtx, spec)
	addWarnings(diags, warnings)
	if err != nil {
		var conflict *kube.ConflictError
		if errors.As(err, &conflict) {
			diags.AddError("Release conflicts with another field manager", err.Error()+
				"\n\nSet force_conflicts = true to take those fields over.")
			return nil
		}
		diags.AddError("Release failed", err.Error())
		return nil
	}
	return rec
}

func (r *releaseResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan releaseModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	d, diags := plan.Timeouts.Create(ctx, defaultReleaseTimeout)
	resp.Diagnostics.Append(diags...)
	if rec := r.deploy(ctx, plan, d, &resp.Diagnostics); rec != nil {
		resp.Diagnostics.Append(resp.State.Set(ctx, fromRecord(rec, nil, plan))...)
	}
}

func (r *releaseResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan releaseModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	d, diags := plan.Timeouts.Update(ctx, defaultReleaseTimeout)
	resp.Diagnostics.Append(diags...)
	if rec := r.deploy(ctx, plan, d, &resp.Diagnostics); rec != nil {
		resp.Diagnostics.Append(resp.State.Set(ctx, fromRecord(rec, nil, plan))...)
	}
}

func (r *releaseResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var state releaseModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	engine := requireEngine(r.clients, kubernetesBlock, &resp.Diagnostics)
	if engine == nil {
		return
	}
	st, err := engine.ReadRelease(ctx, state.ControlNamespace.ValueString(), state.Project.ValueString(), state.Environment.ValueString())
	if errors.Is(err, delivery.ErrNotFound) {
		resp.State.RemoveResource(ctx)
		return
	}
	if err != nil {
		resp.Diagnostics.AddError("Could not read release", err.Error())
		return
	}
	addWarnings(&resp.Diagnostics, st.Warnings)
	resp.Diagnostics.Append(resp.State.Set(ctx, fromRecord(st.Record, st.Drift, state))...)
}

func (r *releaseResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var state releaseModel
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
	warnings, err := engine.DeleteRelease(opCtx, state.ControlNamespace.ValueString(), state.Project.ValueString(), state.Environment.ValueString())
	addWarnings(&resp.Diagnostics, warnings)
	if err != nil {
		resp.Diagnostics.AddError("Could not delete release", err.Error())
	}
}

// ImportState takes `<project>/<environment>` or `<control_namespace>/<project>/<environment>`.
func (r *releaseResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	control, names, ok := importIDParts(req.ID, 2)
	if !ok {
		resp.Diagnostics.AddError("Invalid import ID", fmt.Sprintf("Import a release as <project>/<environment> or "+
			"<control_namespace>/<project>/<environment>, got %q.", req.ID))
		return
	}
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("id"), names[0]+"/"+names[1])...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("project"), names[0])...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("environment"), names[1])...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("control_namespace"), control)...)
}

// imageReference checks that a string is an image reference (registry,
// repository, tag or digest), so that an image can never carry YAML.
type imageReference struct{}

func (imageReference) Description(context.Context) string {
	return "must be an image reference such as registry.example.com/app:1.0 or app@sha256:..."
}

func (v imageReference) MarkdownDescription(ctx context.Context) string { return v.Description(ctx) }

func (imageReference) ValidateString(_ context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	if err := delivery.ValidImage(req.ConfigValue.ValueString()); err != nil {
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid image reference", err.Error())
	}
}
