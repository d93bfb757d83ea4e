package provider

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework-timeouts/resource/timeouts"
	"github.com/hashicorp/terraform-plugin-framework-timetypes/timetypes"
	"github.com/hashicorp/terraform-plugin-framework-validators/int64validator"
	"github.com/hashicorp/terraform-plugin-framework-validators/listvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/mapvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/resourcevalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/booldefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/boolplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/int64planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/listplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/objectplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringdefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/tfsdk"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/kilnhq/terraform-provider-kiln/internal/vsphere"
)

var (
	_ resource.ResourceWithConfigure        = (*vsphereVMResource)(nil)
	_ resource.ResourceWithImportState      = (*vsphereVMResource)(nil)
	_ resource.ResourceWithModifyPlan       = (*vsphereVMResource)(nil)
	_ resource.ResourceWithConfigValidators = (*vsphereVMResource)(nil)
)

func newVsphereVMResource() resource.Resource { return &vsphereVMResource{} }

type vsphereVMResource struct {
	clients *clients
}

type vsphereVMModel struct {
	ID               types.String           `tfsdk:"id"`
	UUID             types.String           `tfsdk:"uuid"`
	MOID             types.String           `tfsdk:"moid"`
	Name             types.String           `tfsdk:"name"`
	Datacenter       types.String           `tfsdk:"datacenter"`
	Source           types.String           `tfsdk:"source"`
	LinkedClone      types.Bool             `tfsdk:"linked_clone"`
	Snapshot         types.String           `tfsdk:"snapshot"`
	Cluster          types.String           `tfsdk:"cluster"`
	Host             types.String           `tfsdk:"host"`
	ResourcePool     types.String           `tfsdk:"resource_pool"`
	Datastore        types.String           `tfsdk:"datastore"`
	Folder           types.String           `tfsdk:"folder"`
	NumCPUs          types.Int64            `tfsdk:"num_cpus"`
	MemoryMiB        types.Int64            `tfsdk:"memory_mib"`
	Disks            types.List             `tfsdk:"disks"`
	Networks         types.List             `tfsdk:"networks"`
	ExtraConfig      types.Map              `tfsdk:"extra_config"`
	PowerState       types.String           `tfsdk:"power_state"`
	AllowPowerCycle  types.Bool             `tfsdk:"allow_power_cycle"`
	WaitForIPTimeout goDuration             `tfsdk:"wait_for_ip_timeout"`
	DefaultIPAddress types.String           `tfsdk:"default_ip_address"`
	IPAddresses      types.List             `tfsdk:"ip_addresses"`
	Customize        *vsphereCustomizeModel `tfsdk:"customize"`
	Timeouts         timeouts.Value         `tfsdk:"timeouts"`
}

type vsphereCustomizeModel struct {
	Hostname    types.String   `tfsdk:"hostname"`
	Domain      types.String   `tfsdk:"domain"`
	DNSServers  []types.String `tfsdk:"dns_servers"`
	DNSSuffixes []types.String `tfsdk:"dns_suffixes"`
	IPv4Address types.String   `tfsdk:"ipv4_address"`
	IPv4Gateway types.String   `tfsdk:"ipv4_gateway"`
}

type vsphereDiskModel struct {
	SizeGiB types.Int64 `tfsdk:"size_gib"`
}

var vsphereDiskType = types.ObjectType{AttrTypes: map[string]attr.Type{"size_gib": types.Int64Type}}

const (
	defaultWaitForIPTimeout = "5m"
)

var (
	cidrPattern = regexp.MustCompile(`^([0-9]{1,3}\.){3}[0-9]{1,3}/[0-9]{1,2}$`)
	ipv4Pattern = regexp.MustCompile(`^([0-9]{1,3}\.){3}[0-9]{1,3}$`)
)

func (r *vsphereVMResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_vsphere_vm"
}

func (r *vsphereVMResource) Schema(ctx context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	replace := []planmodifier.String{stringplanmodifier.RequiresReplace()}
	keep := []planmodifier.String{stringplanmodifier.UseStateForUnknown()}
	resp.Schema = schema.Schema{
		MarkdownDescription: "A Go build VM on vSphere, cloned from a template or VM: a full clone, or a linked " +
			"clone whose disks are children of a snapshot of the source. Guest customization sets the host " +
			"name, DNS and IPv4 settings at the first power-on, and creation waits for the guest's IP address.\n\n" +
			"Everything managed is read back from vCenter, so a VM powered off, reconfigured, moved to another " +
			"folder or whose disk grew out of band shows in `terraform plan`. CPUs and memory change in place: " +
			"live when hot-add is enabled on the VM, else with a power cycle when `allow_power_cycle` is set, " +
			"else the apply fails and says why. Disks grow in place; placement (cluster, host, resource pool, " +
			"datastore, folder) changes in place with a migration; the source, clone kind and customization " +
			"force a new VM. Requires the provider's `vsphere` block.",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{
				MarkdownDescription: "The VM's BIOS UUID (same as `uuid`).",
				Computed:            true,
				PlanModifiers:       keep,
			},
			"uuid": schema.StringAttribute{
				MarkdownDescription: "The VM's BIOS UUID (`config.uuid`).",
				Computed:            true,
				PlanModifiers:       keep,
			},
			"moid": schema.StringAttribute{
				MarkdownDescription: "The VM's managed object ID, for example `vm-42`.",
				Computed:            true,
				PlanModifiers:       keep,
			},
			"name": schema.StringAttribute{
				MarkdownDescription: "VM name, unique in its folder. Renaming is done in place.",
				Required:            true,
				Validators:          []validator.String{stringvalidator.LengthBetween(1, 80)},
			},
			"datacenter": schema.StringAttribute{
				MarkdownDescription: "Name of the VM's datacenter. Defaults to the provider's `datacenter`, or the only datacenter.",
				Optional:            true,
				Computed:            true,
				PlanModifiers:       []planmodifier.String{stringplanmodifier.UseStateForUnknown(), stringplanmodifier.RequiresReplace()},
				Validators:          []validator.String{stringvalidator.LengthAtLeast(1)},
			},
			"source": schema.StringAttribute{
				MarkdownDescription: "Template or VM to clone: an inventory path (absolute, or relative to the " +
					"datacenter's VM folder, like `templates/debian-12`), a name, or a UUID.",
				Required:      true,
				PlanModifiers: replace,
				Validators:    []validator.String{stringvalidator.LengthAtLeast(1)},
			},
			"linked_clone": schema.BoolAttribute{
				MarkdownDescription: "Make a linked clone: the VM's disks are children of a snapshot of `source`, " +
					"so creation takes seconds and little space. Defaults to `false` (a full clone).",
				Optional:      true,
				Computed:      true,
				Default:       booldefault.StaticBool(false),
				PlanModifiers: []planmodifier.Bool{boolplanmodifier.RequiresReplace()},
			},
			"snapshot": schema.StringAttribute{
				MarkdownDescription: "With `linked_clone`: the snapshot of `source` to start from. Defaults to its current snapshot.",
				Optional:            true,
				PlanModifiers:       replace,
				Validators:          []validator.String{stringvalidator.LengthAtLeast(1)},
			},
			"cluster": schema.StringAttribute{
				MarkdownDescription: "Name of the cluster to run the VM in. At least one of `cluster` and `host` is required; " +
					"read back from the VM's resource pool.",
				Optional:      true,
				Computed:      true,
				PlanModifiers: keep,
				Validators:    []validator.String{stringvalidator.LengthAtLeast(1)},
			},
			"host": schema.StringAttribute{
				MarkdownDescription: "Name of the ESXi host to run the VM on. Defaults to a host of " +
					"`cluster`; when unset, a host change by DRS is not a diff.",
				Optional:      true,
				Computed:      true,
				PlanModifiers: keep,
				Validators:    []validator.String{stringvalidator.LengthAtLeast(1)},
			},
			"resource_pool": schema.StringAttribute{
				MarkdownDescription: "Resource pool path below the cluster's (or host's) root pool, like `builds` " +
					"or `builds/go`. Defaults to `\"\"`, the root pool.",
				Optional: true,
				Computed: true,
				Default:  stringdefault.StaticString(""),
			},
			"datastore": schema.StringAttribute{
				MarkdownDescription: "Name of the datastore for the VM's files and disks. Defaults to the source's datastore. " +
					"Changing it migrates the VM's storage in place.",
				Optional:      true,
				Computed:      true,
				PlanModifiers: keep,
				Validators:    []validator.String{stringvalidator.LengthAtLeast(1)},
			},
			"folder": schema.StringAttribute{
				MarkdownDescription: "VM folder path below the datacenter's VM folder, like `builds/go`. Defaults " +
					"to `\"\"`, the VM folder itself. A VM moved out of band shows as a change.",
				Optional: true,
				Computed: true,
				Default:  stringdefault.StaticString(""),
			},
			"num_cpus": schema.Int64Attribute{
				MarkdownDescription: "Virtual CPUs. Defaults to the source's.",
				Optional:            true,
				Computed:            true,
				PlanModifiers:       []planmodifier.Int64{int64planmodifier.UseStateForUnknown()},
				Validators:          []validator.Int64{int64validator.Between(1, 768)},
			},
			"memory_mib": schema.Int64Attribute{
				MarkdownDescription: "Memory in MiB. Defaults to the source's.",
				Optional:            true,
				Computed:            true,
				PlanModifiers:       []planmodifier.Int64{int64planmodifier.UseStateForUnknown()},
				Validators:          []validator.Int64{int64validator.Between(4, 24*1024*1024)},
			},
			"disks": schema.ListNestedAttribute{
				MarkdownDescription: "The VM's disks, in device order, one entry per disk of the source. Growing " +
					"a disk is done in place (live); shrinking one forces a new VM. Defaults to the source's disks.",
				Optional: true,
				Computed: true,
				PlanModifiers: []planmodifier.List{
					listplanmodifier.UseStateForUnknown(),
					listplanmodifier.RequiresReplaceIf(disksShrink, "Shrinking a disk or changing the number of disks forces a new VM.",
						"Shrinking a disk or changing the number of disks forces a new VM."),
				},
				Validators: []validator.List{listvalidator.SizeAtLeast(1)},
				NestedObject: schema.NestedAttributeObject{
					Attributes: map[string]schema.Attribute{
						"size_gib": schema.Int64Attribute{
							MarkdownDescription: "Disk size in GiB.",
							Required:            true,
							Validators:          []validator.Int64{int64validator.Between(1, 62*1024)},
						},
					},
				},
			},
			"networks": schema.ListAttribute{
				MarkdownDescription: "Port group (network name) of each network adapter, in device order, one per " +
					"adapter of the source. Changing a port group is done in place. Defaults to the source's.",
				ElementType: types.StringType,
				Optional:    true,
				Computed:    true,
				PlanModifiers: []planmodifier.List{
					listplanmodifier.UseStateForUnknown(),
					listplanmodifier.RequiresReplaceIf(countChanges, "Changing the number of network adapters forces a new VM.",
						"Changing the number of network adapters forces a new VM."),
				},
				Validators: []validator.List{listvalidator.SizeAtLeast(1), listvalidator.ValueStringsAre(stringvalidator.LengthAtLeast(1))},
			},
			"extra_config": schema.MapAttribute{
				MarkdownDescription: "extraConfig keys and values to set on the VM, such as `guestinfo.*` keys the " +
					"guest reads through VMware Tools (`vmtoolsd --cmd \"info-get guestinfo.x\"`). Only these keys " +
					"are managed and read back; removing one removes it from the VM. Sensitive: `guestinfo` values " +
					"often carry credentials for the guest.",
				ElementType: types.StringType,
				Optional:    true,
				Sensitive:   true,
				Validators: []validator.Map{
					mapvalidator.SizeAtLeast(1),
					mapvalidator.KeysAre(stringvalidator.RegexMatches(regexp.MustCompile(`^[A-Za-z0-9_.\-]+$`), "must be an extraConfig key like guestinfo.role"),
						notReservedKey{}),
					mapvalidator.ValueStringsAre(stringvalidator.LengthAtLeast(1)),
				},
			},
			"power_state": schema.StringAttribute{
				MarkdownDescription: "Desired power state, `on` or `off`. A VM powered off (or on) out of band shows " +
					"as a change. Powering off asks VMware Tools for a guest shutdown first. Defaults to `on`.",
				Optional:   true,
				Computed:   true,
				Default:    stringdefault.StaticString("on"),
				Validators: []validator.String{stringvalidator.OneOf("on", "off")},
			},
			"allow_power_cycle": schema.BoolAttribute{
				MarkdownDescription: "Let an update power a running VM off and on when vSphere cannot change CPUs or " +
					"memory live (hot-add disabled, or a decrease). Defaults to `false`: such an update fails instead. " +
					"It only steers an apply: changing it alone plans no update (it is recorded with the next one), " +
					"and an import records the default.",
				Optional: true,
				Computed: true,
				Default:  booldefault.StaticBool(false),
			},
			"wait_for_ip_timeout": durationAttribute("How long to wait for a guest IP address (reported by VMware Tools) after Kiln "+
				"powers the VM on, as a Go duration (`90s`, `5m`); `0` does not wait. It only steers an apply: changing "+
				"it alone plans no update (it is recorded with the next one), and an import records the default.", defaultWaitForIPTimeout),
			"default_ip_address": schema.StringAttribute{
				MarkdownDescription: "The guest's primary IP address as VMware Tools report it; null when unknown.",
				Computed:            true,
			},
			"ip_addresses": schema.ListAttribute{
				MarkdownDescription: "All the guest's IP addresses (link-local ones left out); empty when powered off.",
				ElementType:         types.StringType,
				Computed:            true,
			},
		},
		Blocks: map[string]schema.Block{
			"customize": schema.SingleNestedBlock{
				MarkdownDescription: "Linux guest customization, applied by VMware Tools at the first power-on: host " +
					"name, domain, DNS, and a static IPv4 address (or DHCP) on the first network adapter; further " +
					"adapters use DHCP. Kiln records it on the VM (extraConfig `kiln.customization`) so that an import " +
					"reads it back, but does not check it against the guest. Changing it forces a new VM.",
				PlanModifiers: []planmodifier.Object{objectplanmodifier.RequiresReplace()},
				Attributes: map[string]schema.Attribute{
					"hostname": schema.StringAttribute{
						MarkdownDescription: "Guest host name. Defaults to the VM name.",
						Optional:            true,
						Validators: []validator.String{stringvalidator.RegexMatches(
							regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$`), "must be a host name label")},
					},
					"domain": schema.StringAttribute{
						MarkdownDescription: "DNS domain of the guest.",
						Optional:            true,
						Validators:          []validator.String{stringvalidator.LengthAtLeast(1)},
					},
					"dns_servers": schema.ListAttribute{
						MarkdownDescription: "DNS server addresses.",
						ElementType:         types.StringType,
						Optional:            true,
						Validators:          []validator.List{listvalidator.SizeAtLeast(1), listvalidator.ValueStringsAre(stringvalidator.LengthAtLeast(1))},
					},
					"dns_suffixes": schema.ListAttribute{
						MarkdownDescription: "DNS search domains.",
						ElementType:         types.StringType,
						Optional:            true,
						Validators:          []validator.List{listvalidator.SizeAtLeast(1), listvalidator.ValueStringsAre(stringvalidator.LengthAtLeast(1))},
					},
					"ipv4_address": schema.StringAttribute{
						MarkdownDescription: "Static IPv4 address with prefix length for the first adapter, like " +
							"`10.0.0.5/24`. Unset means DHCP.",
						Optional:   true,
						Validators: []validator.String{stringvalidator.RegexMatches(cidrPattern, "must be an IPv4 address with prefix length, like 10.0.0.5/24")},
					},
					"ipv4_gateway": schema.StringAttribute{
						MarkdownDescription: "IPv4 default gateway, with `ipv4_address`.",
						Optional:            true,
						Validators: []validator.String{
							stringvalidator.RegexMatches(ipv4Pattern, "must be an IPv4 address"),
							stringvalidator.AlsoRequires(path.MatchRelative().AtParent().AtName("ipv4_address")),
						},
					},
				},
			},
			"timeouts": timeouts.Block(ctx, timeouts.Opts{Create: true, Update: true, Delete: true}),
		},
	}
}

func disksShrink(ctx context.Context, req planmodifier.ListRequest, resp *listplanmodifier.RequiresReplaceIfFuncResponse) {
	if req.StateValue.IsNull() || req.PlanValue.IsUnknown() || req.PlanValue.IsNull() {
		return
	}
	var plan, state []vsphereDiskModel
	resp.Diagnostics.Append(req.PlanValue.ElementsAs(ctx, &plan, false)...)
	resp.Diagnostics.Append(req.StateValue.ElementsAs(ctx, &state, false)...)
	if len(plan) != len(state) {
		resp.RequiresReplace = true
		return
	}
	for i := range plan {
		if !plan[i].SizeGiB.IsUnknown() && plan[i].SizeGiB.ValueInt64() < state[i].SizeGiB.ValueInt64() {
			resp.RequiresReplace = true
		}
	}
}

func countChanges(_ context.Context, req planmodifier.ListRequest, resp *listplanmodifier.RequiresReplaceIfFuncResponse) {
	resp.RequiresReplace = !req.StateValue.IsNull() && !req.PlanValue.IsUnknown() && !req.PlanValue.IsNull() &&
		len(req.PlanValue.Elements()) != len(req.StateValue.Elements())
}

func (r *vsphereVMResource) ConfigValidators(context.Context) []resource.ConfigValidator {
	return []resource.ConfigValidator{
		resourcevalidator.AtLeastOneOf(path.MatchRoot("cluster"), path.MatchRoot("host")),
		resourcevalidator.RequiredTogether(path.MatchRoot("snapshot"), path.MatchRoot("linked_clone")),
	}
}

func (r *vsphereVMResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	r.clients = configuredClients(req.ProviderData, &resp.Diagnostics)
}

// ModifyPlan fails the plan when the provider has no vsphere block, marks the
// computed half of the placement unknown when the other half moves, plans the
// guest's addresses unknown only when the update can move them, and keeps the
// settings that only steer an apply from planning an update on their own.
func (r *vsphereVMResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	if req.Plan.Raw.IsNull() {
		return
	}
	if r.clients != nil && requireEngine(r.clients, vsphereBlock, &resp.Diagnostics) == nil {
		return
	}
	if req.State.Raw.IsNull() {
		return
	}
	var config, plan, state vsphereVMModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &config)...)
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if config.Host.IsNull() && !plan.Cluster.Equal(state.Cluster) {
		resp.Diagnostics.Append(resp.Plan.SetAttribute(ctx, path.Root("host"), types.StringUnknown())...)
	}
	if config.Cluster.IsNull() && !plan.Host.Equal(state.Host) {
		resp.Diagnostics.Append(resp.Plan.SetAttribute(ctx, path.Root("cluster"), types.StringUnknown())...)
	}
	if config.Datastore.IsNull() && !plan.Source.Equal(state.Source) {
		resp.Diagnostics.Append(resp.Plan.SetAttribute(ctx, path.Root("datastore"), types.StringUnknown())...)
	}
	// Only a power-on (or a power cycle, which a CPU or memory change may need)
	// or another port group gives the guest new addresses; anything else keeps
	// them, so that resources using them are not replaced for nothing.
	mayCycle := plan.AllowPowerCycle.IsUnknown() || plan.AllowPowerCycle.ValueBool()
	powerCycle := mayCycle && (!plan.NumCPUs.Equal(state.NumCPUs) || !plan.MemoryMiB.Equal(state.MemoryMiB))
	if powerCycle || !plan.PowerState.Equal(state.PowerState) || !plan.Networks.Equal(state.Networks) {
		resp.Diagnostics.Append(resp.Plan.SetAttribute(ctx, path.Root("default_ip_address"), types.StringUnknown())...)
		resp.Diagnostics.Append(resp.Plan.SetAttribute(ctx, path.Root("ip_addresses"), types.ListUnknown(types.StringType))...)
	} else {
		resp.Diagnostics.Append(resp.Plan.SetAttribute(ctx, path.Root("default_ip_address"), state.DefaultIPAddress)...)
		resp.Diagnostics.Append(resp.Plan.SetAttribute(ctx, path.Root("ip_addresses"), state.IPAddresses)...)
	}
	// An import records the defaults of allow_power_cycle and wait_for_ip_timeout,
	// not the configuration, and a change of them alone has nothing to do: then
	// plan their recorded values, which Terraform accepts in place of configured
	// ones, and the plan is empty.
	// A timeouts change is still planned (Delete reads it from state), and Update
	// only records it.
	onlySettings, diags := onlySettingsChange(ctx, resp.Plan, req.State, state)
	resp.Diagnostics.Append(diags...)
	if onlySettings && plan.Timeouts.Equal(state.Timeouts) {
		resp.Diagnostics.Append(resp.Plan.SetAttribute(ctx, path.Root("allow_power_cycle"), state.AllowPowerCycle)...)
		resp.Diagnostics.Append(resp.Plan.SetAttribute(ctx, path.Root("wait_for_ip_timeout"), state.WaitForIPTimeout)...)
	}
}

// onlySettingsChange reports whether plan differs from state in nothing but the
// settings that only steer an apply: allow_power_cycle, wait_for_ip_timeout and
// timeouts. prior is state as a model.
func onlySettingsChange(ctx context.Context, plan tfsdk.Plan, state tfsdk.State, prior vsphereVMModel) (bool, diag.Diagnostics) {
	var diags diag.Diagnostics
	diags.Append(plan.SetAttribute(ctx, path.Root("allow_power_cycle"), prior.AllowPowerCycle)...)
	diags.Append(plan.SetAttribute(ctx, path.Root("wait_for_ip_timeout"), prior.WaitForIPTimeout)...)
	diags.Append(plan.SetAttribute(ctx, path.Root("timeouts"), prior.Timeouts)...)
	return plan.Raw.Equal(state.Raw), diags
}

func (r *vsphereVMResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan vsphereVMModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	timeout, diags := plan.Timeouts.Create(ctx, defaultVMCreateTimeout)
	resp.Diagnostics.Append(diags...)
	want, diags := plan.toVM(ctx)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	opCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	vm, err := r.clients.vsphere.CreateVM(opCtx, want)
	if err != nil {
		resp.Diagnostics.AddError("Could not create vSphere VM", fmt.Sprintf("VM %q on %s: %s", plan.Name.ValueString(), r.clients.vsphere.Server(), err))
		if vm.UUID != "" {
			// The clone exists: record it so Terraform marks it tainted and the
			// next apply replaces it, instead of leaving an orphan behind.
			resp.Diagnostics.Append(resp.State.Set(ctx, fromVsphereVM(vm, plan))...)
		}
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, fromVsphereVM(vm, plan))...)
}

func (r *vsphereVMResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var state vsphereVMModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	engine := requireEngine(r.clients, vsphereBlock, &resp.Diagnostics)
	if engine == nil {
		return
	}
	vm, err := engine.ReadVM(ctx, state.Datacenter.ValueString(), state.ID.ValueString())
	if errors.Is(err, vsphere.ErrNotFound) && !state.UUID.IsNull() {
		resp.State.RemoveResource(ctx)
		return
	}
	if err != nil {
		resp.Diagnostics.AddError("Could not read vSphere VM", fmt.Sprintf("VM %q on %s: %s", state.ID.ValueString(), r.clients.vsphere.Server(), err))
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, fromVsphereVM(vm, state))...)
}

func (r *vsphereVMResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan, state vsphereVMModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	onlySettings, diags := onlySettingsChange(ctx, req.Plan, req.State, state)
	resp.Diagnostics.Append(diags...)
	if onlySettings {
		// Nothing to do to the VM: record the settings for the next apply.
		resp.Diagnostics.Append(resp.State.Set(ctx, plan)...)
		return
	}
	timeout, diags := plan.Timeouts.Update(ctx, defaultVMUpdateTimeout)
	resp.Diagnostics.Append(diags...)
	want, diags := plan.toVM(ctx)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	opCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	want.UUID = state.ID.ValueString()
	vm, err := r.clients.vsphere.UpdateVM(opCtx, want)
	if err != nil {
		resp.Diagnostics.AddError("Could not update vSphere VM", fmt.Sprintf("VM %q on %s: %s", plan.Name.ValueString(), r.clients.vsphere.Server(), err))
		if vm.UUID != "" {
			// Record what the VM is now, so the next plan shows what is left to do.
			resp.Diagnostics.Append(resp.State.Set(ctx, fromVsphereVM(vm, state))...)
		}
		return
	}
	got := fromVsphereVM(vm, plan)
	// Addresses planned as known were judged unmoved by this update, and Terraform
	// holds the apply to them; a change the guest made on its own shows at the
	// next refresh.
	if !plan.DefaultIPAddress.IsUnknown() {
		got.DefaultIPAddress, got.IPAddresses = plan.DefaultIPAddress, plan.IPAddresses
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, got)...)
}

func (r *vsphereVMResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var state vsphereVMModel
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
	if err := r.clients.vsphere.DeleteVM(opCtx, state.Datacenter.ValueString(), state.ID.ValueString()); err != nil {
		resp.Diagnostics.AddError("Could not delete vSphere VM", fmt.Sprintf("VM %q on %s: %s", state.Name.ValueString(), r.clients.vsphere.Server(), err))
	}
}

// ImportState accepts an inventory path (absolute, or relative to the default
// datacenter's VM folder) or a UUID; Read resolves it to the UUID.
func (r *vsphereVMResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	resource.ImportStatePassthroughID(ctx, path.Root("id"), req, resp)
}

func (m vsphereVMModel) toVM(ctx context.Context) (vsphere.VM, diag.Diagnostics) {
	var diags diag.Diagnostics
	vm := vsphere.VM{
		Name:            m.Name.ValueString(),
		Datacenter:      m.Datacenter.ValueString(),
		Source:          m.Source.ValueString(),
		LinkedClone:     m.LinkedClone.ValueBool(),
		Snapshot:        m.Snapshot.ValueString(),
		Cluster:         m.Cluster.ValueString(),
		Host:            m.Host.ValueString(),
		ResourcePool:    m.ResourcePool.ValueString(),
		Datastore:       m.Datastore.ValueString(),
		Folder:          m.Folder.ValueString(),
		NumCPUs:         int32(m.NumCPUs.ValueInt64()),
		MemoryMiB:       m.MemoryMiB.ValueInt64(),
		PowerOn:         m.PowerState.ValueString() != "off",
		AllowPowerCycle: m.AllowPowerCycle.ValueBool(),
	}
	if !m.WaitForIPTimeout.IsNull() {
		wait, d := m.WaitForIPTimeout.ValueGoDuration()
		diags.Append(d...)
		vm.IPWait = wait
	}
	if !m.Disks.IsNull() && !m.Disks.IsUnknown() {
		var disks []vsphereDiskModel
		diags.Append(m.Disks.ElementsAs(ctx, &disks, false)...)
		vm.DiskGiB = []int64{}
		for _, d := range disks {
			vm.DiskGiB = append(vm.DiskGiB, d.SizeGiB.ValueInt64())
		}
	}
	if !m.Networks.IsNull() && !m.Networks.IsUnknown() {
		vm.Networks = []string{}
		diags.Append(m.Networks.ElementsAs(ctx, &vm.Networks, false)...)
	}
	vm.ExtraConfig = stringMap(m.ExtraConfig)
	if cz := m.Customize; cz != nil {
		vm.Customization = &vsphere.Customization{
			Hostname:    cz.Hostname.ValueString(),
			Domain:      cz.Domain.ValueString(),
			DNSServers:  stringsOf(cz.DNSServers),
			DNSSuffixes: stringsOf(cz.DNSSuffixes),
			IPv4Address: cz.IPv4Address.ValueString(),
			IPv4Gateway: cz.IPv4Gateway.ValueString(),
		}
	}
	return vm, diags
}

// fromVsphereVM renders a VM read back from vSphere as state. prior supplies what
// cannot be read back (the settings of Kiln itself, timeouts, and customization
// of a VM cloned before Kiln recorded it); after an import it is empty and the
// defaults apply.
func fromVsphereVM(vm vsphere.VM, prior vsphereVMModel) vsphereVMModel {
	m := vsphereVMModel{
		ID:               types.StringValue(vm.UUID),
		UUID:             types.StringValue(vm.UUID),
		MOID:             types.StringValue(vm.MOID),
		Name:             types.StringValue(vm.Name),
		Datacenter:       types.StringValue(vm.Datacenter),
		Source:           types.StringValue(vm.Source),
		LinkedClone:      types.BoolValue(vm.LinkedClone),
		Snapshot:         optionalString(vm.Snapshot),
		Cluster:          optionalString(vm.Cluster),
		Host:             types.StringValue(vm.Host),
		ResourcePool:     types.StringValue(vm.ResourcePool),
		Datastore:        types.StringValue(vm.Datastore),
		Folder:           types.StringValue(vm.Folder),
		NumCPUs:          types.Int64Value(int64(vm.NumCPUs)),
		MemoryMiB:        types.Int64Value(vm.MemoryMiB),
		Networks:         stringList(vm.Networks),
		ExtraConfig:      optionalStringMapValue(vm.ExtraConfig),
		PowerState:       types.StringValue("off"),
		AllowPowerCycle:  prior.AllowPowerCycle,
		WaitForIPTimeout: prior.WaitForIPTimeout,
		DefaultIPAddress: optionalString(vm.DefaultIP),
		IPAddresses:      stringList(vm.IPAddresses),
		Customize:        prior.Customize,
		Timeouts:         prior.Timeouts,
	}
	if vm.PowerOn {
		m.PowerState = types.StringValue("on")
	}
	if cz := vm.Customization; cz != nil {
		m.Customize = &vsphereCustomizeModel{
			Hostname:    optionalString(cz.Hostname),
			Domain:      optionalString(cz.Domain),
			DNSServers:  stringValues(cz.DNSServers),
			DNSSuffixes: stringValues(cz.DNSSuffixes),
			IPv4Address: optionalString(cz.IPv4Address),
			IPv4Gateway: optionalString(cz.IPv4Gateway),
		}
	}
	if m.AllowPowerCycle.IsNull() || m.AllowPowerCycle.IsUnknown() {
		m.AllowPowerCycle = types.BoolValue(false)
	}
	if m.WaitForIPTimeout.IsNull() || m.WaitForIPTimeout.IsUnknown() {
		m.WaitForIPTimeout = timetypes.NewGoDurationValueFromStringMust(defaultWaitForIPTimeout)
	}
	disks := make([]attr.Value, 0, len(vm.DiskGiB))
	for _, size := range vm.DiskGiB {
		disks = append(disks, types.ObjectValueMust(vsphereDiskType.AttrTypes, map[string]attr.Value{"size_gib": types.Int64Value(size)}))
	}
	m.Disks = types.ListValueMust(vsphereDiskType, disks)
	return m
}

// notReservedKey refuses extraConfig keys under vsphere.ReservedKeyPrefix, in
// any case: vSphere matches extraConfig keys regardless of case.
type notReservedKey struct{}

func (notReservedKey) Description(context.Context) string {
	return "must not start with `" + vsphere.ReservedKeyPrefix + "`: Kiln keeps its own keys on the VM under that prefix"
}

func (v notReservedKey) MarkdownDescription(ctx context.Context) string { return v.Description(ctx) }

func (v notReservedKey) ValidateString(ctx context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	key := req.ConfigValue.ValueString()
	if len(key) >= len(vsphere.ReservedKeyPrefix) && strings.EqualFold(key[:len(vsphere.ReservedKeyPrefix)], vsphere.ReservedKeyPrefix) {
		resp.Diagnostics.AddAttributeError(req.Path, "Reserved extraConfig key", fmt.Sprintf("%q %s.", key, v.Description(ctx)))
	}
}
