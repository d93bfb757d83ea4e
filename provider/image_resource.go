package provider

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-timeouts/resource/timeouts"
	"github.com/hashicorp/terraform-plugin-framework-validators/resourcevalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/booldefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/float64planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/int64planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringdefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6"

	"github.com/kilnhq/terraform-provider-kiln/internal/image"
	"github.com/kilnhq/terraform-provider-kiln/internal/libvirt"
	"github.com/kilnhq/terraform-provider-kiln/internal/remote"
)

var (
	_ resource.ResourceWithConfigure   = (*imageResource)(nil)
	_ resource.ResourceWithModifyPlan  = (*imageResource)(nil)
	_ resource.ResourceWithImportState = (*imageResource)(nil)

	_ resource.ResourceWithConfigValidators = (*imageResource)(nil)
	_ resource.ResourceWithValidateConfig   = (*imageResource)(nil)
	_ resource.ResourceWithUpgradeState     = (*imageResource)(nil)
)

func newImageResource() resource.Resource { return &imageResource{} }

type imageResource struct {
	clients *clients
}

type imageModel struct {
	ID              types.String          `tfsdk:"id"`
	Name            types.String          `tfsdk:"name"`
	Source          *imageSourceModel     `tfsdk:"source"`
	Inputs          types.Map             `tfsdk:"inputs"`
	Libvirt         *imageLibvirtModel    `tfsdk:"libvirt"`
	Generalize      *imageGeneralizeModel `tfsdk:"generalize"`
	SourceAfterBake types.String          `tfsdk:"source_after_bake"`
	ForceDestroy    types.Bool            `tfsdk:"force_destroy"`
	Fingerprint     types.String          `tfsdk:"fingerprint"`
	Volume          types.String          `tfsdk:"volume"`
	Format          types.String          `tfsdk:"format"`
	VirtualSize     types.Int64           `tfsdk:"virtual_size"`
	Allocation      types.Int64           `tfsdk:"allocation"`
	SHA256          types.String          `tfsdk:"sha256"`
	BackingVolume   types.String          `tfsdk:"backing_volume"`
	Manifest        types.String          `tfsdk:"manifest"`
	BakeSeconds     types.Float64         `tfsdk:"bake_seconds"`
	Vsphere         *imageVsphereModel    `tfsdk:"vsphere"`
	TemplatePath    types.String          `tfsdk:"template_path"`
	TemplateMOID    types.String          `tfsdk:"template_moid"`
	TemplateUUID    types.String          `tfsdk:"template_uuid"`
	Snapshot        types.String          `tfsdk:"snapshot"`
	LibraryItemID   types.String          `tfsdk:"library_item_id"`
	Timeouts        timeouts.Value        `tfsdk:"timeouts"`
}

type imageSourceModel struct {
	VMID       types.String       `tfsdk:"vm_id"`
	Toolchains types.List         `tfsdk:"toolchains"`
	BaseVolume types.String       `tfsdk:"base_volume"`
	BasePool   types.String       `tfsdk:"base_pool"`
	DomainType types.String       `tfsdk:"domain_type"`
	Network    types.String       `tfsdk:"network"`
	Go         *goToolchainsModel `tfsdk:"go"`
	Hardening  *hardeningModel    `tfsdk:"hardening"`
}

type imageLibvirtModel struct {
	Pool     types.String `tfsdk:"pool"`
	Flatten  types.Bool   `tfsdk:"flatten"`
	Compress types.String `tfsdk:"compress"`
}

type imageVsphereModel struct {
	Datacenter     types.String `tfsdk:"datacenter"`
	Folder         types.String `tfsdk:"folder"`
	ContentLibrary types.String `tfsdk:"content_library"`
}

type imageGeneralizeModel struct {
	CloudInit   types.Bool `tfsdk:"cloud_init"`
	SSHHostKeys types.Bool `tfsdk:"ssh_host_keys"`
	MachineID   types.Bool `tfsdk:"machine_id"`
	Logs        types.Bool `tfsdk:"logs"`
	Temp        types.Bool `tfsdk:"temp"`
	Fstrim      types.Bool `tfsdk:"fstrim"`
}

const (
	defaultImageCreateTimeout = 30 * time.Minute
	defaultImageDeleteTimeout = 5 * time.Minute
	// Private state keys: the volume's stat when last hashed (a moved stat
	// means hashing again), and the SHA-256 the bake produced (a different
	// one read back means the image was changed and must be replaced).
	imageStatKey  = "stat"
	imageBakedKey = "baked_sha256"
	// imageBaseKey holds the base identity the bake saw, for plans after the
	// source VM is gone.
	imageBaseKey = "base"
	// imageBaseMissingKey marks an overlay image whose base volume is gone,
	// as Read found it: the plan replaces the image.
	imageBaseMissingKey = "base_missing"
	// imageOwnerKey holds the owner token Kiln's record beside the volume
	// names for this instance: destroy deletes the volume only while the
	// record still names it, so a replacement that adopted the volume keeps it.
	imageOwnerKey = "owner"
)

var imageNamePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)

// imageLibvirtBlock is the error for a kiln_image without the provider's libvirt block.
var imageLibvirtBlock = engineBlock[libvirt.Client]{
	summary: libvirtBlock.summary,
	detail:  "kiln_image bakes on the provider's libvirt: add `libvirt {}` (optionally with `uri`) to the `provider \"kiln\"` block.",
	pick:    libvirtBlock.pick,
}

func (r *imageResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_image"
}

func (r *imageResource) Schema(ctx context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	keep := []planmodifier.String{stringplanmodifier.UseStateForUnknown()}
	generalize := func(what string) schema.BoolAttribute {
		return schema.BoolAttribute{MarkdownDescription: what + " Defaults to `true`.", Optional: true, Computed: true, Default: booldefault.StaticBool(true)}
	}
	resp.Schema = schema.Schema{
		// Version 1 moved the top-level pool into the libvirt block.
		Version: 1,
		MarkdownDescription: "A golden image baked from a VM that a `kiln_go_host` provisioned: a libvirt volume from a " +
			"`kiln_libvirt_vm`, or, with a `vsphere` block, a vSphere template from a `kiln_vsphere_vm`. What is on the " +
			"host is baked as it is, with no second boot or install. On libvirt the image can also be baked from a base " +
			"volume plus a provisioning spec (`source.base_volume` with `kiln_go_host`'s `go` and `hardening` blocks), " +
			"in a transient VM Kiln boots, provisions and removes: see the `source` block. The host is generalized over SSH (cloud-init " +
			"state, SSH host keys and machine-id removed, so each clone gets its own on first boot; logs, histories, " +
			"apt caches and temporary files cleared; the file systems trimmed; users' `~/.ssh` kept), a manifest is " +
			"written to `/etc/kiln/image.json`, the guest is shut down (Kiln waits for libvirt's lifecycle event) and its " +
			"disk copied into a standalone qcow2 (compat 1.1) without the clusters the guest freed or zeroed.\n\n" +
			"The image is named `<name>-<fingerprint 12>`: the fingerprint is computed at plan time from the base image's " +
			"identity, the toolchains (versions, archive and `bin/go` digests; from a base volume, the resolved versions, " +
			"their archives' identities and the hardening), `inputs`, the generalize options and Kiln's bake scripts, so a changed input plans a new image, and the VMs with `base_volume` set to its " +
			"`volume` plan their replacement in the same run. A new source VM with the same fingerprint is recorded, " +
			"not baked again.\n\n" +
			"With `libvirt { compress = \"zstd\" }` the copy is recompressed on the libvirt host; with " +
			"`libvirt { flatten = false }` the image is a thin overlay on the source's base volume instead of a copy. " +
			"Beside the volume Kiln keeps its record of the image (fingerprint, SHA-256, manifest) in a small raw volume, " +
			"`<name>-<fingerprint 12>.kiln.json`. A volume already named as the image is adopted, not baked, when it " +
			"carries Kiln's record of the same fingerprint and still hashes to the recorded SHA-256 (the source VM is then " +
			"left as it is); any other volume of that name fails the apply, naming it, and is neither overwritten nor deleted. " +
			"Each bake or adoption writes a new owner token into the record, kept in the resource's private state, and " +
			"destroy deletes the volume only while the record still names that token: with `create_before_destroy`, a " +
			"replacement of the same fingerprint (`-replace`, a tainted image) adopts the volume, and the image it replaces " +
			"leaves the volume to it. An imported image takes over the token its record names.\n\n" +
			"The source host is reached at the VM's SSH endpoint, pinned to its host key, with the user and key of the " +
			"provider's `ssh` block; that user needs passwordless sudo.\n\n" +
			"On vSphere the same generalize step runs over SSH at the VM's guest IP address (as VMware Tools report it, " +
			"port 22 or the provider's `ssh.port`), its host key checked against the provider's `ssh.known_hosts_file`; " +
			"the guest is then shut down through VMware Tools (never powered off hard), cloned into `vsphere.folder` as " +
			"`<name>-<fingerprint 12>`, given the snapshot `kiln-base` (for linked clones) and marked as a template. " +
			"The template carries Kiln's record of the image (fingerprint and manifest) in its `extraConfig`; Kiln " +
			"deletes only a template that still carries it and is still a template. Import an image by `<pool>/<volume>` " +
			"(its fingerprint and manifest read from Kiln's record beside it) or by the template's inventory path.",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{
				MarkdownDescription: "`<pool>/<volume>`; on vSphere the template's inventory path.",
				Computed:            true,
			},
			"name": schema.StringAttribute{
				MarkdownDescription: "The image's name; the volume is `<name>-<fingerprint 12>.qcow2`.",
				Required:            true,
				PlanModifiers:       []planmodifier.String{stringplanmodifier.RequiresReplace()},
				Validators:          []validator.String{stringvalidator.RegexMatches(imageNamePattern, "must start with a letter or digit and hold only letters, digits, '_', '.' and '-'")},
			},
			"inputs": schema.MapAttribute{
				MarkdownDescription: "Further inputs the fingerprint covers, for what Kiln does not see on the host: for example " +
					"`{ hardening = jsonencode(kiln_go_host.src.hardening) }`. A changed value plans a new image.",
				ElementType: types.StringType,
				Optional:    true,
			},
			"source_after_bake": schema.StringAttribute{
				MarkdownDescription: "What becomes of the source VM: `stopped` (it is left shut down, generalized) or `deleted` " +
					"(its domain and volumes are removed; on vSphere the VM is destroyed). Defaults to `stopped`. Either way the source is no longer the host " +
					"its `kiln_go_host` provisioned: bake from a VM kept out of the rest of the configuration, or remove it " +
					"from the configuration (a `removed` block) in the same change.",
				Optional:   true,
				Computed:   true,
				Default:    stringdefault.StaticString(image.SourceStopped),
				Validators: []validator.String{stringvalidator.OneOf(image.SourceStopped, image.SourceDeleted)},
			},
			"force_destroy": schema.BoolAttribute{
				MarkdownDescription: "Delete the image even while VMs use it: on libvirt, VMs or volumes with it as their " +
					"backing file; on vSphere, the linked clones `kiln_vsphere_vm` made of the template. They stop booting. " +
					"Defaults to `false`: destroy refuses, naming them. An image other images are overlays on " +
					"(`libvirt.flatten = false`) is never deleted before them.",
				Optional: true,
				Computed: true,
				Default:  booldefault.StaticBool(false),
			},
			"fingerprint": schema.StringAttribute{
				MarkdownDescription: "SHA-256 of the image's normalised inputs.",
				Computed:            true,
			},
			"volume": schema.StringAttribute{
				MarkdownDescription: "libvirt: the image volume in `pool`: give it to `kiln_libvirt_vm.base_volume`. Null on vSphere.",
				Computed:            true,
			},
			"format": schema.StringAttribute{
				MarkdownDescription: "libvirt: the volume's format, `qcow2`. Null on vSphere.",
				Computed:            true,
				PlanModifiers:       keep,
			},
			"virtual_size": schema.Int64Attribute{
				MarkdownDescription: "libvirt: the disk size VMs see, in bytes. Null on vSphere.",
				Computed:            true,
				PlanModifiers:       []planmodifier.Int64{int64planmodifier.UseStateForUnknown()},
			},
			"allocation": schema.Int64Attribute{
				MarkdownDescription: "libvirt: bytes the image takes in the pool. Null on vSphere.",
				Computed:            true,
				PlanModifiers:       []planmodifier.Int64{int64planmodifier.UseStateForUnknown()},
			},
			"sha256": schema.StringAttribute{
				MarkdownDescription: "libvirt: SHA-256 of the volume as stored, streamed out of libvirt. Read back whenever the " +
					"volume's size, format, backing file or modification time moved; a different digest plans a replacement. " +
					"Null on vSphere.",
				Computed:      true,
				PlanModifiers: keep,
			},
			"backing_volume": schema.StringAttribute{
				MarkdownDescription: "libvirt: the path of the base volume the image is an overlay on (`libvirt.flatten = false`); " +
					"empty for a standalone image. Null on vSphere.",
				Computed:      true,
				PlanModifiers: keep,
			},
			"manifest": schema.StringAttribute{
				MarkdownDescription: "JSON manifest of the image, as written to `/etc/kiln/image.json` inside it: `name`, " +
					"`fingerprint`, `os`, `kernel` and `toolchains` (`version`, `archive_sha256`, `go_binary_sha256`). " +
					"On vSphere it is also read back from the template's record, so an imported template has it.",
				Computed:      true,
				PlanModifiers: keep,
			},
			"bake_seconds": schema.Float64Attribute{
				MarkdownDescription: "How long the bake took, from generalizing to the hashed image.",
				Computed:            true,
				PlanModifiers:       []planmodifier.Float64{float64planmodifier.UseStateForUnknown()},
			},
			"template_path": schema.StringAttribute{
				MarkdownDescription: "vSphere: the template's inventory path, `/<datacenter>/vm/[<folder>/]<name>-<fingerprint 12>`, " +
					"known at plan time: give it to `kiln_vsphere_vm.source`. A template deleted or renamed out of band plans a " +
					"replacement (the renamed one, still Kiln's, is destroyed). One turned back into a VM fails the plan, naming " +
					"it: Kiln leaves that VM to whoever made it one. Null on libvirt.",
				Computed: true,
			},
			"template_moid": schema.StringAttribute{
				MarkdownDescription: "vSphere: the template's managed object ID (`vm-<n>`). Null on libvirt.",
				Computed:            true,
				PlanModifiers:       keep,
			},
			"template_uuid": schema.StringAttribute{
				MarkdownDescription: "vSphere: the template's BIOS UUID. Null on libvirt.",
				Computed:            true,
				PlanModifiers:       keep,
			},
			"snapshot": schema.StringAttribute{
				MarkdownDescription: "vSphere: the template's snapshot for linked clones, `kiln-base` " +
					"(`kiln_vsphere_vm { linked_clone = true }` starts from it). Its loss plans a replacement. Null on libvirt.",
				Computed:      true,
				PlanModifiers: keep,
			},
			"library_item_id": libraryItemIDAttribute,
		},
		Blocks: map[string]schema.Block{
			"source": schema.SingleNestedBlock{
				MarkdownDescription: "What to bake, one of two forms. Required.\n\n" +
					"- A provisioned VM: `vm_id` and `toolchains`.\n" +
					"- libvirt only: a base volume and a provisioning spec, `base_volume` with a `go` block (and optionally " +
					"`hardening`, `base_pool`, `domain_type`, `network`). Kiln boots a transient VM, " +
					"`<name>-<fingerprint 12>-bake` (2 vCPUs, 1024 MiB), from a copy-on-write overlay on the base volume, with a " +
					"cloud-init seed giving it a host key Kiln pins and a login, `" + image.BakeUser + "`, whose key exists only in " +
					"Kiln's memory; provisions it as `kiln_go_host` would (toolchains verified on this machine and streamed " +
					"to it, or fetched by the guest with `source = \"host\"`; the hardening applied), bakes it, and removes " +
					"it, with its volumes, whether the bake succeeds or fails. The login is removed from the host before " +
					"its disk is copied. A transient VM a crashed bake left is removed by the next apply; any other domain " +
					"of that name fails the apply and is left alone. `source_after_bake` does not apply to this form.",
				Attributes: map[string]schema.Attribute{
					"vm_id": schema.StringAttribute{
						MarkdownDescription: "The `kiln_libvirt_vm` to bake (its `id`, or a domain name), or with a `vsphere` block the " +
							"`kiln_vsphere_vm` (its `id`, or an inventory path). It must be running. " +
							"Another VM with the same fingerprint is recorded without a new bake. Exactly one of `vm_id` and `base_volume`.",
						Optional: true,
					},
					"toolchains": schema.ListAttribute{
						MarkdownDescription: "With `vm_id`, required: the toolchains the VM's provisioning recorded: " +
							"`kiln_go_host.<name>.installed`. Each must be on the host, from the same archive, with `bin/go` intact, " +
							"or nothing is baked; an empty list (a VM no `kiln_go_host` provisioned) is refused at plan time.",
						ElementType: types.ObjectType{AttrTypes: installedType},
						Optional:    true,
					},
					"base_volume": schema.StringAttribute{
						MarkdownDescription: "The volume to bake from, provisioned as the `go` and `hardening` blocks say: a " +
							"cloud-init image, such as a `kiln_libvirt_vm`'s `base_volume`. Its identity (key, sizes, modification " +
							"time) is part of the fingerprint. A volume that is not there fails the plan. Exactly one of `vm_id` " +
							"and `base_volume`.",
						Optional: true,
					},
					"base_pool": schema.StringAttribute{
						MarkdownDescription: "With `base_volume`: the storage pool holding it, where the transient VM's volumes " +
							"go too. Defaults to `libvirt.pool`; `libvirt.pool` defaults to it. One of the two is required.",
						Optional: true,
					},
					"domain_type": schema.StringAttribute{
						MarkdownDescription: "With `base_volume`: the transient VM's libvirt domain type, `kvm` or `qemu` " +
							"(software emulation). Defaults to `kvm` when the host offers it.",
						Optional:   true,
						Validators: []validator.String{stringvalidator.OneOf("kvm", "qemu")},
					},
					"network": schema.StringAttribute{
						MarkdownDescription: "With `base_volume`: the libvirt network the transient VM is attached to; Kiln " +
							"reaches it at the address it is given there. Defaults to QEMU user-mode networking, its SSH port " +
							"forwarded on 127.0.0.1, which needs libvirtd on the machine running Terraform.",
						Optional:   true,
						Validators: []validator.String{stringvalidator.LengthAtLeast(1)},
					},
				},
				Blocks: map[string]schema.Block{
					"go": imageBaseBlock(goToolchainsBlock(), "With `base_volume`, required: the Go toolchains the transient VM "+
						"is provisioned with, as in `kiln_go_host`'s `go` block, `versions` required. The resolved versions, the "+
						"default, the root and what identifies each archive (the release index's or a pinned SHA-256, or the "+
						"checksum database's hash of a toolchain module) are part of the fingerprint: a new Go version, or a "+
						"version request resolving to a new release, plans a new image. `tools` are not installed in images: "+
						"install them with a `kiln_go_host` on the VMs booted from the image."),
					"hardening": imageBaseBlock(hardeningBlock(), "With `base_volume`: host settings applied to the transient VM, "+
						"as in `kiln_go_host`'s `hardening` block, and part of the fingerprint. Without the block, none, as "+
						"there. `gocache_user` is required with `gocache_tmpfs_mib`: the bake's own login is removed."),
				},
			},
			"libvirt": schema.SingleNestedBlock{
				MarkdownDescription: "Bake a libvirt volume from a `kiln_libvirt_vm` or a base volume; needs the provider's `libvirt` block. " +
					"Exactly one of `libvirt` and `vsphere` is required; `libvirt {}` takes every default.",
				Attributes: map[string]schema.Attribute{
					"pool": schema.StringAttribute{
						MarkdownDescription: "Storage pool that receives the image. Defaults to the source VM's pool, or the base volume's.",
						Optional:            true,
						Computed:            true,
						PlanModifiers:       []planmodifier.String{stringplanmodifier.UseStateForUnknown(), stringplanmodifier.RequiresReplace()},
					},
					"flatten": schema.BoolAttribute{
						MarkdownDescription: "`true`: the image is a standalone qcow2 (compat 1.1), the source's disk read through " +
							"its backing chain. `false`: the image is a thin qcow2 overlay on the source VM's base volume, a " +
							"copy of only what the source wrote on top of it (`backing_volume` names the base), in the qcow2 " +
							"version of the source's disk (compat 1.1 for VMs Kiln created). Kiln then " +
							"refuses to destroy a `kiln_image` that other images are overlays on (even with `force_destroy`); " +
							"a base deleted by other means shows as drift, and the plan bakes the image again. Part of the " +
							"fingerprint. Defaults to `true`.",
						Optional: true,
						Computed: true,
						Default:  booldefault.StaticBool(true),
					},
					"compress": schema.StringAttribute{
						MarkdownDescription: "`zstd` recompresses the standalone image on the libvirt host with " +
							"`qemu-img convert -c` (zstd clusters, compat 1.1): a smaller image, which QEMU decompresses " +
							"as VMs read it. Kiln runs `qemu-img` itself: on this machine when the provider's `libvirt.uri` " +
							"names a local daemon, or over SSH for a `qemu+ssh` URI (the URI's user, host, port and " +
							"`keyfile`, else the provider's `ssh` block; the host key from the URI's `known_hosts`, else " +
							"`ssh.known_hosts_file`, else `~/.ssh/known_hosts`; a user other than root needs passwordless " +
							"sudo). Other transports fail the plan. Needs `flatten = true`. Part of the fingerprint. " +
							"`none` or `zstd`; defaults to `none`.",
						Optional:   true,
						Computed:   true,
						Default:    stringdefault.StaticString(image.CompressNone),
						Validators: []validator.String{stringvalidator.OneOf(image.CompressNone, image.CompressZstd)},
					},
				},
			},
			"vsphere": schema.SingleNestedBlock{
				MarkdownDescription: "Bake a vSphere template from a `kiln_vsphere_vm`; needs the provider's `vsphere` block. " +
					"Exactly one of `libvirt` and `vsphere` is required.",
				Attributes: map[string]schema.Attribute{
					"datacenter": schema.StringAttribute{
						MarkdownDescription: "Datacenter of the source VM and the template, by name or path. Defaults to the " +
							"provider's `vsphere.datacenter`, or the only one.",
						Optional:      true,
						PlanModifiers: []planmodifier.String{stringplanmodifier.RequiresReplace()},
					},
					"folder": schema.StringAttribute{
						MarkdownDescription: "VM folder that receives the template, a path below the datacenter's VM folder. " +
							"Defaults to that folder. It must exist; anything else of the image's name there fails the plan, and a template of this same image still there fails the bake.",
						Optional: true,
					},
					"content_library": contentLibraryAttribute,
				},
			},
			"generalize": schema.SingleNestedBlock{
				MarkdownDescription: "What is removed from the host before its disk is copied; everything, unless turned off here. " +
					"Users' `~/.ssh` directories are never removed.",
				Attributes: map[string]schema.Attribute{
					"cloud_init": generalize("`cloud-init clean --logs --seed`, with `--machine-id` and `--configs all` where the " +
						"host's cloud-init has them: clones run cloud-init's first boot afresh. The image's own scripts in " +
						"`/var/lib/cloud/scripts` (`per-boot`, `per-instance`, `per-once`), which `clean` removes too, are kept."),
					"ssh_host_keys": generalize("Remove the SSH host keys; cloud-init writes each clone's own."),
					"machine_id":    generalize("Empty `/etc/machine-id`; systemd makes a new one on each clone's first boot."),
					"logs":          generalize("Clear journals, `/var/log`, shell histories and apt caches."),
					"temp":          generalize("Remove the contents of `/tmp` and `/var/tmp`."),
					"fstrim":        generalize("Trim the file systems, so the blocks freed leave the image."),
				},
			},
			"timeouts": timeouts.Block(ctx, timeouts.Opts{Create: true, Delete: true}),
		},
	}
}

func (r *imageResource) ConfigValidators(context.Context) []resource.ConfigValidator {
	return []resource.ConfigValidator{
		resourcevalidator.ExactlyOneOf(path.MatchRoot("libvirt"), path.MatchRoot("vsphere")),
		resourcevalidator.ExactlyOneOf(path.MatchRoot("source").AtName("vm_id"), path.MatchRoot("source").AtName("base_volume")),
	}
}

// ValidateConfig refuses what the libvirt and vsphere blocks cannot combine,
// and source settings of the other source form.
func (r *imageResource) ValidateConfig(ctx context.Context, req resource.ValidateConfigRequest, resp *resource.ValidateConfigResponse) {
	validateVsphereConfig(ctx, req, resp)
	// Objects, not models: values from module variables are unknown here.
	var source, vsphere types.Object
	resp.Diagnostics.Append(req.Config.GetAttribute(ctx, path.Root("source"), &source)...)
	resp.Diagnostics.Append(req.Config.GetAttribute(ctx, path.Root("vsphere"), &vsphere)...)
	if resp.Diagnostics.HasError() {
		return
	}
	validateImageSource(source, !vsphere.IsNull(), &resp.Diagnostics)
	var l *imageLibvirtModel
	resp.Diagnostics.Append(req.Config.GetAttribute(ctx, path.Root("libvirt"), &l)...)
	if l != nil && l.Compress.ValueString() == image.CompressZstd && !l.Flatten.IsNull() && !l.Flatten.IsUnknown() && !l.Flatten.ValueBool() {
		resp.Diagnostics.AddAttributeError(path.Root("libvirt").AtName("compress"), "Compression needs a standalone image",
			`libvirt.compress = "zstd" recompresses a standalone copy; with libvirt.flatten = false the image is an overlay `+
				`on its base and is not compressed. Set compress = "none", or flatten = true.`)
	}
}

func (r *imageResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	r.clients = configuredClients(req.ProviderData, &resp.Diagnostics)
}

func (r *imageResource) baker(diags *diag.Diagnostics) *image.Baker {
	engine := requireEngine(r.clients, imageLibvirtBlock, diags)
	if engine == nil {
		return nil
	}
	return &image.Baker{Libvirt: engine, Generalizer: image.SSHGeneralizer{Log: kilnLog}, Log: kilnLog}
}

// ModifyPlan computes the fingerprint and with it the image's volume; a new
// fingerprint, or content that no longer hashes to what was baked, plans a
// replacement.
func (r *imageResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	if req.Plan.Raw.IsNull() || r.clients == nil {
		return
	}
	var plan imageModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() || plan.Source == nil || (plan.Libvirt == nil && plan.Vsphere == nil) {
		return // a missing source's required attributes' errors name it, as the config validator names a missing block
	}
	// The engine first: without it nothing else can be judged.
	var baker *image.Baker
	var vsphereBaker *image.VsphereBaker
	if plan.Vsphere != nil {
		vsphereBaker = r.vsphereBaker(&resp.Diagnostics)
	} else {
		baker = r.baker(&resp.Diagnostics)
	}
	if resp.Diagnostics.HasError() {
		return
	}
	var prior *imageModel
	if !req.State.Raw.IsNull() {
		prior = &imageModel{}
		resp.Diagnostics.Append(req.State.Get(ctx, prior)...)
	}
	fromBase := plan.Source.fromBase()
	if fromBase && (plan.Vsphere != nil || plan.Source.Go == nil) {
		return // ValidateConfig names what is missing
	}
	toolchains, known := []image.Toolchain(nil), true
	if !fromBase {
		toolchains, known = plan.toolchains(ctx, &resp.Diagnostics)
	}
	if resp.Diagnostics.HasError() {
		return
	}
	if !fromBase && known && len(toolchains) == 0 {
		resp.Diagnostics.AddAttributeError(path.Root("source").AtName("toolchains"), "Source VM not provisioned",
			"source.toolchains is empty: the image is baked from a VM a kiln_go_host provisioned. Set it to that "+
				"kiln_go_host's installed attribute, with at least one Go version declared there.")
		return
	}
	if vsphereBaker != nil {
		modifyVspherePlan(ctx, vsphereBaker, req, resp, plan, prior, toolchains, known)
		return
	}
	setPlanValues(ctx, &resp.Plan, vsphereOnly, &resp.Diagnostics)
	newCompression := prior == nil || prior.Libvirt == nil || prior.Libvirt.Compress.ValueString() != image.CompressZstd
	if plan.Libvirt.Compress.ValueString() == image.CompressZstd && newCompression {
		// Checked before anything is dialled: the URI alone says whether Kiln
		// can reach the host. An image compressed before is checked only when
		// a new bake is applied, so that plans elsewhere need no host access.
		if _, err := baker.Libvirt.Host(r.libvirtHostDefaults()); err != nil {
			resp.Diagnostics.AddAttributeError(path.Root("libvirt").AtName("compress"), "Cannot compress on the libvirt host",
				fmt.Sprintf(`libvirt.compress = "zstd" runs qemu-img on the libvirt host, on this machine for a local daemon or over SSH for a qemu+ssh URI: %s`, err))
			return
		}
	}
	fingerprint := types.StringUnknown()
	libvirtKnown := !plan.Libvirt.Flatten.IsUnknown() && !plan.Libvirt.Compress.IsUnknown()
	if fromBase {
		var ok bool
		if fingerprint, ok = r.planBase(ctx, baker, req, resp, plan, prior); !ok {
			return
		}
	} else if known && libvirtKnown && !plan.Source.VMID.IsUnknown() && !plan.Inputs.IsUnknown() && !hasUnknown(plan.Inputs) {
		base, err := baker.BaseIdentity(ctx, plan.Source.VMID.ValueString())
		if errors.Is(err, libvirt.ErrNotFound) && prior != nil {
			// The source went after the bake (source_after_bake = "deleted"):
			// the base it started from is the one recorded.
			base, err = privateString(ctx, req.Private, imageBaseKey, &resp.Diagnostics), nil
		}
		if err != nil {
			resp.Diagnostics.AddAttributeError(path.Root("source").AtName("vm_id"), "Could not read the source VM",
				fmt.Sprintf("VM %q on %s: %s", plan.Source.VMID.ValueString(), baker.Libvirt.URI(), err))
			return
		}
		fingerprint = types.StringValue(image.Fingerprint(plan.inputs(base, toolchains)))
	}
	resp.Diagnostics.Append(resp.Plan.SetAttribute(ctx, path.Root("fingerprint"), fingerprint)...)
	volume := types.StringUnknown()
	if !fingerprint.IsUnknown() {
		volume = types.StringValue(image.VolumeName(plan.Name.ValueString(), fingerprint.ValueString()))
	}
	resp.Diagnostics.Append(resp.Plan.SetAttribute(ctx, path.Root("volume"), volume)...)
	if prior == nil {
		return
	}
	baked := privateString(ctx, req.Private, imageBakedKey, &resp.Diagnostics)
	changed := baked != "" && prior.SHA256.ValueString() != baked
	// The volume name carries the fingerprint: an imported image, whose full
	// fingerprint nothing recorded, is compared by it too.
	switch {
	case volume.IsUnknown() || volume.ValueString() != prior.Volume.ValueString():
		resp.RequiresReplace = append(resp.RequiresReplace, path.Root("fingerprint"))
	case changed:
		resp.RequiresReplace = append(resp.RequiresReplace, path.Root("sha256"))
	case privateString(ctx, req.Private, imageBaseMissingKey, &resp.Diagnostics) != "":
		resp.RequiresReplace = append(resp.RequiresReplace, path.Root("backing_volume"))
	default:
		resp.Diagnostics.Append(resp.Plan.SetAttribute(ctx, path.Root("id"), prior.ID)...)
		return
	}
	// A new image: nothing of the old one's describes it.
	for name, unknown := range map[string]attr.Value{
		"id": types.StringUnknown(), "format": types.StringUnknown(), "sha256": types.StringUnknown(),
		"backing_volume": types.StringUnknown(), "manifest": types.StringUnknown(), "virtual_size": types.Int64Unknown(),
		"allocation": types.Int64Unknown(), "bake_seconds": types.Float64Unknown(),
	} {
		resp.Diagnostics.Append(resp.Plan.SetAttribute(ctx, path.Root(name), unknown)...)
	}
}

func (r *imageResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan imageModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	timeout, diags := plan.Timeouts.Create(ctx, defaultImageCreateTimeout)
	resp.Diagnostics.Append(diags...)
	toolchains, _ := plan.toolchains(ctx, &resp.Diagnostics)
	if resp.Diagnostics.HasError() {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if plan.Vsphere != nil {
		r.createVsphere(ctx, plan, toolchains, resp)
		return
	}
	baker := r.baker(&resp.Diagnostics)
	if baker == nil {
		return
	}
	l := plan.Libvirt
	if l.Compress.ValueString() == image.CompressZstd {
		var err error
		if baker.Host, err = baker.Libvirt.Host(r.libvirtHostDefaults()); err != nil {
			resp.Diagnostics.AddAttributeError(path.Root("libvirt").AtName("compress"), "Cannot compress on the libvirt host", err.Error())
			return
		}
	}
	var (
		img               image.Image
		fingerprint, base string
		ok                bool
	)
	if plan.Source.fromBase() {
		img, fingerprint, base, ok = r.bakeFromBase(ctx, baker, plan, &resp.Diagnostics)
	} else {
		img, fingerprint, base, ok = r.bakeFromVM(ctx, baker, plan, toolchains, &resp.Diagnostics)
	}
	if !ok {
		return
	}
	plan.Fingerprint = types.StringValue(fingerprint)
	manifest, err := json.Marshal(img.Manifest)
	if err != nil {
		resp.Diagnostics.AddError("Could not encode the image manifest", err.Error())
		return
	}
	plan.Manifest = types.StringValue(string(manifest))
	plan.BakeSeconds = types.Float64Value(img.BakeSeconds)
	plan.readBack(img)
	resp.Diagnostics.Append(resp.State.Set(ctx, plan)...)
	setPrivateString(ctx, resp.Private, imageBaseKey, base, &resp.Diagnostics)
	setPrivateString(ctx, resp.Private, imageStatKey, img.Volume.Stat, &resp.Diagnostics)
	setPrivateString(ctx, resp.Private, imageBakedKey, img.SHA256, &resp.Diagnostics)
	setPrivateString(ctx, resp.Private, imageOwnerKey, img.Owner, &resp.Diagnostics)
}

// bakeFromVM bakes the image from the provisioned source VM; the
// fingerprint and the base's identity come with it. ok is false when the
// bake failed, with the error in diags.
func (r *imageResource) bakeFromVM(ctx context.Context, baker *image.Baker, plan imageModel, toolchains []image.Toolchain,
	diags *diag.Diagnostics) (img image.Image, fingerprint, base string, ok bool) {
	vmID := plan.Source.VMID.ValueString()
	base, err := baker.BaseIdentity(ctx, vmID)
	if err != nil {
		diags.AddError("Could not read the source VM", fmt.Sprintf("VM %q on %s: %s", vmID, baker.Libvirt.URI(), err))
		return img, "", "", false
	}
	fingerprint = image.Fingerprint(plan.inputs(base, toolchains))
	l, d := plan.Libvirt, r.clients.ssh
	img, err = baker.Bake(ctx, image.Spec{
		Name: plan.Name.ValueString(), Fingerprint: fingerprint, SourceVM: vmID, Pool: l.Pool.ValueString(),
		Defaults:   remote.Defaults{User: d.User, PrivateKey: d.PrivateKey, UseAgent: d.UseAgent},
		Toolchains: toolchains, Generalize: plan.generalize(), SourceAfterBake: plan.SourceAfterBake.ValueString(),
		Overlay: !l.Flatten.ValueBool(), Compress: l.Compress.ValueString(),
	})
	if err != nil {
		diags.AddError("Could not bake the image", fmt.Sprintf("image %q from VM %q: %s", plan.Name.ValueString(), vmID, err))
		return img, "", "", false
	}
	return img, fingerprint, base, true
}

// Update records a new source, or new settings, of an image whose fingerprint
// did not change: nothing is baked.
func (r *imageResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan, state imageModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	plan.ID, plan.Volume, plan.Libvirt = state.ID, state.Volume, state.Libvirt
	plan.Format, plan.VirtualSize, plan.Allocation, plan.SHA256 = state.Format, state.VirtualSize, state.Allocation, state.SHA256
	plan.BackingVolume, plan.Manifest, plan.BakeSeconds = state.BackingVolume, state.Manifest, state.BakeSeconds
	plan.TemplatePath, plan.TemplateMOID, plan.TemplateUUID, plan.Snapshot = state.TemplatePath, state.TemplateMOID, state.TemplateUUID, state.Snapshot
	if plan.Vsphere != nil {
		r.updateLibraryItem(ctx, &plan, state, &resp.Diagnostics)
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, plan)...)
}

// Read finds the volume gone (the plan bakes again) or reads it back, hashing
// it again when its stat moved.
func (r *imageResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var state imageModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if state.Vsphere != nil {
		r.readVsphere(ctx, state, resp)
		return
	}
	baker := r.baker(&resp.Diagnostics)
	if baker == nil {
		return
	}
	if state.Libvirt == nil {
		resp.Diagnostics.AddError("Could not read the image", "its state has neither a libvirt nor a vsphere block")
		return
	}
	stat := privateString(ctx, req.Private, imageStatKey, &resp.Diagnostics)
	pool := state.Libvirt.Pool.ValueString()
	known := image.Image{SHA256: state.SHA256.ValueString(), Compress: state.Libvirt.Compress.ValueString(), Volume: libvirt.ImageVolume{Stat: stat}}
	img, err := baker.Read(ctx, pool, state.Volume.ValueString(), known)
	if errors.Is(err, libvirt.ErrNotFound) {
		// Kept, with no content: the plan replaces it, its fingerprint from
		// the recorded base even when the source VM is gone too.
		state.SHA256, state.Allocation = types.StringValue(""), types.Int64Value(0)
		resp.Diagnostics.Append(resp.State.Set(ctx, state)...)
		return
	}
	if err != nil {
		resp.Diagnostics.AddError("Could not read the image", fmt.Sprintf("volume %q in pool %q: %s", state.Volume.ValueString(), pool, err))
		return
	}
	state.readBack(img)
	resp.Diagnostics.Append(resp.State.Set(ctx, state)...)
	setPrivateString(ctx, resp.Private, imageStatKey, img.Volume.Stat, &resp.Diagnostics)
	missing := ""
	if img.BaseMissing {
		missing = img.Volume.BackingPath
		resp.Diagnostics.AddWarning("Image base volume is gone",
			fmt.Sprintf("image volume %q is an overlay on %s, which no longer exists: VMs cannot boot from it, and the plan bakes it again.",
				img.Volume.Name, missing))
	}
	setPrivateString(ctx, resp.Private, imageBaseMissingKey, missing, &resp.Diagnostics)
	if privateString(ctx, req.Private, imageBakedKey, &resp.Diagnostics) == "" {
		// Just imported: the content found is what later reads compare with,
		// and Kiln's record of it, if it still describes it, gives the rest.
		setPrivateString(ctx, resp.Private, imageBakedKey, img.SHA256, &resp.Diagnostics)
		rec, err := baker.Record(ctx, pool, img.Volume.Name)
		if err != nil {
			return
		}
		// The import takes over the owner the record names (a read writes
		// nothing): the state the image came from is expected to have let
		// it go.
		setPrivateString(ctx, resp.Private, imageOwnerKey, rec.Owner, &resp.Diagnostics)
		if rec.SHA256 == img.SHA256 {
			manifest, err := json.Marshal(rec.Manifest)
			if err != nil {
				resp.Diagnostics.AddError("Could not encode the image manifest", err.Error())
				return
			}
			state.Fingerprint, state.Manifest = types.StringValue(rec.Fingerprint), types.StringValue(string(manifest))
			resp.Diagnostics.Append(resp.State.Set(ctx, state)...)
		}
	}
}

// ImportState takes `<pool>/<volume>`, the volume named `<name>-<fingerprint 12>.qcow2`,
// or a template's inventory path.
// The manifest and bake time are not known for an imported image.
func (r *imageResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	if strings.HasPrefix(req.ID, "/") {
		importVsphere(ctx, req.ID, resp)
		return
	}
	pool, volume, _ := strings.Cut(req.ID, "/")
	name, ok := image.ParseVolumeName(volume)
	if pool == "" || !ok {
		resp.Diagnostics.AddError("Invalid import ID",
			fmt.Sprintf("want <pool>/<name>-<fingerprint 12>.qcow2, the volume a kiln_image baked; got %q", req.ID))
		return
	}
	// flatten and compress are read back from the volume.
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("libvirt"),
		imageLibvirtModel{Pool: types.StringValue(pool), Flatten: types.BoolNull(), Compress: types.StringNull()})...)
	for attr, value := range map[string]string{"id": req.ID, "volume": volume, "name": name} {
		resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root(attr), value)...)
	}
}

func (r *imageResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var state imageModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	timeout, diags := state.Timeouts.Delete(ctx, defaultImageDeleteTimeout)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if state.Vsphere != nil {
		r.deleteVsphere(ctx, state, resp)
		return
	}
	baker := r.baker(&resp.Diagnostics)
	if baker == nil {
		return
	}
	if state.Libvirt == nil {
		resp.Diagnostics.AddError("Could not delete the image", "its state has neither a libvirt nor a vsphere block")
		return
	}
	owner := privateString(ctx, req.Private, imageOwnerKey, &resp.Diagnostics)
	if resp.Diagnostics.HasError() {
		return
	}
	if err := baker.Delete(ctx, state.Libvirt.Pool.ValueString(), state.Volume.ValueString(), owner, state.ForceDestroy.ValueBool()); err != nil {
		resp.Diagnostics.AddError("Could not delete the image", err.Error())
	}
}

// toolchains converts source.toolchains; known is false while any of it is unknown.
func (m imageModel) toolchains(ctx context.Context, diags *diag.Diagnostics) ([]image.Toolchain, bool) {
	list := m.Source.Toolchains
	if list.IsUnknown() {
		return nil, false
	}
	var items []types.Object
	diags.Append(list.ElementsAs(ctx, &items, false)...)
	out := make([]image.Toolchain, 0, len(items))
	for _, item := range items {
		if item.IsUnknown() {
			return nil, false
		}
		attrs := item.Attributes()
		var values []string
		for _, name := range []string{"version", "archive_sha256", "go_binary_sha256"} {
			s, ok := attrs[name].(types.String)
			if !ok || s.IsUnknown() {
				return nil, false
			}
			values = append(values, s.ValueString())
		}
		out = append(out, image.Toolchain{Version: values[0], ArchiveSHA256: values[1], GoBinarySHA256: values[2]})
	}
	return out, true
}

// generalize is the generalize block, every option on where it is absent.
func (m imageModel) generalize() image.Generalize {
	g := m.Generalize
	if g == nil {
		return image.DefaultGeneralize()
	}
	on := func(b types.Bool) bool { return b.IsNull() || b.IsUnknown() || b.ValueBool() }
	return image.Generalize{CloudInit: on(g.CloudInit), SSHHostKeys: on(g.SSHHostKeys), MachineID: on(g.MachineID),
		Logs: on(g.Logs), Temp: on(g.Temp), Fstrim: on(g.Fstrim)}
}

// hasUnknown reports whether any value of the map is unknown.
func hasUnknown(m types.Map) bool {
	for _, v := range m.Elements() {
		if v.IsUnknown() {
			return true
		}
	}
	return false
}

func (m imageModel) inputs(base string, toolchains []image.Toolchain) image.Inputs {
	in := image.Inputs{Base: base, Toolchains: toolchains, Extra: stringMap(m.Inputs), Generalize: m.generalize()}
	if l := m.Libvirt; l != nil {
		in.Compress = l.Compress.ValueString()
		in.Overlay = !l.Flatten.IsNull() && !l.Flatten.ValueBool()
	}
	return in
}

// libvirtHostDefaults are the provider's SSH defaults for the libvirt host:
// its port is the URI's, or 22, as for libvirt's own SSH transport.
func (r *imageResource) libvirtHostDefaults() remote.Defaults {
	d := r.clients.ssh
	d.Port = 0
	return d
}

// readBack records the image volume as read.
func (m *imageModel) readBack(img image.Image) {
	v := img.Volume
	m.ID = types.StringValue(v.Pool + "/" + v.Name)
	m.Libvirt = &imageLibvirtModel{Pool: types.StringValue(v.Pool), Flatten: types.BoolValue(v.BackingPath == ""), Compress: types.StringValue(img.Compress)}
	m.Volume = types.StringValue(v.Name)
	m.Format = types.StringValue(v.Format)
	m.VirtualSize = types.Int64Value(int64(v.Capacity))
	m.Allocation = types.Int64Value(int64(v.Allocation))
	m.SHA256 = types.StringValue(img.SHA256)
	m.BackingVolume = types.StringValue(strings.TrimSpace(v.BackingPath))
	m.TemplatePath, m.TemplateMOID, m.TemplateUUID, m.Snapshot = types.StringNull(), types.StringNull(), types.StringNull(), types.StringNull()
	m.LibraryItemID = types.StringNull()
}

// privateStore is the private state of a request or a response.
type privateStore interface {
	GetKey(ctx context.Context, key string) ([]byte, diag.Diagnostics)
	SetKey(ctx context.Context, key string, value []byte) diag.Diagnostics
}

// privateString reads a string kept in private state; "" when unset.
func privateString(ctx context.Context, p privateStore, key string, diags *diag.Diagnostics) string {
	raw, d := p.GetKey(ctx, key)
	diags.Append(d...)
	var s string
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &s); err != nil {
			diags.AddError("Could not read private state", fmt.Sprintf("key %q: %s", key, err))
		}
	}
	return s
}

// setPrivateString keeps a string in private state, which holds JSON values.
func setPrivateString(ctx context.Context, p privateStore, key, value string, diags *diag.Diagnostics) {
	raw, err := json.Marshal(value)
	if err != nil {
		diags.AddError("Could not write private state", fmt.Sprintf("key %q: %s", key, err))
		return
	}
	diags.Append(p.SetKey(ctx, key, raw)...)
}

// UpgradeState moves a version 0 state's top-level pool into the libvirt
// block, with the defaults that version baked with: a standalone,
// uncompressed image. A vSphere image gets no libvirt block.
func (r *imageResource) UpgradeState(context.Context) map[int64]resource.StateUpgrader {
	return map[int64]resource.StateUpgrader{0: {StateUpgrader: upgradeImageStateV0}}
}

func upgradeImageStateV0(_ context.Context, req resource.UpgradeStateRequest, resp *resource.UpgradeStateResponse) {
	if req.RawState == nil {
		resp.Diagnostics.AddError("Could not upgrade the image state", "no state to upgrade")
		return
	}
	var state map[string]json.RawMessage
	if err := json.Unmarshal(req.RawState.JSON, &state); err != nil {
		resp.Diagnostics.AddError("Could not upgrade the image state", err.Error())
		return
	}
	var pool *string
	if raw, ok := state["pool"]; ok {
		if err := json.Unmarshal(raw, &pool); err != nil {
			resp.Diagnostics.AddError("Could not upgrade the image state", fmt.Sprintf("pool: %s", err))
			return
		}
	}
	delete(state, "pool")
	state["libvirt"] = json.RawMessage("null")
	if vs, ok := state["vsphere"]; !ok || string(vs) == "null" {
		block, err := json.Marshal(map[string]any{"pool": pool, "flatten": true, "compress": image.CompressNone})
		if err != nil {
			resp.Diagnostics.AddError("Could not upgrade the image state", err.Error())
			return
		}
		state["libvirt"] = block
	}
	doc, err := json.Marshal(state)
	if err != nil {
		resp.Diagnostics.AddError("Could not upgrade the image state", err.Error())
		return
	}
	resp.DynamicValue = &tfprotov6.DynamicValue{JSON: doc}
}
