package provider

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/tfsdk"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/kilnhq/terraform-provider-kiln/internal/image"
	"github.com/kilnhq/terraform-provider-kiln/internal/vsphere"
)

// kiln_image with a vsphere block: the image is a template baked from a
// kiln_vsphere_vm.

// imageVsphereBlock is the error for a vSphere kiln_image without the provider's vsphere block.
var imageVsphereBlock = engineBlock[vsphere.Client]{
	summary: vsphereBlock.summary,
	detail: "kiln_image with a `vsphere` block bakes on the provider's vSphere: add `vsphere {}` to the " +
		"`provider \"kiln\"` block (with server, user and password, or VSPHERE_SERVER, VSPHERE_USER and VSPHERE_PASSWORD).",
	pick: vsphereBlock.pick,
}

// libvirtOnly are the attributes that describe a libvirt image: null on vSphere.
var libvirtOnly = map[string]attr.Value{
	"volume": types.StringNull(), "format": types.StringNull(), "sha256": types.StringNull(),
	"backing_volume": types.StringNull(), "virtual_size": types.Int64Null(), "allocation": types.Int64Null(),
}

// vsphereOnly are the attributes that describe a vSphere image: null on libvirt.
var vsphereOnly = map[string]attr.Value{
	"template_path": types.StringNull(), "template_moid": types.StringNull(), "template_uuid": types.StringNull(),
	"snapshot": types.StringNull(), "library_item_id": types.StringNull(),
}

// contentLibraryAttribute is vsphere.content_library. A new library is an
// in-place change, not a new image: the library item is a copy of the
// template, and the template (what was baked) is unchanged, so Kiln deletes
// its item and publishes the template again, with no second bake (which
// would need the source VM running again). For the same reason it is not
// part of the fingerprint: it says where the image goes, not what it is.
var contentLibraryAttribute = schema.StringAttribute{
	MarkdownDescription: "Content library (its name or ID) that also receives the template, as a VM-template item named " +
		"like it (`<name>-<fingerprint 12>`): `library_item_id`. vCenter keeps the item's own copy of the template in the " +
		"datacenter's VM folder under that name, so `folder` must name another folder. vCenter copies only VMs into a library: " +
		"for the copy the template is a VM for a moment, in the root resource pool of its host, and then a template again. " +
		"An unknown library fails the plan; " +
		"an item or VM of that name already there fails the plan of an existing image, and the bake of a new one before it " +
		"starts. Changing the library deletes the item Kiln published and publishes the template to the new library in " +
		"place: nothing is baked again. An item deleted out of band is published again the same way. Import does not " +
		"adopt an item: with `content_library` set, the apply after an import publishes one, and an item of that name " +
		"already in the library fails the plan, naming it.",
	Optional:   true,
	Validators: []validator.String{stringvalidator.LengthAtLeast(1)},
}

// libraryItemIDAttribute is the top-level library_item_id.
var libraryItemIDAttribute = schema.StringAttribute{
	MarkdownDescription: "vSphere: the ID of the content library item Kiln published the template as (`vsphere.content_library`). " +
		"Kiln deletes that item, and only that one, when the image is destroyed or the library changes. Null on libvirt and " +
		"without `content_library`.",
	Computed: true,
}

// validateVsphereConfig refuses a content library with the template in the
// datacenter's VM folder, where the library's copy of it goes.
func validateVsphereConfig(ctx context.Context, req resource.ValidateConfigRequest, resp *resource.ValidateConfigResponse) {
	var v *imageVsphereModel
	resp.Diagnostics.Append(req.Config.GetAttribute(ctx, path.Root("vsphere"), &v)...)
	if v == nil || v.ContentLibrary.IsNull() || v.ContentLibrary.IsUnknown() || v.Folder.IsUnknown() {
		return
	}
	if strings.Trim(v.Folder.ValueString(), "/") == image.LibraryFolder {
		resp.Diagnostics.AddAttributeError(path.Root("vsphere").AtName("content_library"), "Content library needs a template folder",
			"vsphere.content_library is set with the template in the datacenter's VM folder, but "+image.ErrLibraryFolder.Error()+
				". Set vsphere.folder to a folder below it.")
	}
}

func (r *imageResource) vsphereBaker(diags *diag.Diagnostics) *image.VsphereBaker {
	engine := requireEngine(r.clients, imageVsphereBlock, diags)
	if engine == nil {
		return nil
	}
	return &image.VsphereBaker{Vsphere: engine, Generalizer: image.SSHGeneralizer{Log: kilnLog}, Log: kilnLog}
}

func setPlanValues(ctx context.Context, plan *tfsdk.Plan, values map[string]attr.Value, diags *diag.Diagnostics) {
	for name, v := range values {
		diags.Append(plan.SetAttribute(ctx, path.Root(name), v)...)
	}
}

// modifyVspherePlan computes the fingerprint and with it the template's path;
// a new path (a new fingerprint, or the template gone, renamed or no longer a
// template) or a lost snapshot plans a replacement.
func modifyVspherePlan(ctx context.Context, baker *image.VsphereBaker, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse,
	plan imageModel, prior *imageModel, toolchains []image.Toolchain, known bool) {
	setPlanValues(ctx, &resp.Plan, libvirtOnly, &resp.Diagnostics)
	dc, folder := plan.Vsphere.Datacenter, plan.Vsphere.Folder
	fingerprint, templatePath := types.StringUnknown(), types.StringUnknown()
	if known && !plan.Source.VMID.IsUnknown() && !plan.Inputs.IsUnknown() && !hasUnknown(plan.Inputs) && !dc.IsUnknown() && !folder.IsUnknown() {
		base, err := baker.BaseIdentity(ctx, dc.ValueString(), plan.Source.VMID.ValueString())
		if errors.Is(err, vsphere.ErrNotFound) && prior != nil {
			// The source went after the bake: the base it started from is the one recorded.
			base, err = privateString(ctx, req.Private, imageBaseKey, &resp.Diagnostics), nil
		}
		if err != nil {
			resp.Diagnostics.AddAttributeError(path.Root("source").AtName("vm_id"), "Could not read the source VM",
				fmt.Sprintf("VM %q on %s: %s", plan.Source.VMID.ValueString(), baker.Vsphere.Server(), err))
			return
		}
		datacenter, err := baker.Vsphere.FindDatacenter(ctx, dc.ValueString())
		if err != nil {
			resp.Diagnostics.AddAttributeError(path.Root("vsphere").AtName("datacenter"), "Could not find the datacenter", err.Error())
			return
		}
		fp := image.Fingerprint(plan.inputs(base, toolchains))
		fingerprint = types.StringValue(fp)
		templatePath = types.StringValue(image.TemplatePath(datacenter.Path, folder.ValueString(), plan.Name.ValueString(), fp))
		if prior == nil || prior.TemplatePath.ValueString() != templatePath.ValueString() {
			// A template is about to be made: its folder must be there and its
			// name free, but of a template of this same image. A replacement's
			// bake is planned with no prior state while the template it replaces
			// still holds the name; the bake checks again when it starts, after
			// the destroy.
			name := image.FullName(plan.Name.ValueString(), fp)
			if err := baker.CheckTemplateName(ctx, dc.ValueString(), folder.ValueString(), name, fp); err != nil && !errors.Is(err, image.ErrImageThere) {
				resp.Diagnostics.AddAttributeError(path.Root("vsphere").AtName("folder"), "Cannot bake the template here", err.Error())
				return
			}
		}
	}
	resp.Diagnostics.Append(resp.Plan.SetAttribute(ctx, path.Root("fingerprint"), fingerprint)...)
	resp.Diagnostics.Append(resp.Plan.SetAttribute(ctx, path.Root("template_path"), templatePath)...)
	replace := prior != nil && (templatePath.IsUnknown() || templatePath.ValueString() != prior.TemplatePath.ValueString() ||
		prior.Snapshot.ValueString() != vsphere.ImageSnapshot)
	if !planLibraryItem(ctx, baker, resp, plan, prior, replace, fingerprint) || prior == nil {
		return
	}
	switch {
	case templatePath.IsUnknown() || templatePath.ValueString() != prior.TemplatePath.ValueString():
		resp.RequiresReplace = append(resp.RequiresReplace, path.Root("template_path"))
	case prior.Snapshot.ValueString() != vsphere.ImageSnapshot:
		resp.RequiresReplace = append(resp.RequiresReplace, path.Root("snapshot"))
	default:
		resp.Diagnostics.Append(resp.Plan.SetAttribute(ctx, path.Root("id"), prior.ID)...)
		return
	}
	setPlanValues(ctx, &resp.Plan, map[string]attr.Value{
		"id": types.StringUnknown(), "template_moid": types.StringUnknown(), "template_uuid": types.StringUnknown(),
		"snapshot": types.StringUnknown(), "manifest": types.StringUnknown(), "bake_seconds": types.Float64Unknown(),
	}, &resp.Diagnostics)
}

// planLibraryItem plans library_item_id: null without a content library, the
// recorded item while it is there in an unchanged library and the template
// stays, otherwise unknown (a publish), checked against the library now. It
// reports false when the plan failed.
func planLibraryItem(ctx context.Context, baker *image.VsphereBaker, resp *resource.ModifyPlanResponse,
	plan imageModel, prior *imageModel, replace bool, fingerprint types.String) bool {
	lib := plan.Vsphere.ContentLibrary
	item := types.StringUnknown()
	var recorded string
	if prior != nil {
		recorded = prior.LibraryItemID.ValueString()
	}
	switch {
	case lib.IsNull():
		item = types.StringNull()
	case lib.IsUnknown():
	case !replace && recorded != "" && prior.Vsphere != nil && prior.Vsphere.ContentLibrary.Equal(lib):
		item = prior.LibraryItemID
	default:
		// A publish: the library must be there, and free of the name. A
		// replacement's create is planned with no prior state, while the old
		// item and its copy still hold the name until the destroy: for a
		// create the name is checked when the bake starts.
		attr := path.Root("vsphere").AtName("content_library")
		var err error
		if fingerprint.IsUnknown() || prior == nil {
			_, err = baker.Vsphere.FindLibrary(ctx, lib.ValueString())
		} else {
			name := image.FullName(plan.Name.ValueString(), fingerprint.ValueString())
			_, err = baker.CheckPublish(ctx, plan.Vsphere.Datacenter.ValueString(), lib.ValueString(), name, recorded)
		}
		if err != nil {
			resp.Diagnostics.AddAttributeError(attr, "Cannot publish to the content library", err.Error())
			return false
		}
	}
	resp.Diagnostics.Append(resp.Plan.SetAttribute(ctx, path.Root("library_item_id"), item)...)
	return true
}

// updateLibraryItem deletes the recorded library item and publishes the
// template again when the plan says so (a new library, the item gone, or no
// library any more).
func (r *imageResource) updateLibraryItem(ctx context.Context, plan *imageModel, state imageModel, diags *diag.Diagnostics) {
	recorded := state.LibraryItemID.ValueString()
	if !plan.LibraryItemID.IsUnknown() && plan.LibraryItemID.ValueString() == recorded {
		return
	}
	baker := r.vsphereBaker(diags)
	if baker == nil {
		return
	}
	if recorded != "" {
		if err := baker.Vsphere.DeleteLibraryItem(ctx, recorded); err != nil {
			diags.AddError("Could not delete the content library item", err.Error())
			return
		}
	}
	plan.LibraryItemID = types.StringNull()
	if plan.Vsphere.ContentLibrary.IsNull() {
		return
	}
	tmpl := image.Template{ImageTemplate: vsphere.ImageTemplate{Path: state.TemplatePath.ValueString(), UUID: state.TemplateUUID.ValueString()},
		Fingerprint: state.Fingerprint.ValueString()}
	item, err := baker.Publish(ctx, plan.Vsphere.Datacenter.ValueString(), tmpl, plan.Vsphere.ContentLibrary.ValueString())
	if err != nil {
		plan.LibraryItemID = types.StringValue("")
		diags.AddAttributeError(path.Root("vsphere").AtName("content_library"), "Could not publish the template to the content library",
			fmt.Sprintf("template %q: %s", tmpl.Path, err))
		return
	}
	plan.LibraryItemID = types.StringValue(item.ID)
}

func (r *imageResource) createVsphere(ctx context.Context, plan imageModel, toolchains []image.Toolchain, resp *resource.CreateResponse) {
	baker := r.vsphereBaker(&resp.Diagnostics)
	if baker == nil {
		return
	}
	dc, vmID := plan.Vsphere.Datacenter.ValueString(), plan.Source.VMID.ValueString()
	base, err := baker.BaseIdentity(ctx, dc, vmID)
	if err != nil {
		resp.Diagnostics.AddError("Could not read the source VM", fmt.Sprintf("VM %q on %s: %s", vmID, baker.Vsphere.Server(), err))
		return
	}
	fingerprint := image.Fingerprint(plan.inputs(base, toolchains))
	img, err := baker.Bake(ctx, image.Spec{
		Name: plan.Name.ValueString(), Fingerprint: fingerprint, SourceVM: vmID, Defaults: r.clients.ssh,
		Toolchains: toolchains, Generalize: plan.generalize(), SourceAfterBake: plan.SourceAfterBake.ValueString(),
	}, dc, plan.Vsphere.Folder.ValueString(), plan.Vsphere.ContentLibrary.ValueString())
	if err != nil {
		resp.Diagnostics.AddError("Could not bake the image", fmt.Sprintf("template %q from VM %q: %s", plan.Name.ValueString(), vmID, err))
		if img.UUID == "" {
			return
		}
		// The template was made: it is recorded (and the resource tainted),
		// so that it is Kiln's to delete.
	}
	plan.BakeSeconds = types.Float64Value(img.BakeSeconds)
	plan.readBackTemplate(img, &resp.Diagnostics)
	plan.LibraryItemID = types.StringNull()
	if !plan.Vsphere.ContentLibrary.IsNull() {
		plan.LibraryItemID = types.StringValue(img.LibraryItem.ID)
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, plan)...)
	setPrivateString(ctx, resp.Private, imageBaseKey, base, &resp.Diagnostics)
}

// readVsphere reads the template back by UUID (by path, just after an
// import). A template gone, or no longer a template, or no longer carrying
// Kiln's record, keeps its state with an empty template_path: the plan
// replaces it.
func (r *imageResource) readVsphere(ctx context.Context, state imageModel, resp *resource.ReadResponse) {
	baker := r.vsphereBaker(&resp.Diagnostics)
	if baker == nil {
		return
	}
	imported := state.TemplateUUID.ValueString() == ""
	id := state.TemplateUUID.ValueString()
	if imported {
		id = state.TemplatePath.ValueString()
	}
	img, err := baker.Read(ctx, state.Vsphere.Datacenter.ValueString(), id)
	switch {
	case err == nil && img.Template:
		state.readBackTemplate(img, &resp.Diagnostics)
		if imported {
			state.Name = types.StringValue(importedTemplate.FindStringSubmatch(img.Path)[2])
		}
		if item := state.LibraryItemID.ValueString(); item != "" {
			// An item gone is kept as "": the plan publishes the template again.
			_, err := baker.Vsphere.ReadLibraryItem(ctx, item)
			if errors.Is(err, vsphere.ErrNotFound) {
				state.LibraryItemID = types.StringValue("")
			} else if err != nil {
				resp.Diagnostics.AddError("Could not read the image", fmt.Sprintf("content library item %s of template %q: %s", item, img.Path, err))
				return
			}
		}
	case imported:
		resp.Diagnostics.AddError("Could not import the image", fmt.Sprintf("template %q: %s", id, cmpErr(err, "it is not a template")))
		return
	case err == nil, errors.Is(err, vsphere.ErrNotFound), errors.Is(err, image.ErrNoRecord):
		state.TemplatePath = types.StringValue("")
	default:
		resp.Diagnostics.AddError("Could not read the image", fmt.Sprintf("template %q: %s", id, err))
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, state)...)
}

// cmpErr is err's text, or otherwise when err is nil.
func cmpErr(err error, otherwise string) string {
	if err == nil {
		return otherwise
	}
	return err.Error()
}

func (r *imageResource) deleteVsphere(ctx context.Context, state imageModel, resp *resource.DeleteResponse) {
	baker := r.vsphereBaker(&resp.Diagnostics)
	if baker == nil {
		return
	}
	known := image.Template{ImageTemplate: vsphere.ImageTemplate{UUID: state.TemplateUUID.ValueString()}, Fingerprint: state.Fingerprint.ValueString(),
		LibraryItem: vsphere.LibraryItem{ID: state.LibraryItemID.ValueString()}}
	err := baker.Delete(ctx, state.Vsphere.Datacenter.ValueString(), known, state.ForceDestroy.ValueBool())
	if errors.Is(err, vsphere.ErrLeftAlone) {
		resp.Diagnostics.AddWarning("Template left in place", err.Error())
		return
	}
	if err != nil {
		resp.Diagnostics.AddError("Could not delete the image", err.Error())
	}
}

// importedTemplate is an image template's inventory path: the datacenter's
// path, its VM folder, a folder below it, and `<name>-<fingerprint 12>`.
var importedTemplate = regexp.MustCompile(`^/.+?/vm/(?:(.+)/)?([A-Za-z0-9][A-Za-z0-9_.-]*)-[0-9a-f]{12}$`)

// importVsphere takes the template's inventory path.
func importVsphere(ctx context.Context, id string, resp *resource.ImportStateResponse) {
	m := importedTemplate.FindStringSubmatch(id)
	if m == nil {
		resp.Diagnostics.AddError("Invalid import ID",
			fmt.Sprintf("want /<datacenter>/vm/[<folder>/]<name>-<fingerprint 12>, the inventory path of a template a kiln_image baked; got %q", id))
		return
	}
	folder := types.StringNull()
	if m[1] != "" {
		folder = types.StringValue(m[1])
	}
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("vsphere"), imageVsphereModel{Datacenter: types.StringNull(), Folder: folder, ContentLibrary: types.StringNull()})...)
	for name, value := range map[string]string{"id": id, "template_path": id, "name": m[2]} {
		resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root(name), value)...)
	}
}

// readBackTemplate records the template as read.
func (m *imageModel) readBackTemplate(img image.Template, diags *diag.Diagnostics) {
	manifest, err := json.Marshal(img.Manifest)
	if err != nil {
		diags.AddError("Could not encode the image manifest", err.Error())
		return
	}
	m.ID = types.StringValue(img.Path)
	m.TemplatePath = types.StringValue(img.Path)
	m.TemplateMOID = types.StringValue(img.MOID)
	m.TemplateUUID = types.StringValue(img.UUID)
	m.Snapshot = types.StringValue(img.Snapshot)
	m.Fingerprint = types.StringValue(img.Fingerprint)
	m.Manifest = types.StringValue(string(manifest))
	m.Volume, m.Format, m.SHA256, m.BackingVolume = types.StringNull(), types.StringNull(), types.StringNull(), types.StringNull()
	m.VirtualSize, m.Allocation = types.Int64Null(), types.Int64Null()
}
