package provider

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/hashicorp/terraform-plugin-framework-timeouts/resource/timeouts"
	"github.com/hashicorp/terraform-plugin-framework-validators/mapvalidator"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/mapplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/kilnhq/terraform-provider-kiln/internal/delivery"
	"github.com/kilnhq/terraform-provider-kiln/internal/oci"
)

var (
	_ resource.ResourceWithConfigure   = (*versionResource)(nil)
	_ resource.ResourceWithImportState = (*versionResource)(nil)
	_ resource.ResourceWithModifyPlan  = (*versionResource)(nil)
)

func newVersionResource() resource.Resource { return &versionResource{} }

type versionResource struct {
	clients *clients
}

type versionModel struct {
	ID               types.String   `tfsdk:"id"`
	Project          types.String   `tfsdk:"project"`
	Name             types.String   `tfsdk:"name"`
	Description      types.String   `tfsdk:"description"`
	Labels           types.Map      `tfsdk:"labels"`
	Services         types.Map      `tfsdk:"services"`
	DistributeTo     types.String   `tfsdk:"distribute_to"`
	ControlNamespace types.String   `tfsdk:"control_namespace"`
	Images           types.Map      `tfsdk:"images"`
	StartupOrder     types.List     `tfsdk:"startup_order"`
	Drift            types.List     `tfsdk:"drift"`
	Timeouts         timeouts.Value `tfsdk:"timeouts"`
}

var startupOrderType = types.ListType{ElemType: types.StringType}

func (r *versionResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_version"
}

func (r *versionResource) Schema(ctx context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	replace := []planmodifier.String{stringplanmodifier.RequiresReplace()}
	resp.Schema = schema.Schema{
		MarkdownDescription: "A delivery version (ZadigX's version): a named, immutable set of images pinned by digest, " +
			"with the project's startup order as it was when the version was made. Release it with " +
			"`kiln_release` and `version = kiln_version.<name>.name` (and no `services`): the release deploys " +
			"these digests in this startup order, and its history records the version.\n\n" +
			"Every input is immutable: changing one replaces the version (destroy before create: the name is " +
			"taken until the old version is gone). Version names are unique per project: creating a version " +
			"of a name the project already has fails, naming `name`. A release plans with the version it reads, " +
			"so a version replaced under the same name reaches its releases at the next plan; a new name " +
			"reaches them in the same apply. An " +
			"image given by tag is resolved to its digest at the plan that creates the version (one HEAD " +
			"request; the provider's `registry` credentials are sent to that registry only); a tag that does " +
			"not resolve fails the plan, naming the service. Later moves of the tag do not change the version.\n\n" +
			"The version is kept as a ConfigMap `kiln-version-<project>.<name>` labelled `kiln.dev/kind=version` " +
			"in the project's control namespace, where only Kiln's identity writes, and read back from there by " +
			"name: a deleted record makes the plan create the version again, and a record edited out of band " +
			"shows in `drift` and is written back by the next apply. Deleting the version deletes its record; " +
			"the images, distributed or not, stay in their registries. Requires the provider's `kubernetes` block.",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{
				MarkdownDescription: "`<project>/<name>`.",
				Computed:            true,
				PlanModifiers:       []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"project": schema.StringAttribute{
				MarkdownDescription: "Name of the `kiln_project`; it must exist when the version is created.",
				Required:            true,
				PlanModifiers:       replace,
				Validators:          dnsLabelValidators,
			},
			"name": schema.StringAttribute{
				MarkdownDescription: "Version name, unique in the project: lower-case letters, digits, `-` and `.`, " +
					"at most 63 characters (`v1.2.0`). Releases of the version carry it as their `version` (the " +
					"`${version}` placeholder) and distributed images as their tag.",
				Required:      true,
				PlanModifiers: replace,
				Validators:    []validator.String{stringCheck{"must be a version name", delivery.CheckVersionName}},
			},
			"description": schema.StringAttribute{
				MarkdownDescription: "What the version is.",
				Optional:            true,
				PlanModifiers:       replace,
			},
			"labels": schema.MapAttribute{
				MarkdownDescription: "Labels of the version (ZadigX's version labels, such as `stable = \"true\"`).",
				ElementType:         types.StringType,
				Optional:            true,
				PlanModifiers:       []planmodifier.Map{mapplanmodifier.RequiresReplace()},
				Validators:          []validator.Map{mapvalidator.SizeAtLeast(1)},
			},
			"services": schema.MapAttribute{
				MarkdownDescription: "Images by service name, each a service of the project: pinned by digest " +
					"(`registry/repository@sha256:…`, such as `kiln_build.<name>.image_ref`), or a tag, resolved to " +
					"its digest at plan time. The version holds the digests only.",
				ElementType:   types.StringType,
				Required:      true,
				PlanModifiers: []planmodifier.Map{mapplanmodifier.RequiresReplace()},
				Validators:    []validator.Map{mapvalidator.SizeAtLeast(1), mapvalidator.ValueStringsAre(imageReference{})},
			},
			"distribute_to": schema.StringAttribute{
				MarkdownDescription: "A repository (`registry.example.com/releases`) to copy the images to when the " +
					"version is created: each service's image goes to `<distribute_to>/<service>` under the same " +
					"digest, tagged with the version name, and `images` names those copies.",
				Optional:      true,
				PlanModifiers: replace,
				Validators:    []validator.String{stringCheck{"must be a repository", oci.CheckRepository}},
			},
			"control_namespace": controlNamespaceAttribute(),
			"images": schema.MapAttribute{
				MarkdownDescription: "What a release of the version deploys: each service's image pinned by digest, " +
					"in `distribute_to` when it is set.",
				ElementType: types.StringType,
				Computed:    true,
			},
			"startup_order": schema.ListAttribute{
				MarkdownDescription: "The project's startup order when the version was created, every service of " +
					"the project in it; a release of the version applies in this order (services the project " +
					"gained since come last, in the project's order).",
				ElementType: startupOrderType,
				Computed:    true,
			},
			"drift": schema.ListAttribute{
				MarkdownDescription: "How the record in the control namespace differs from the version Kiln wrote, " +
					"one line each; planned empty, so an edit out of band shows in the plan and apply writes the " +
					"version back.",
				ElementType: types.StringType,
				Computed:    true,
			},
		},
		Blocks: map[string]schema.Block{
			"timeouts": timeouts.Block(ctx, timeouts.Opts{Create: true, Update: true, Delete: true}),
		},
	}
}

func (r *versionResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	r.clients = configuredClients(req.ProviderData, &resp.Diagnostics)
}

// registry resolves and copies images: the provider's registry, whose
// credentials go to its host only, or anonymous access.
func (r *versionResource) registry() oci.Registry {
	if r.clients != nil && r.clients.registry != nil {
		return *r.clients.registry
	}
	return oci.Registry{}
}

func (m versionModel) toVersion(ctx context.Context, diags *diag.Diagnostics) delivery.Version {
	v := delivery.Version{
		Project:          m.Project.ValueString(),
		Name:             m.Name.ValueString(),
		ControlNamespace: m.ControlNamespace.ValueString(),
		Description:      m.Description.ValueString(),
		Labels:           stringMap(m.Labels),
		Services:         stringMap(m.Services),
		Images:           stringMap(m.Images),
		DistributeTo:     m.DistributeTo.ValueString(),
	}
	if !m.StartupOrder.IsNull() && !m.StartupOrder.IsUnknown() {
		diags.Append(m.StartupOrder.ElementsAs(ctx, &v.StartupOrder, false)...)
	}
	return v
}

func fromVersion(v delivery.Version, t timeouts.Value) versionModel {
	groups := make([]attr.Value, 0, len(v.StartupOrder))
	for _, g := range v.StartupOrder {
		groups = append(groups, stringList(g))
	}
	return versionModel{
		ID:               types.StringValue(v.Project + "/" + v.Name),
		Project:          types.StringValue(v.Project),
		Name:             types.StringValue(v.Name),
		Description:      optionalString(v.Description),
		Labels:           optionalStringMapValue(v.Labels),
		Services:         stringMapValue(v.Services),
		DistributeTo:     optionalString(v.DistributeTo),
		ControlNamespace: types.StringValue(v.ControlNamespace),
		Images:           stringMapValue(v.Images),
		StartupOrder:     types.ListValueMust(startupOrderType, groups),
		Drift:            stringList(nil),
		Timeouts:         t,
	}
}

// sameInputs reports whether a plan keeps every input of the version in
// state, so that the version is neither created nor replaced.
func (m versionModel) sameInputs(state versionModel) bool {
	return m.Project.Equal(state.Project) && m.Name.Equal(state.Name) && m.Description.Equal(state.Description) &&
		m.Labels.Equal(state.Labels) && m.Services.Equal(state.Services) && m.DistributeTo.Equal(state.DistributeTo) &&
		m.ControlNamespace.Equal(state.ControlNamespace)
}

// ModifyPlan pins the images of a version being created (a tag that does not
// resolve fails the plan, naming the service), checks that the project has
// the services, and plans drift away. Whether the name is free is the
// create's to check: the plan of a replacement is a create's too, made while
// the version it replaces still holds the name.
func (r *versionResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	if req.Plan.Raw.IsNull() || r.clients == nil {
		return
	}
	engine := requireEngine(r.clients, kubernetesBlock, &resp.Diagnostics)
	if engine == nil {
		return
	}
	var plan versionModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	resp.Diagnostics.Append(resp.Plan.SetAttribute(ctx, path.Root("drift"), stringList(nil))...)
	if !req.State.Raw.IsNull() {
		var state versionModel
		resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
		if plan.sameInputs(state) {
			return
		}
	}
	if plan.Project.IsUnknown() || plan.Name.IsUnknown() || plan.ControlNamespace.IsUnknown() {
		return
	}
	resp.Diagnostics.Append(resp.Plan.SetAttribute(ctx, path.Root("id"), plan.Project.ValueString()+"/"+plan.Name.ValueString())...)
	v := plan.toVersion(ctx, &resp.Diagnostics)
	if plan.Services.IsUnknown() {
		return
	}
	if err := engine.CheckServices(ctx, v); err != nil {
		resp.Diagnostics.AddAttributeError(path.Root("services"), "Version names an unknown service", err.Error())
		return
	}
	if plan.DistributeTo.IsUnknown() {
		return
	}
	images, known := r.pin(ctx, plan.Services, v.DistributeTo, &resp.Diagnostics)
	if known {
		resp.Diagnostics.Append(resp.Plan.SetAttribute(ctx, path.Root("images"), stringMapValue(images))...)
	}
}

// pin resolves services to the images a version holds: each pinned by digest,
// in distribute_to when that is set. known is false while an image is unknown.
func (r *versionResource) pin(ctx context.Context, services types.Map, distributeTo string, diags *diag.Diagnostics) (images map[string]string, known bool) {
	images = map[string]string{}
	reg := r.registry()
	names := make([]string, 0, len(services.Elements()))
	for s := range services.Elements() {
		names = append(names, s)
	}
	sort.Strings(names)
	known = true
	for _, s := range names {
		v, ok := services.Elements()[s].(types.String)
		if !ok || v.IsUnknown() || v.IsNull() {
			known = false
			continue
		}
		at := path.Root("services").AtMapKey(s)
		pinned, err := reg.Pin(ctx, v.ValueString())
		if err != nil {
			diags.AddAttributeError(at, "Image does not resolve to a digest",
				fmt.Sprintf("services[%q]: a version holds images pinned by digest, and %s", s, err))
			continue
		}
		if distributeTo == "" {
			images[s] = pinned
			continue
		}
		digest, err := oci.DigestOf(pinned)
		if err == nil {
			images[s], err = oci.AtDigest(delivery.DistributedRepository(distributeTo, s), digest)
		}
		if err != nil {
			diags.AddAttributeError(at, "Invalid image", err.Error())
		}
	}
	return images, known && !diags.HasError()
}

func (r *versionResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan versionModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	engine := requireEngine(r.clients, kubernetesBlock, &resp.Diagnostics)
	if engine == nil {
		return
	}
	d, diags := plan.Timeouts.Create(ctx, defaultDeliveryTimeout)
	resp.Diagnostics.Append(diags...)
	opCtx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	v, err := engine.PrepareVersion(opCtx, plan.toVersion(ctx, &resp.Diagnostics))
	if err != nil {
		addVersionCreateError(&resp.Diagnostics, err)
		return
	}
	if v.DistributeTo != "" {
		r.distribute(opCtx, v, &resp.Diagnostics)
		if resp.Diagnostics.HasError() {
			return
		}
	}
	if err := engine.RecordVersion(opCtx, v); err != nil {
		addVersionCreateError(&resp.Diagnostics, err)
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, fromVersion(v, plan.Timeouts))...)
}

// addVersionCreateError reports a failed create; a name the project already
// has is an error of name.
func addVersionCreateError(diags *diag.Diagnostics, err error) {
	if errors.Is(err, delivery.ErrVersionExists) {
		diags.AddAttributeError(path.Root("name"), "Version name taken", err.Error()+
			": choose another name, or import the version.")
		return
	}
	diags.AddError("Could not create version", err.Error())
}

// distribute copies each service's image, by the digest the plan pinned, to
// the version's image in distribute_to, tagged with the version name.
func (r *versionResource) distribute(ctx context.Context, v delivery.Version, diags *diag.Diagnostics) {
	reg := r.registry()
	for s, image := range v.Images {
		digest, err := oci.DigestOf(image)
		var source string
		if err == nil {
			source, err = oci.AtDigest(v.Services[s], digest)
		}
		if err == nil {
			_, err = reg.Copy(ctx, source, delivery.DistributedRepository(v.DistributeTo, s), v.Name)
		}
		if err != nil {
			diags.AddAttributeError(path.Root("distribute_to"), "Could not distribute image", fmt.Sprintf("service %q: %s", s, err))
		}
	}
}

// Update writes back a record edited out of band: every input replaces the
// version, so drift (or a new timeouts block) is all an update can bring.
func (r *versionResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan versionModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	engine := requireEngine(r.clients, kubernetesBlock, &resp.Diagnostics)
	if engine == nil {
		return
	}
	d, diags := plan.Timeouts.Update(ctx, defaultDeliveryTimeout)
	resp.Diagnostics.Append(diags...)
	opCtx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	if err := engine.RestoreVersion(opCtx, plan.toVersion(ctx, &resp.Diagnostics)); err != nil {
		resp.Diagnostics.AddError("Could not write version back", err.Error())
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, plan)...)
}

func (r *versionResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var state versionModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	engine := requireEngine(r.clients, kubernetesBlock, &resp.Diagnostics)
	if engine == nil {
		return
	}
	recorded, err := engine.ReadVersion(ctx, state.ControlNamespace.ValueString(), state.Project.ValueString(), state.Name.ValueString())
	if errors.Is(err, delivery.ErrNotFound) {
		resp.State.RemoveResource(ctx)
		return
	}
	if err != nil {
		resp.Diagnostics.AddError("Could not read version", err.Error())
		return
	}
	// An import knows only the names: the record is all there is. Otherwise
	// state keeps what Kiln wrote, and the record's differences are drift.
	if state.Services.IsNull() {
		resp.Diagnostics.Append(resp.State.Set(ctx, fromVersion(recorded, state.Timeouts))...)
		return
	}
	state.Drift = stringList(state.toVersion(ctx, &resp.Diagnostics).Drift(recorded))
	resp.Diagnostics.Append(resp.State.Set(ctx, state)...)
}

func (r *versionResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var state versionModel
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
	if err := engine.DeleteVersion(opCtx, state.toVersion(ctx, &resp.Diagnostics)); err != nil {
		resp.Diagnostics.AddError("Could not delete version", err.Error())
	}
}

// ImportState takes `<project>/<name>` or `<control_namespace>/<project>/<name>`.
func (r *versionResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	control, names, ok := importIDParts(req.ID, 2)
	if !ok {
		resp.Diagnostics.AddError("Invalid import ID", fmt.Sprintf("Import a version as <project>/<name> or "+
			"<control_namespace>/<project>/<name>, got %q.", req.ID))
		return
	}
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("id"), names[0]+"/"+names[1])...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("project"), names[0])...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("name"), names[1])...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("control_namespace"), control)...)
}
