package provider

// kiln_image baked from a base volume plus a provisioning spec: the source
// block's second form, its checks, plan and bake.

import (
	"context"
	"errors"
	"fmt"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/kilnhq/terraform-provider-kiln/internal/gotoolchain"
	"github.com/kilnhq/terraform-provider-kiln/internal/image"
	"github.com/kilnhq/terraform-provider-kiln/internal/libvirt"
	"github.com/kilnhq/terraform-provider-kiln/internal/redact"
)

// bakePlatform is what the transient VM runs: Kiln's libvirt domains are x86_64.
var bakePlatform = gotoolchain.Platform{OS: "linux", Arch: "amd64"}

var sourcePath = path.Root("source")

// imageBaseBlock is a kiln_go_host block reused in the source block, described for it.
func imageBaseBlock(b schema.SingleNestedBlock, description string) schema.SingleNestedBlock {
	b.MarkdownDescription = description
	return b
}

// fromBase reports the source's base volume form (base_volume set, or unknown).
func (s *imageSourceModel) fromBase() bool { return s != nil && !s.BaseVolume.IsNull() }

// vmOnly and baseOnly are the source settings of each form besides its key.
var (
	vmOnly   = []string{"toolchains"}
	baseOnly = []string{"base_pool", "domain_type", "network", "go", "hardening"}
)

// validateImageSource checks the source block against its two forms, naming
// the field at fault; exactly one of vm_id and base_volume is the config
// validator's.
func validateImageSource(source types.Object, vsphere bool, diags *diag.Diagnostics) {
	if source.IsNull() || source.IsUnknown() {
		return
	}
	a := source.Attributes()
	set := func(name string) bool { return a[name] != nil && !a[name].IsNull() }
	switch {
	case set("vm_id"):
		for _, name := range baseOnly {
			if set(name) {
				diags.AddAttributeError(sourcePath.AtName(name), "Setting for another source form",
					fmt.Sprintf("source.%s is used with source.base_volume (a base volume plus a provisioning spec), not with source.vm_id (a provisioned VM): remove it.", name))
			}
		}
		if !set("toolchains") {
			diags.AddAttributeError(sourcePath.AtName("toolchains"), "Missing source toolchains",
				"source.toolchains is required with source.vm_id: set it to the kiln_go_host's installed attribute.")
		}
	case set("base_volume"):
		if vsphere {
			diags.AddAttributeError(sourcePath.AtName("base_volume"), "Base volumes bake on libvirt only",
				"source.base_volume boots a transient libvirt VM: use it with a libvirt block, or bake a provisioned kiln_vsphere_vm with source.vm_id.")
		}
		for _, name := range vmOnly {
			if set(name) {
				diags.AddAttributeError(sourcePath.AtName(name), "Setting for another source form",
					fmt.Sprintf("source.%s is used with source.vm_id (a provisioned VM), not with source.base_volume, whose toolchains the go block declares: remove it.", name))
			}
		}
		validateImageProvisioning(a, diags)
	}
}

// validateImageProvisioning checks the go and hardening blocks of a base volume source.
func validateImageProvisioning(a map[string]attr.Value, diags *diag.Diagnostics) {
	g, _ := a["go"].(types.Object)
	goPath := sourcePath.AtName("go")
	if g.IsNull() {
		diags.AddAttributeError(goPath, "Missing provisioning spec",
			"source.go is required with source.base_volume: the Go versions to provision the image with, as in go { versions = [\"1.24\"] }.")
		return
	}
	if g.IsUnknown() {
		return
	}
	ga := g.Attributes()
	if v := ga["versions"]; v == nil || v.IsNull() {
		diags.AddAttributeError(goPath.AtName("versions"), "Missing Go versions",
			"source.go.versions is required with source.base_volume: the image is baked with these toolchains installed.")
	}
	if v := ga["tools"]; v != nil && !v.IsNull() {
		diags.AddAttributeError(goPath.AtName("tools"), "Go tools are not baked into images",
			"source.go.tools is not supported in an image's provisioning spec: install the tools with a kiln_go_host on the VMs booted from the image.")
	}
	checkGoSourceSettings(g, goPath, diags)
	h, _ := a["hardening"].(types.Object)
	if h.IsNull() || h.IsUnknown() {
		return
	}
	ha := h.Attributes()
	if tmpfs, user := ha["gocache_tmpfs_mib"], ha["gocache_user"]; tmpfs != nil && !tmpfs.IsNull() && (user == nil || user.IsNull()) {
		diags.AddAttributeError(sourcePath.AtName("hardening").AtName("gocache_user"), "Missing GOCACHE user",
			"source.hardening.gocache_user is required with gocache_tmpfs_mib: the login Kiln bakes with is removed from the image, so it cannot default to it.")
	}
}

// basePool is where the base volume is: source.base_pool, else the image's
// pool (libvirt.pool as configured); "" while unknown or unset.
func basePool(s *imageSourceModel, configuredPool types.String) (pool string, known bool) {
	if !s.BasePool.IsNull() {
		return s.BasePool.ValueString(), !s.BasePool.IsUnknown()
	}
	return configuredPool.ValueString(), !configuredPool.IsUnknown()
}

// provisioning is the provisioning spec of the source, each archive named,
// for the fingerprint and the bake. When planning (resolve), the go block's
// version requests and configured default are resolved into
// g.ResolvedVersions; an apply takes the planned ones, so that it bakes what
// the plan showed. known is false while a version is unknown or on an error.
func (r *imageResource) provisioning(ctx context.Context, s *imageSourceModel, resolve bool, configuredDefault types.String,
	diags *diag.Diagnostics) (prov image.Provision, src gotoolchain.Source, known bool) {
	g := s.Go
	src = toolchainSource(r.clients, g)
	for _, v := range g.Versions {
		if v.IsUnknown() {
			return prov, src, false
		}
	}
	goPath := sourcePath.AtName("go")
	if resolve {
		resolved := resolveGoVersions(ctx, src, stringsOf(g.Versions), configuredDefault, bakePlatform, goPath, diags)
		if resolved == nil {
			return prov, src, false
		}
		g.ResolvedVersions = stringList(resolved)
	}
	gocacheUser := ""
	if s.Hardening != nil {
		gocacheUser = s.Hardening.GoCacheUser.ValueString()
	}
	prov.Host = goHostModel{Go: g, Hardening: s.Hardening, Env: types.MapNull(types.StringType)}.spec(gocacheUser)
	if err := prov.Host.Validate(); err != nil {
		diags.AddAttributeError(goPath, "Invalid provisioning spec", err.Error())
		return prov, src, false
	}
	prov.Archives = map[string]string{}
	for _, v := range prov.Host.Versions {
		id, err := src.ArchiveID(ctx, v, bakePlatform)
		if err != nil {
			diags.AddAttributeError(goPath.AtName("versions"), "Could not identify the Go archive", redact.URLCredentials(err.Error()))
			return prov, src, false
		}
		prov.Archives[v] = id
	}
	return prov, src, true
}

// planBase plans an image baked from a base volume: the pools, the resolved
// versions and default, and the fingerprint (unknown while an input is).
// It returns false when the plan failed.
func (r *imageResource) planBase(ctx context.Context, baker *image.Baker, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse,
	plan imageModel, prior *imageModel) (types.String, bool) {
	s := plan.Source
	goPath := sourcePath.AtName("go")
	var configuredPool, configuredDefault types.String
	resp.Diagnostics.Append(req.Config.GetAttribute(ctx, path.Root("libvirt").AtName("pool"), &configuredPool)...)
	resp.Diagnostics.Append(req.Config.GetAttribute(ctx, goPath.AtName("default"), &configuredDefault)...)
	pool, poolKnown := basePool(s, configuredPool)
	if poolKnown && pool == "" {
		resp.Diagnostics.AddAttributeError(sourcePath.AtName("base_pool"), "Missing base pool",
			"source.base_volume needs its storage pool: set source.base_pool, or libvirt.pool (the base volume is then in the image's pool).")
		return types.StringUnknown(), false
	}
	if configuredPool.IsNull() && poolKnown {
		// The image goes to the base's pool unless told otherwise.
		resp.Diagnostics.Append(resp.Plan.SetAttribute(ctx, path.Root("libvirt").AtName("pool"), pool)...)
	}
	resp.Diagnostics.Append(resp.Plan.SetAttribute(ctx, goPath.AtName("resolved_tools"), stringList(nil))...)
	prov, _, known := r.provisioning(ctx, s, true, configuredDefault, &resp.Diagnostics)
	if resp.Diagnostics.HasError() {
		return types.StringUnknown(), false
	}
	resolved := types.ListUnknown(types.StringType)
	if known {
		resolved = s.Go.ResolvedVersions
		if configuredDefault.IsNull() {
			resp.Diagnostics.Append(resp.Plan.SetAttribute(ctx, goPath.AtName("default"), prov.Host.Default)...)
		}
	}
	resp.Diagnostics.Append(resp.Plan.SetAttribute(ctx, goPath.AtName("resolved_versions"), resolved)...)
	if !known || !poolKnown || s.BaseVolume.IsUnknown() || plan.Inputs.IsUnknown() || hasUnknown(plan.Inputs) ||
		plan.Libvirt.Flatten.IsUnknown() || plan.Libvirt.Compress.IsUnknown() {
		return types.StringUnknown(), true
	}
	base, err := baker.BaseVolumeIdentity(ctx, pool, s.BaseVolume.ValueString())
	if errors.Is(err, libvirt.ErrNotFound) && prior != nil {
		// The base went after the bake: the image stands, named by the base it
		// was baked from.
		base, err = privateString(ctx, req.Private, imageBaseKey, &resp.Diagnostics), nil
	}
	if err != nil {
		resp.Diagnostics.AddAttributeError(sourcePath.AtName("base_volume"), "Could not read the base volume",
			fmt.Sprintf("volume %q in pool %q on %s: %s", s.BaseVolume.ValueString(), pool, baker.Libvirt.URI(), err))
		return types.StringUnknown(), false
	}
	in := plan.inputs(base, nil)
	in.Provision = &prov
	return types.StringValue(image.Fingerprint(in)), true
}

// bakeFromBase bakes the image from its base volume in a transient VM; the
// fingerprint and the base's identity come with it. ok is false when the
// bake failed, with the error in diags.
func (r *imageResource) bakeFromBase(ctx context.Context, baker *image.Baker, plan imageModel, diags *diag.Diagnostics) (image.Image, string, string, bool) {
	s, l := plan.Source, plan.Libvirt
	pool, _ := basePool(s, l.Pool)
	base, err := baker.BaseVolumeIdentity(ctx, pool, s.BaseVolume.ValueString())
	if err != nil {
		diags.AddAttributeError(sourcePath.AtName("base_volume"), "Could not read the base volume",
			fmt.Sprintf("volume %q in pool %q on %s: %s", s.BaseVolume.ValueString(), pool, baker.Libvirt.URI(), err))
		return image.Image{}, "", "", false
	}
	prov, src, ok := r.provisioning(ctx, s, false, types.StringNull(), diags)
	if !ok {
		return image.Image{}, "", "", false
	}
	in := plan.inputs(base, nil)
	in.Provision = &prov
	fingerprint := image.Fingerprint(in)
	img, err := baker.BakeFromBase(ctx, image.BaseSpec{
		Spec: image.Spec{Name: plan.Name.ValueString(), Fingerprint: fingerprint, Pool: l.Pool.ValueString(),
			Generalize: plan.generalize(), Overlay: !l.Flatten.ValueBool(), Compress: l.Compress.ValueString()},
		BasePool: pool, BaseVolume: s.BaseVolume.ValueString(), DomainType: s.DomainType.ValueString(),
		Network: s.Network.ValueString(), Provision: prov.Host, Source: src,
	})
	if err != nil {
		diags.AddError("Could not bake the image", fmt.Sprintf("image %q from base volume %q: %s", plan.Name.ValueString(), s.BaseVolume.ValueString(), err))
		return image.Image{}, "", "", false
	}
	return img, fingerprint, base, true
}
