package provider

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-timeouts/resource/timeouts"
	"github.com/hashicorp/terraform-plugin-framework-timetypes/timetypes"
	"github.com/hashicorp/terraform-plugin-framework-validators/int64validator"
	"github.com/hashicorp/terraform-plugin-framework-validators/listvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/resourcevalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/booldefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/boolplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/int64default"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/int64planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/listplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/objectplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/tfsdk"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/kilnhq/terraform-provider-kiln/internal/cloudinit"
	"github.com/kilnhq/terraform-provider-kiln/internal/libvirt"
)

var (
	_ resource.ResourceWithConfigure        = (*libvirtVMResource)(nil)
	_ resource.ResourceWithImportState      = (*libvirtVMResource)(nil)
	_ resource.ResourceWithModifyPlan       = (*libvirtVMResource)(nil)
	_ resource.ResourceWithValidateConfig   = (*libvirtVMResource)(nil)
	_ resource.ResourceWithConfigValidators = (*libvirtVMResource)(nil)
)

func newLibvirtVMResource() resource.Resource { return &libvirtVMResource{} }

type libvirtVMResource struct {
	clients *clients
}

type libvirtVMModel struct {
	ID                types.String            `tfsdk:"id"`
	UUID              types.String            `tfsdk:"uuid"`
	Name              types.String            `tfsdk:"name"`
	DomainType        types.String            `tfsdk:"domain_type"`
	Pool              types.String            `tfsdk:"pool"`
	BaseVolume        types.String            `tfsdk:"base_volume"`
	BaseImage         types.String            `tfsdk:"base_image"`
	FullCopy          types.Bool              `tfsdk:"full_copy"`
	DiskSizeGiB       types.Int64             `tfsdk:"disk_size_gib"`
	VCPU              types.Int64             `tfsdk:"vcpu"`
	MemoryMiB         types.Int64             `tfsdk:"memory_mib"`
	Running           types.Bool              `tfsdk:"running"`
	NetworkInterfaces []networkInterfaceModel `tfsdk:"network_interface"`
	CloudInit         *cloudInitModel         `tfsdk:"cloud_init"`
	SSHHost           types.String            `tfsdk:"ssh_host"`
	SSHPort           types.Int64             `tfsdk:"ssh_port"`
	SSHHostPublicKey  types.String            `tfsdk:"ssh_host_public_key"`
	IPAddresses       types.List              `tfsdk:"ip_addresses"`
	RootVolume        types.String            `tfsdk:"root_volume"`
	SeedVolume        types.String            `tfsdk:"seed_volume"`
	BootTimeout       goDuration              `tfsdk:"boot_timeout"`
	Timeouts          timeouts.Value          `tfsdk:"timeouts"`
}

type networkInterfaceModel struct {
	Network        types.String `tfsdk:"network"`
	Bridge         types.String `tfsdk:"bridge"`
	UserMode       types.Bool   `tfsdk:"user_mode"`
	MAC            types.String `tfsdk:"mac"`
	SSHForwardPort types.Int64  `tfsdk:"ssh_forward_port"`
}

type cloudInitModel struct {
	Hostname          types.String         `tfsdk:"hostname"`
	SSHAuthorizedKeys []types.String       `tfsdk:"ssh_authorized_keys"`
	UserData          types.String         `tfsdk:"user_data"`
	Users             []cloudInitUserModel `tfsdk:"user"`
}

type cloudInitUserModel struct {
	Name              types.String   `tfsdk:"name"`
	SSHAuthorizedKeys []types.String `tfsdk:"ssh_authorized_keys"`
	Sudo              types.Bool     `tfsdk:"sudo"`
	Shell             types.String   `tfsdk:"shell"`
	Groups            []types.String `tfsdk:"groups"`
}

// defaultBootTimeout is boot_timeout's default, a Go duration.
const defaultBootTimeout = "3m"

const (
	defaultVMCreateTimeout = 15 * time.Minute
	defaultVMUpdateTimeout = 15 * time.Minute
	defaultVMDeleteTimeout = 5 * time.Minute
)

var domainNamePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)

func (r *libvirtVMResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_libvirt_vm"
}

func (r *libvirtVMResource) Schema(ctx context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	replace := []planmodifier.String{stringplanmodifier.RequiresReplace()}
	resp.Schema = schema.Schema{
		MarkdownDescription: "A Go build VM on libvirt (KVM, or QEMU software emulation where the host " +
			"has no KVM). Its root disk is a copy-on-write overlay of a base image (or a full copy), " +
			"cloud-init receives users, keys and a host key generated by Kiln through a NoCloud seed " +
			"volume, and creation finishes only when the guest's SSH server answers with that host key; " +
			"Kiln then rewrites the seed volume without the private key.\n\n" +
			"Kiln follows the guest's serial console through libvirt while it boots. A guest that shows no " +
			"kernel output there within `boot_timeout` (a `kvm` domain on a host whose KVM cannot run the " +
			"guest's kernel, such as a PVM `/dev/kvm`; a base with nothing bootable on it) is forced off and " +
			"the apply fails after that time, not after the create timeout, with the domain type, how far the " +
			"boot got (nothing at all, firmware, bootloader) and the last console lines; a guest whose SSH " +
			"server never answers fails with the console's last lines too. The VM that failed is recorded " +
			"tainted: the next apply replaces it, and destroy removes it with its volumes.\n\n" +
			"Everything managed is read back from libvirt, so a VM stopped, resized or redefined out of " +
			"band shows in `terraform plan`. vCPUs and memory change in place with a controlled restart, " +
			"the disk grows in place (live when running), and `running` starts or stops the VM; the base, " +
			"pool, networks and cloud-init force a new VM. Requires the provider's `libvirt` block.",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{
				MarkdownDescription: "The domain's UUID.",
				Computed:            true,
				PlanModifiers:       []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"uuid": schema.StringAttribute{
				MarkdownDescription: "The domain's UUID (the same as `id`); also the cloud-init instance id.",
				Computed:            true,
				PlanModifiers:       []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"name": schema.StringAttribute{
				MarkdownDescription: "Domain name; also names the VM's volumes (`<name>-root.qcow2`, `<name>-cidata.iso`). A volume " +
					"already under one of those names fails the create (naming the domain that uses it) and is left alone.",
				Required:      true,
				PlanModifiers: replace,
				Validators: []validator.String{
					stringvalidator.LengthBetween(1, 64),
					stringvalidator.RegexMatches(domainNamePattern, "must start with a letter or digit and hold only letters, digits, `_`, `.` and `-`"),
				},
			},
			"domain_type": schema.StringAttribute{
				MarkdownDescription: "libvirt domain type: `kvm`, or `qemu` for software emulation. " +
					"Defaults to `kvm` when the host offers it, else `qemu`.",
				Optional: true,
				Computed: true,
				PlanModifiers: []planmodifier.String{
					stringplanmodifier.UseStateForUnknown(), stringplanmodifier.RequiresReplace(),
				},
				Validators: []validator.String{stringvalidator.OneOf("kvm", "qemu")},
			},
			"pool": schema.StringAttribute{
				MarkdownDescription: "Storage pool that holds the VM's volumes (and `base_volume`).",
				Required:            true,
				PlanModifiers:       replace,
			},
			"base_volume": schema.StringAttribute{
				MarkdownDescription: "Volume in `pool` the root disk starts from. Exactly one of `base_volume` and `base_image`.",
				Optional:            true,
				Validators:          []validator.String{stringvalidator.LengthAtLeast(1)},
				PlanModifiers:       replace,
			},
			"base_image": schema.StringAttribute{
				MarkdownDescription: "Path of an image file on the libvirt host the root disk starts from.",
				Optional:            true,
				Validators:          []validator.String{stringvalidator.LengthAtLeast(1)},
				PlanModifiers:       replace,
			},
			"full_copy": schema.BoolAttribute{
				MarkdownDescription: "Copy the base into the root volume instead of creating a copy-on-write " +
					"overlay on it. Needs the base to be a volume in a pool. Defaults to `false`.",
				Optional:      true,
				Computed:      true,
				Default:       booldefault.StaticBool(false),
				PlanModifiers: []planmodifier.Bool{boolplanmodifier.RequiresReplace()},
			},
			"disk_size_gib": schema.Int64Attribute{
				MarkdownDescription: "Root disk size in GiB. Growing it is done in place (live when running; " +
					"the guest's cloud-init grows the file system at next boot); shrinking forces a new VM. " +
					"Defaults to the base image's size.",
				Optional: true,
				Computed: true,
				PlanModifiers: []planmodifier.Int64{
					int64planmodifier.UseStateForUnknown(),
					int64planmodifier.RequiresReplaceIf(diskShrinks, "Shrinking the disk forces a new VM.", "Shrinking the disk forces a new VM."),
				},
				Validators: []validator.Int64{int64validator.Between(1, 64*1024)},
			},
			"vcpu": schema.Int64Attribute{
				MarkdownDescription: "Virtual CPUs. Changing it restarts a running VM. Defaults to `1`.",
				Optional:            true,
				Computed:            true,
				Default:             int64default.StaticInt64(1),
				Validators:          []validator.Int64{int64validator.Between(1, 256)},
			},
			"memory_mib": schema.Int64Attribute{
				MarkdownDescription: "Memory in MiB. Changing it restarts a running VM. Defaults to `1024`.",
				Optional:            true,
				Computed:            true,
				Default:             int64default.StaticInt64(1024),
				Validators:          []validator.Int64{int64validator.Between(128, 4*1024*1024)},
			},
			"running": schema.BoolAttribute{
				MarkdownDescription: "Whether the VM should be running. A VM stopped out of band shows as a change. " +
					"Stopping asks the guest to power off and forces it off after 90 s. Defaults to `true`.",
				Optional: true,
				Computed: true,
				Default:  booldefault.StaticBool(true),
			},
			"ssh_host": schema.StringAttribute{
				MarkdownDescription: "Address to reach the guest's SSH server: `127.0.0.1` with user-mode " +
					"networking, else its first IP address.",
				Computed:      true,
				PlanModifiers: []planmodifier.String{keepEndpoint{}},
			},
			"ssh_port": schema.Int64Attribute{
				MarkdownDescription: "Port of the guest's SSH server at `ssh_host`.",
				Computed:            true,
				PlanModifiers:       []planmodifier.Int64{keepEndpoint{}},
			},
			"ssh_host_public_key": schema.StringAttribute{
				MarkdownDescription: "The guest's SSH host public key (authorized_keys format), generated by " +
					"Kiln and given to the guest through cloud-init: pin it in later SSH steps.",
				Computed:      true,
				PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"ip_addresses": schema.ListAttribute{
				MarkdownDescription: "The guest's IP addresses, from the QEMU guest agent or DHCP leases; empty when stopped. Known only after the apply when an update restarts the guest (a change of `vcpu` or `memory_mib` while it runs).",
				ElementType:         types.StringType,
				Computed:            true,
				PlanModifiers:       []planmodifier.List{keepEndpoint{addresses: true}},
			},
			"root_volume": schema.StringAttribute{
				MarkdownDescription: "Name of the root volume Kiln created in `pool`.",
				Computed:            true,
				PlanModifiers:       []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"seed_volume": schema.StringAttribute{
				MarkdownDescription: "Name of the cloud-init seed volume Kiln created in `pool`.",
				Computed:            true,
				PlanModifiers:       []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"boot_timeout": durationAttribute("How long the guest may show no kernel output on its serial console after "+
				"Kiln starts it (on create, and when an update starts or restarts it), a Go duration (`45s`, "+
				"`5m`); firmware and bootloader output do not count. `0` turns the check off: use it for an image "+
				"that does not write to the serial console (no `console=ttyS0` on its kernel command "+
				"line). Changing it changes nothing on the VM.", defaultBootTimeout),
		},
		Blocks: map[string]schema.Block{
			"network_interface": schema.ListNestedBlock{
				MarkdownDescription: "Network interfaces, in order. Each sets exactly one of `network`, " +
					"`bridge` or `user_mode`. A user-mode interface (at most one) comes last.",
				PlanModifiers: []planmodifier.List{
					listplanmodifier.RequiresReplaceIf(interfaceCountChanges, "Adding or removing interfaces forces a new VM.", "Adding or removing interfaces forces a new VM."),
				},
				NestedObject: schema.NestedBlockObject{
					Attributes: map[string]schema.Attribute{
						"network": schema.StringAttribute{
							MarkdownDescription: "libvirt network to attach to.",
							Optional:            true,
							PlanModifiers:       replace,
							Validators: []validator.String{stringvalidator.ExactlyOneOf(
								path.MatchRelative().AtParent().AtName("bridge"),
								path.MatchRelative().AtParent().AtName("user_mode"),
							)},
						},
						"bridge": schema.StringAttribute{
							MarkdownDescription: "Host bridge to attach to.",
							Optional:            true,
							Validators:          []validator.String{stringvalidator.LengthAtLeast(1)},
							PlanModifiers:       replace,
						},
						"user_mode": schema.BoolAttribute{
							MarkdownDescription: "QEMU user-mode networking: outbound access with no host set-up, and " +
								"the guest's port 22 forwarded to `ssh_forward_port` on the libvirt host's 127.0.0.1. " +
								"Set it to `true`; refused when the provider's libvirt URI names another machine.",
							Optional:      true,
							PlanModifiers: []planmodifier.Bool{boolplanmodifier.RequiresReplace()},
						},
						"mac": schema.StringAttribute{
							MarkdownDescription: "MAC address. Defaults to a random address in `52:54:00:00:00:00/24`.",
							Optional:            true,
							Computed:            true,
							PlanModifiers: []planmodifier.String{
								stringplanmodifier.UseStateForUnknown(), stringplanmodifier.RequiresReplace(),
							},
							Validators: []validator.String{stringvalidator.RegexMatches(
								regexp.MustCompile(`^([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}$`), "must be a MAC address like 52:54:00:12:34:56")},
						},
						"ssh_forward_port": schema.Int64Attribute{
							MarkdownDescription: "With `user_mode`: the port on 127.0.0.1 forwarded to the guest's port 22. " +
								"Defaults to a free port chosen at creation.",
							Optional: true,
							Computed: true,
							PlanModifiers: []planmodifier.Int64{
								int64planmodifier.UseStateForUnknown(), int64planmodifier.RequiresReplace(),
							},
							Validators: []validator.Int64{int64validator.Between(1024, 65535)},
						},
					},
				},
			},
			"cloud_init": schema.SingleNestedBlock{
				MarkdownDescription: "First-boot configuration through cloud-init's NoCloud data source, stored " +
					"as a seed volume in `pool`. Changing it forces a new VM (cloud-init runs once per instance).",
				PlanModifiers: []planmodifier.Object{objectplanmodifier.RequiresReplace()},
				Attributes: map[string]schema.Attribute{
					"hostname": schema.StringAttribute{
						MarkdownDescription: "Guest host name.",
						Optional:            true,
						Validators:          []validator.String{stringvalidator.LengthAtLeast(1)},
					},
					"ssh_authorized_keys": schema.ListAttribute{
						MarkdownDescription: "Public keys authorized for the image's default user (`debian` on Debian images).",
						ElementType:         types.StringType,
						Optional:            true,
						Validators:          []validator.List{listvalidator.SizeAtLeast(1)},
					},
					"user_data": schema.StringAttribute{
						MarkdownDescription: "Extra `#cloud-config` YAML merged into what Kiln generates; Kiln's own " +
							"keys (host name, users, SSH keys) take precedence. Sensitive: it may carry secrets " +
							"(passwords, tokens in `write_files`).",
						Optional:   true,
						Sensitive:  true,
						Validators: []validator.String{stringvalidator.LengthAtLeast(1)},
					},
				},
				Blocks: map[string]schema.Block{
					"user": schema.ListNestedBlock{
						MarkdownDescription: "Extra login users, created besides the image's default user.",
						NestedObject: schema.NestedBlockObject{
							Attributes: map[string]schema.Attribute{
								"name": schema.StringAttribute{
									MarkdownDescription: "User name.",
									Required:            true,
								},
								"ssh_authorized_keys": schema.ListAttribute{
									MarkdownDescription: "Public keys authorized for this user.",
									ElementType:         types.StringType,
									Optional:            true,
									Validators:          []validator.List{listvalidator.SizeAtLeast(1)},
								},
								"sudo": schema.BoolAttribute{
									MarkdownDescription: "Grant password-less sudo. Defaults to `false`.",
									Optional:            true,
									Computed:            true,
									Default:             booldefault.StaticBool(false),
								},
								"shell": schema.StringAttribute{
									MarkdownDescription: "Login shell; the image's default when unset.",
									Optional:            true,
									Validators:          []validator.String{stringvalidator.LengthAtLeast(1)},
								},
								"groups": schema.ListAttribute{
									MarkdownDescription: "Supplementary groups.",
									ElementType:         types.StringType,
									Optional:            true,
									Validators:          []validator.List{listvalidator.SizeAtLeast(1)},
								},
							},
						},
					},
				},
			},
			"timeouts": timeouts.Block(ctx, timeouts.Opts{Create: true, Update: true, Delete: true}),
		},
	}
}

// keepEndpoint keeps the prior ssh_host, ssh_port or ip_addresses in a plan
// that does not start or stop the VM, so that resources using them (a
// kiln_go_host's ssh block) are not replaced by an in-place update such as
// growing memory. A user-mode forward keeps its endpoint even then; addresses
// are read only from a running guest, and a running guest whose vcpu or
// memory changes is restarted, coming back with addresses it may not have
// all configured yet (an IPv6 one), so its list is left to the apply.
type keepEndpoint struct{ addresses bool }

func (keepEndpoint) Description(context.Context) string {
	return "Keeps the prior value unless the VM is started or stopped."
}

func (m keepEndpoint) MarkdownDescription(ctx context.Context) string { return m.Description(ctx) }

func (m keepEndpoint) keep(ctx context.Context, state tfsdk.State, plan tfsdk.Plan, diags *diag.Diagnostics) bool {
	if state.Raw.IsNull() || plan.Raw.IsNull() {
		return false
	}
	var was, will types.Bool
	var ifaces []networkInterfaceModel
	diags.Append(state.GetAttribute(ctx, path.Root("running"), &was)...)
	diags.Append(plan.GetAttribute(ctx, path.Root("running"), &will)...)
	diags.Append(state.GetAttribute(ctx, path.Root("network_interface"), &ifaces)...)
	if diags.HasError() {
		return false
	}
	if !m.addresses && slices.ContainsFunc(ifaces, func(i networkInterfaceModel) bool { return i.UserMode.ValueBool() }) {
		return true
	}
	if will.IsUnknown() || !will.Equal(was) {
		return false
	}
	return !m.addresses || !was.ValueBool() || !restarts(ctx, state, plan, diags)
}

// restarts tells whether an update from state to plan redefines the domain,
// which restarts a running guest: a change of vcpu or memory_mib.
func restarts(ctx context.Context, state tfsdk.State, plan tfsdk.Plan, diags *diag.Diagnostics) bool {
	for _, attr := range []string{"vcpu", "memory_mib"} {
		var was, will types.Int64
		diags.Append(state.GetAttribute(ctx, path.Root(attr), &was)...)
		diags.Append(plan.GetAttribute(ctx, path.Root(attr), &will)...)
		if will.IsUnknown() || !will.Equal(was) {
			return true
		}
	}
	return false
}

func (m keepEndpoint) PlanModifyString(ctx context.Context, req planmodifier.StringRequest, resp *planmodifier.StringResponse) {
	if req.PlanValue.IsUnknown() && m.keep(ctx, req.State, req.Plan, &resp.Diagnostics) {
		resp.PlanValue = req.StateValue
	}
}

func (m keepEndpoint) PlanModifyInt64(ctx context.Context, req planmodifier.Int64Request, resp *planmodifier.Int64Response) {
	if req.PlanValue.IsUnknown() && m.keep(ctx, req.State, req.Plan, &resp.Diagnostics) {
		resp.PlanValue = req.StateValue
	}
}

func (m keepEndpoint) PlanModifyList(ctx context.Context, req planmodifier.ListRequest, resp *planmodifier.ListResponse) {
	if req.PlanValue.IsUnknown() && m.keep(ctx, req.State, req.Plan, &resp.Diagnostics) {
		resp.PlanValue = req.StateValue
	}
}

func diskShrinks(_ context.Context, req planmodifier.Int64Request, resp *int64planmodifier.RequiresReplaceIfFuncResponse) {
	resp.RequiresReplace = !req.StateValue.IsNull() && !req.PlanValue.IsUnknown() && req.PlanValue.ValueInt64() < req.StateValue.ValueInt64()
}

func interfaceCountChanges(_ context.Context, req planmodifier.ListRequest, resp *listplanmodifier.RequiresReplaceIfFuncResponse) {
	resp.RequiresReplace = !req.StateValue.IsNull() && len(req.PlanValue.Elements()) != len(req.StateValue.Elements())
}

func (r *libvirtVMResource) ConfigValidators(context.Context) []resource.ConfigValidator {
	return []resource.ConfigValidator{
		resourcevalidator.ExactlyOneOf(path.MatchRoot("base_volume"), path.MatchRoot("base_image")),
	}
}

// ValidateConfig checks the rules that span list elements.
func (r *libvirtVMResource) ValidateConfig(ctx context.Context, req resource.ValidateConfigRequest, resp *resource.ValidateConfigResponse) {
	var ifaces []networkInterfaceModel
	resp.Diagnostics.Append(req.Config.GetAttribute(ctx, path.Root("network_interface"), &ifaces)...)
	if resp.Diagnostics.HasError() {
		return
	}
	for i, iface := range ifaces {
		at := path.Root("network_interface").AtListIndex(i)
		if !iface.UserMode.IsNull() && !iface.UserMode.IsUnknown() && !iface.UserMode.ValueBool() {
			resp.Diagnostics.AddAttributeError(at.AtName("user_mode"), "Invalid user_mode",
				"Set user_mode = true for a user-mode interface, or leave it out and set network or bridge.")
		}
		if iface.UserMode.ValueBool() && i != len(ifaces)-1 {
			resp.Diagnostics.AddAttributeError(at.AtName("user_mode"), "User-mode interface must come last",
				"QEMU attaches the user-mode interface after libvirt's own interfaces; declare it last (at most one).")
		}
		if !iface.SSHForwardPort.IsNull() && !iface.SSHForwardPort.IsUnknown() && !iface.UserMode.ValueBool() {
			resp.Diagnostics.AddAttributeError(at.AtName("ssh_forward_port"), "ssh_forward_port needs user_mode",
				"Only a user-mode interface forwards a port on 127.0.0.1 to the guest's SSH server.")
		}
	}
	var fullCopy, baseImage = types.Bool{}, types.String{}
	resp.Diagnostics.Append(req.Config.GetAttribute(ctx, path.Root("full_copy"), &fullCopy)...)
	resp.Diagnostics.Append(req.Config.GetAttribute(ctx, path.Root("base_image"), &baseImage)...)
	if fullCopy.ValueBool() && !baseImage.IsNull() {
		resp.Diagnostics.AddAttributeError(path.Root("full_copy"), "full_copy needs base_volume",
			"A full copy is made by libvirt from a volume; use base_volume, or a copy-on-write overlay of base_image.")
	}
}

func (r *libvirtVMResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	r.clients = configuredClients(req.ProviderData, &resp.Diagnostics)
}

// ModifyPlan fails the plan when the provider has no libvirt block, or a
// user-mode interface meets a libvirt on another machine.
func (r *libvirtVMResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	if req.Plan.Raw.IsNull() || r.clients == nil {
		return
	}
	engine := requireEngine(r.clients, libvirtBlock, &resp.Diagnostics)
	if engine == nil || engine.Local() {
		return
	}
	var ifaces []networkInterfaceModel
	resp.Diagnostics.Append(req.Plan.GetAttribute(ctx, path.Root("network_interface"), &ifaces)...)
	for i, iface := range ifaces {
		if iface.UserMode.ValueBool() {
			resp.Diagnostics.AddAttributeError(path.Root("network_interface").AtListIndex(i).AtName("user_mode"),
				"User-mode networking needs a local libvirt",
				fmt.Sprintf("The provider's libvirt is %s, on another machine: QEMU would forward the guest's SSH port on "+
					"that machine's 127.0.0.1, out of Kiln's reach. Use a libvirt network or bridge there.", engine.URI()))
		}
	}
}

func (r *libvirtVMResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan libvirtVMModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	timeout, diags := plan.Timeouts.Create(ctx, defaultVMCreateTimeout)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	want := plan.toVM(&resp.Diagnostics)
	if resp.Diagnostics.HasError() {
		return
	}
	opCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	vm, err := r.clients.libvirt.CreateVM(opCtx, want)
	if err != nil {
		resp.Diagnostics.AddError("Could not create libvirt VM", fmt.Sprintf("VM %q on %s: %s%s", plan.Name.ValueString(), r.clients.libvirt.URI(), err, bootHint(err)))
		if vm.UUID != "" {
			// The domain exists: record it so Terraform marks it tainted and the
			// next apply replaces it, instead of leaving an orphan behind.
			resp.Diagnostics.Append(resp.State.Set(ctx, fromVM(vm, plan.BootTimeout, plan.Timeouts))...)
		}
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, fromVM(vm, plan.BootTimeout, plan.Timeouts))...)
}

// bootHint is what to do about a guest that did not boot, in the resource's terms.
func bootHint(err error) string {
	var bootErr *libvirt.BootError
	switch {
	case !errors.As(err, &bootErr):
		return ""
	case bootErr.Type == "kvm":
		return "\n\nWhere KVM is not usable for this guest (no usable /dev/kvm, a PVM /dev/kvm that runs only " +
			"PVM guest kernels, nested virtualisation without KVM), set domain_type = \"qemu\" for software emulation."
	case bootErr.Seen == libvirt.BootNothing:
		return "\n\nIf the image does not write to the serial console, set boot_timeout = \"0\" to turn this check off."
	}
	return ""
}

func (r *libvirtVMResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var state libvirtVMModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	engine := requireEngine(r.clients, libvirtBlock, &resp.Diagnostics)
	if engine == nil {
		return
	}
	vm, err := engine.ReadVM(ctx, state.ID.ValueString())
	if errors.Is(err, libvirt.ErrNotFound) {
		resp.State.RemoveResource(ctx)
		return
	}
	if err != nil {
		resp.Diagnostics.AddError("Could not read libvirt VM", fmt.Sprintf("VM %q on %s: %s", state.ID.ValueString(), r.clients.libvirt.URI(), err))
		return
	}
	bootTimeout := state.BootTimeout
	if bootTimeout.IsNull() {
		// Imported: libvirt does not hold it.
		bootTimeout = timetypes.NewGoDurationValueFromStringMust(defaultBootTimeout)
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, fromVM(vm, bootTimeout, state.Timeouts))...)
}

func (r *libvirtVMResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan, state libvirtVMModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	timeout, diags := plan.Timeouts.Update(ctx, defaultVMUpdateTimeout)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	want := plan.toVM(&resp.Diagnostics)
	if resp.Diagnostics.HasError() {
		return
	}
	want.UUID = state.ID.ValueString()
	opCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	vm, err := r.clients.libvirt.UpdateVM(opCtx, want)
	if err != nil {
		resp.Diagnostics.AddError("Could not update libvirt VM", fmt.Sprintf("VM %q on %s: %s%s", plan.Name.ValueString(), r.clients.libvirt.URI(), err, bootHint(err)))
		if vm.UUID != "" {
			// Record what the VM is now, so the next plan shows what is left to do.
			resp.Diagnostics.Append(resp.State.Set(ctx, fromVM(vm, state.BootTimeout, state.Timeouts))...)
		}
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, fromVM(vm, plan.BootTimeout, plan.Timeouts))...)
}

func (r *libvirtVMResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var state libvirtVMModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	timeout, diags := state.Timeouts.Delete(ctx, defaultVMDeleteTimeout)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	opCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	err := r.clients.libvirt.DeleteVM(opCtx, libvirt.VM{
		UUID: state.ID.ValueString(), Name: state.Name.ValueString(), Pool: state.Pool.ValueString(),
		RootVolume: state.RootVolume.ValueString(), SeedVolume: state.SeedVolume.ValueString(),
	})
	if err != nil {
		resp.Diagnostics.AddError("Could not delete libvirt VM", fmt.Sprintf("VM %q on %s: %s", state.Name.ValueString(), r.clients.libvirt.URI(), err))
	}
}

// ImportState accepts a domain name or UUID; Read resolves it to the UUID.
func (r *libvirtVMResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	resource.ImportStatePassthroughID(ctx, path.Root("id"), req, resp)
}

func (m libvirtVMModel) toVM(diags *diag.Diagnostics) libvirt.VM {
	bootTimeout, d := m.BootTimeout.ValueGoDuration()
	diags.Append(d...)
	vm := libvirt.VM{
		Name:       m.Name.ValueString(),
		Type:       m.DomainType.ValueString(),
		Pool:       m.Pool.ValueString(),
		BaseVolume: m.BaseVolume.ValueString(),
		BaseImage:  m.BaseImage.ValueString(),
		FullCopy:   m.FullCopy.ValueBool(),
		DiskBytes:  uint64(m.DiskSizeGiB.ValueInt64()) * libvirt.GiB,
		VCPU:       uint(m.VCPU.ValueInt64()),
		MemoryMiB:  uint64(m.MemoryMiB.ValueInt64()),
		Running:    m.Running.ValueBool(),

		BootTimeout: bootTimeout,
	}
	for _, iface := range m.NetworkInterfaces {
		vm.Interfaces = append(vm.Interfaces, libvirt.Interface{
			Network:        iface.Network.ValueString(),
			Bridge:         iface.Bridge.ValueString(),
			UserMode:       iface.UserMode.ValueBool(),
			MAC:            iface.MAC.ValueString(),
			SSHForwardPort: int(iface.SSHForwardPort.ValueInt64()),
		})
	}
	if ci := m.CloudInit; ci != nil {
		vm.CloudInit = cloudinit.Config{
			Hostname:          ci.Hostname.ValueString(),
			SSHAuthorizedKeys: stringsOf(ci.SSHAuthorizedKeys),
			ExtraUserData:     ci.UserData.ValueString(),
		}
		for _, u := range ci.Users {
			vm.CloudInit.Users = append(vm.CloudInit.Users, cloudinit.User{
				Name:              u.Name.ValueString(),
				SSHAuthorizedKeys: stringsOf(u.SSHAuthorizedKeys),
				Sudo:              u.Sudo.ValueBool(),
				Shell:             u.Shell.ValueString(),
				Groups:            stringsOf(u.Groups),
			})
		}
	}
	return vm
}

// fromVM renders a VM read back from libvirt as state, with the settings that
// libvirt does not hold.
func fromVM(vm libvirt.VM, bootTimeout goDuration, t timeouts.Value) libvirtVMModel {
	m := libvirtVMModel{
		ID:                types.StringValue(vm.UUID),
		UUID:              types.StringValue(vm.UUID),
		Name:              types.StringValue(vm.Name),
		DomainType:        types.StringValue(vm.Type),
		Pool:              types.StringValue(vm.Pool),
		BaseVolume:        optionalString(vm.BaseVolume),
		BaseImage:         optionalString(vm.BaseImage),
		FullCopy:          types.BoolValue(vm.FullCopy),
		DiskSizeGiB:       types.Int64Value(int64((vm.DiskBytes + libvirt.GiB - 1) / libvirt.GiB)),
		VCPU:              types.Int64Value(int64(vm.VCPU)),
		MemoryMiB:         types.Int64Value(int64(vm.MemoryMiB)),
		Running:           types.BoolValue(vm.Running),
		NetworkInterfaces: []networkInterfaceModel{},
		SSHHost:           optionalString(vm.SSHHost),
		SSHPort:           types.Int64Null(),
		SSHHostPublicKey:  optionalString(vm.SSHHostKey),
		IPAddresses:       stringList(vm.IPAddresses),
		RootVolume:        optionalString(vm.RootVolume),
		SeedVolume:        optionalString(vm.SeedVolume),
		BootTimeout:       bootTimeout,
		Timeouts:          t,
	}
	if vm.SSHPort != 0 {
		m.SSHPort = types.Int64Value(int64(vm.SSHPort))
	}
	for _, iface := range vm.Interfaces {
		n := networkInterfaceModel{
			Network:        optionalString(iface.Network),
			Bridge:         optionalString(iface.Bridge),
			UserMode:       types.BoolNull(),
			MAC:            types.StringValue(iface.MAC),
			SSHForwardPort: types.Int64Null(),
		}
		if iface.UserMode {
			n.UserMode = types.BoolValue(true)
			n.SSHForwardPort = types.Int64Value(int64(iface.SSHForwardPort))
		}
		m.NetworkInterfaces = append(m.NetworkInterfaces, n)
	}
	ci := vm.CloudInit
	if ci.Hostname != "" || ci.ExtraUserData != "" || len(ci.SSHAuthorizedKeys) > 0 || len(ci.Users) > 0 {
		m.CloudInit = &cloudInitModel{
			Hostname:          optionalString(ci.Hostname),
			SSHAuthorizedKeys: stringValues(ci.SSHAuthorizedKeys),
			UserData:          optionalString(ci.ExtraUserData),
			Users:             []cloudInitUserModel{},
		}
		for _, u := range ci.Users {
			m.CloudInit.Users = append(m.CloudInit.Users, cloudInitUserModel{
				Name:              types.StringValue(u.Name),
				SSHAuthorizedKeys: stringValues(u.SSHAuthorizedKeys),
				Sudo:              types.BoolValue(u.Sudo),
				Shell:             optionalString(u.Shell),
				Groups:            stringValues(u.Groups),
			})
		}
	}
	return m
}
