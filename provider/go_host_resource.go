package provider

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-timeouts/resource/timeouts"
	"github.com/hashicorp/terraform-plugin-framework-validators/int64validator"
	"github.com/hashicorp/terraform-plugin-framework-validators/listvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/mapvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/objectvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/booldefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/int64planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringdefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/kilnhq/terraform-provider-kiln/internal/gotoolchain"
	"github.com/kilnhq/terraform-provider-kiln/internal/hostprep"
	"github.com/kilnhq/terraform-provider-kiln/internal/remote"
)

var (
	_ resource.ResourceWithConfigure   = (*goHostResource)(nil)
	_ resource.ResourceWithImportState = (*goHostResource)(nil)
	_ resource.ResourceWithModifyPlan  = (*goHostResource)(nil)
)

func newGoHostResource() resource.Resource { return &goHostResource{} }

type goHostResource struct {
	clients *clients
}

type goHostModel struct {
	ID              types.String         `tfsdk:"id"`
	Connection      *hostConnectionModel `tfsdk:"ssh"`
	Go              *goToolchainsModel   `tfsdk:"go"`
	Env             types.Map            `tfsdk:"env"`
	Hardening       *hardeningModel      `tfsdk:"hardening"`
	Verify          *verifyModel         `tfsdk:"verify"`
	RemoveOnDestroy types.Bool           `tfsdk:"remove_on_destroy"`
	Facts           types.Object         `tfsdk:"facts"`
	Installed       types.List           `tfsdk:"installed"`
	Verification    types.Object         `tfsdk:"verification"`
	Timeouts        timeouts.Value       `tfsdk:"timeouts"`
}

type hostConnectionModel struct {
	Host           types.String  `tfsdk:"host"`
	Port           types.Int64   `tfsdk:"port"`
	User           types.String  `tfsdk:"user"`
	PrivateKey     types.String  `tfsdk:"private_key"`
	UseAgent       types.Bool    `tfsdk:"use_agent"`
	HostKey        types.String  `tfsdk:"host_key"`
	KnownHostsFile types.String  `tfsdk:"known_hosts_file"`
	Bastion        *bastionModel `tfsdk:"bastion"`
}

// bastionModel is the jump host an ssh block goes through.
type bastionModel struct {
	Host           types.String `tfsdk:"host"`
	Port           types.Int64  `tfsdk:"port"`
	User           types.String `tfsdk:"user"`
	PrivateKey     types.String `tfsdk:"private_key"`
	HostKey        types.String `tfsdk:"host_key"`
	KnownHostsFile types.String `tfsdk:"known_hosts_file"`
}

type goToolchainsModel struct {
	Versions         []types.String `tfsdk:"versions"`
	ResolvedVersions types.List     `tfsdk:"resolved_versions"`
	Default          types.String   `tfsdk:"default"`
	Source           types.String   `tfsdk:"source"`
	SHA256           types.Map      `tfsdk:"sha256"`
	Root             types.String   `tfsdk:"root"`
	ProxyURL         types.String   `tfsdk:"proxy_url"`
	SumDB            types.String   `tfsdk:"sumdb"`
	MirrorURL        types.String   `tfsdk:"mirror_url"`
	IndexURL         types.String   `tfsdk:"index_url"`
	Keyring          types.String   `tfsdk:"keyring"`
	KeyFingerprint   types.String   `tfsdk:"key_fingerprint"`
}

type hardeningModel struct {
	SwapOff         types.Bool   `tfsdk:"swap_off"`
	NoFile          types.Int64  `tfsdk:"nofile"`
	NProc           types.Int64  `tfsdk:"nproc"`
	Sysctls         types.Map    `tfsdk:"sysctls"`
	CgroupV2        types.String `tfsdk:"cgroup_v2"`
	GoCacheTmpfsMiB types.Int64  `tfsdk:"gocache_tmpfs_mib"`
	GoCacheUser     types.String `tfsdk:"gocache_user"`
}

type verifyModel struct {
	Build        types.Bool     `tfsdk:"build"`
	TestPackages []types.String `tfsdk:"test_packages"`
}

var (
	hostFactsType = map[string]attr.Type{
		"os": types.StringType, "kernel": types.StringType, "arch": types.StringType,
		"cgroup_mode": types.StringType, "swap_total_kib": types.Int64Type,
		"nofile": types.Int64Type, "nproc": types.Int64Type,
	}
	installedType = map[string]attr.Type{
		"version": types.StringType, "archive_sha256": types.StringType, "go_binary_sha256": types.StringType,
	}
	verificationType = map[string]attr.Type{
		"go_version": types.StringType, "goroot": types.StringType, "gopath": types.StringType,
		"build_output": types.StringType, "test_output": types.StringType,
	}
	goVersionRequest = regexp.MustCompile(`^([0-9]+\.[0-9]+(\.[0-9]+)?|stable)$`)
	goRelease        = regexp.MustCompile(`^[0-9]+\.[0-9]+\.[0-9]+$`)
	sha256Hex        = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

const (
	defaultHostCreateTimeout = 30 * time.Minute
	defaultHostUpdateTimeout = 30 * time.Minute
	defaultHostDeleteTimeout = 10 * time.Minute
	hostConnectRetry         = 2 * time.Minute
)

func (r *goHostResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_go_host"
}

func (r *goHostResource) Schema(ctx context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "A hardened Go build host, provisioned over SSH: verified Go toolchains side by side " +
			"(from the module proxy checked against the checksum database, or release tarballs checked by " +
			"SHA-256 and OpenPGP signature), the system Go environment, swap off, file limits, sysctls and " +
			"cgroup v2, then a build and run of a small program.\n\n" +
			"Archives are verified on the machine running Terraform before anything touches the host, cached " +
			"there by content (many hosts fetch each archive once), and streamed to the host, hashed and " +
			"inspected again on the way out. The host unpacks it beside the toolchain root and renames it into " +
			"place only on the commit line that follows a stream found intact: an interrupted apply never leaves " +
			"a half-installed toolchain selected. Every managed fact is read back in one SSH round trip, so " +
			"swap turned back on, a changed `bin/go` (re-hashed whenever its inode, size or change time moved) " +
			"or edited limits show in `terraform plan`.",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{
				MarkdownDescription: "`user@host:port`; also the import ID.",
				Computed:            true,
				PlanModifiers:       []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"env": schema.MapAttribute{
				MarkdownDescription: "System Go environment written to each toolchain's `$GOROOT/go.env`: any of " +
					"`GOPROXY`, `GOPRIVATE`, `GONOSUMDB`, `GOSUMDB`, `GOFLAGS`, `GOTOOLCHAIN`. Unset keys keep Go's defaults.",
				ElementType: types.StringType,
				Optional:    true,
				Validators: []validator.Map{mapvalidator.KeysAre(stringvalidator.OneOf(hostprep.EnvKeys...)),
					mapvalidator.ValueStringsAre(stringvalidator.RegexMatches(regexp.MustCompile(`^[^\n\r]*$`), "must be one line"))},
			},
			"remove_on_destroy": schema.BoolAttribute{
				MarkdownDescription: "On destroy, remove the toolchains and files Kiln installed (swap stays off). Defaults to `true`.",
				Optional:            true,
				Computed:            true,
				Default:             booldefault.StaticBool(true),
			},
			"facts": schema.ObjectAttribute{
				MarkdownDescription: "Facts read from the host: `os`, `kernel`, `arch`, `cgroup_mode` (`cgroup2fs` under cgroup v2), " +
					"`swap_total_kib`, and the `nofile` / `nproc` limits Kiln's files set (0 when unset, -1 when they disagree).",
				AttributeTypes: hostFactsType,
				Computed:       true,
			},
			"installed": schema.ListAttribute{
				MarkdownDescription: "Toolchains Kiln installed: `version`, the verified `archive_sha256`, and `go_binary_sha256` of `bin/go` as installed.",
				ElementType:         types.ObjectType{AttrTypes: installedType},
				Computed:            true,
			},
			"verification": schema.ObjectAttribute{
				MarkdownDescription: "What the default toolchain reported at the last apply: `go_version`, `goroot`, `gopath`, " +
					"`build_output` of the test program (`kiln-verify-ok`) and `test_output` of `go test -short`.",
				AttributeTypes: verificationType,
				Computed:       true,
			},
		},
		Blocks: map[string]schema.Block{
			"ssh": schema.SingleNestedBlock{
				MarkdownDescription: "How to reach the host (the resource's connection; Terraform reserves the name `connection`). Unset values come from the provider's `ssh` block. " +
					"The host key must be pinned (`host_key`) or listed in `known_hosts_file`; an unknown or changed key is refused.",
				Validators: []validator.Object{objectvalidator.IsRequired()},
				Attributes: map[string]schema.Attribute{
					"host": schema.StringAttribute{
						MarkdownDescription: "Host name or address. Changing it means another host: a new resource.",
						Optional:            true,
						PlanModifiers:       []planmodifier.String{stringplanmodifier.RequiresReplace()},
						Validators:          []validator.String{stringvalidator.LengthAtLeast(1)},
					},
					"port": schema.Int64Attribute{
						MarkdownDescription: "SSH port. Defaults to the provider's `ssh.port`, then `22`.",
						Optional:            true,
						PlanModifiers:       []planmodifier.Int64{int64planmodifier.RequiresReplace()},
						Validators:          []validator.Int64{int64validator.Between(1, 65535)},
					},
					"user": schema.StringAttribute{
						MarkdownDescription: "Login user; commands run through `sudo -n` unless it is `root`. Defaults to the provider's `ssh.user`, then `root`.",
						Optional:            true,
					},
					"private_key": schema.StringAttribute{
						MarkdownDescription: "Private key (PEM or OpenSSH). Defaults to the provider's `ssh.private_key`.",
						Optional:            true,
						Sensitive:           true,
					},
					"use_agent": schema.BoolAttribute{
						MarkdownDescription: "Also authenticate through the agent at `SSH_AUTH_SOCK`.",
						Optional:            true,
					},
					"host_key": schema.StringAttribute{
						MarkdownDescription: "The host's public key in authorized_keys format, for example `kiln_libvirt_vm.x.ssh_host_public_key`.",
						Optional:            true,
					},
					"known_hosts_file": schema.StringAttribute{
						MarkdownDescription: "known_hosts file to check the host key against when `host_key` is not set. " +
							"Defaults to the provider's `ssh.known_hosts_file`.",
						Optional: true,
					},
				},
				Blocks: map[string]schema.Block{"bastion": schema.SingleNestedBlock{
					MarkdownDescription: bastionDescription,
					Attributes: map[string]schema.Attribute{
						"host":             schema.StringAttribute{MarkdownDescription: bastionAttributes["host"], Optional: true},
						"port":             schema.Int64Attribute{MarkdownDescription: bastionAttributes["port"], Optional: true, Validators: []validator.Int64{int64validator.Between(1, 65535)}},
						"user":             schema.StringAttribute{MarkdownDescription: bastionAttributes["user"], Optional: true},
						"private_key":      schema.StringAttribute{MarkdownDescription: bastionAttributes["private_key"], Optional: true, Sensitive: true},
						"host_key":         schema.StringAttribute{MarkdownDescription: bastionAttributes["host_key"], Optional: true},
						"known_hosts_file": schema.StringAttribute{MarkdownDescription: bastionAttributes["known_hosts_file"], Optional: true},
					},
				}},
			},
			"go": schema.SingleNestedBlock{
				MarkdownDescription: "Go toolchains to install side by side under `root`.",
				Attributes: map[string]schema.Attribute{
					"versions": schema.ListAttribute{
						MarkdownDescription: "Go versions: an exact release (`1.24.4`), a minor version for its newest patch " +
							"(`1.24`) or `stable` for the newest release, resolved at plan time against the source; " +
							"a new patch release then shows as an update. A version whose `bin/go` was changed or removed " +
							"on the host reads as missing and is reinstalled.",
						ElementType: types.StringType,
						Optional:    true,
						Validators: []validator.List{listvalidator.SizeAtLeast(1), listvalidator.UniqueValues(),
							listvalidator.ValueStringsAre(stringvalidator.RegexMatches(goVersionRequest, "must be a Go release like 1.24.4, a minor version like 1.24, or stable"))},
					},
					"resolved_versions": schema.ListAttribute{
						MarkdownDescription: "The release each entry of `versions` resolved to, in the same order.",
						ElementType:         types.StringType,
						Computed:            true,
					},
					"default": schema.StringAttribute{
						MarkdownDescription: "The version `/usr/local/bin/go` runs; one of `versions`. Defaults to the first.",
						Optional:            true,
						Computed:            true,
					},
					"sha256": schema.MapAttribute{
						MarkdownDescription: "With `dl` or `host`: SHA-256 of release tarballs by exact version, for example " +
							"`{ \"1.24.4\" = \"77e5da33…\" }`, used instead of the release index's.",
						ElementType: types.StringType,
						Optional:    true,
						Validators: []validator.Map{
							mapvalidator.KeysAre(stringvalidator.RegexMatches(goRelease, "must be an exact Go release like 1.24.4")),
							mapvalidator.ValueStringsAre(stringvalidator.RegexMatches(sha256Hex, "must be 64 lowercase hex digits")),
						},
					},
					"source": schema.StringAttribute{
						MarkdownDescription: "`module_proxy` (golang.org/toolchain modules verified against the checksum " +
							"database), `dl` (release tarballs verified by SHA-256 and OpenPGP signature on the machine " +
							"running Terraform, then streamed to the host) or `host` (the host downloads the tarball from " +
							"`mirror_url` itself, for fleets next to their mirror, and the SHA-256 from the release index " +
							"or `sha256` is checked there). Defaults to `module_proxy`.",
						Optional:   true,
						Computed:   true,
						Default:    stringdefault.StaticString("module_proxy"),
						Validators: []validator.String{stringvalidator.OneOf("module_proxy", "dl", "host")},
					},
					"root": schema.StringAttribute{
						MarkdownDescription: "Directory holding one sub-directory per version. Defaults to `" + hostprep.DefaultRoot + "`.",
						Optional:            true,
						Computed:            true,
						Default:             stringdefault.StaticString(hostprep.DefaultRoot),
						PlanModifiers:       []planmodifier.String{stringplanmodifier.RequiresReplace()},
					},
					"proxy_url": schema.StringAttribute{
						MarkdownDescription: "With `module_proxy`: the GOPROXY to fetch from. Defaults to `" + gotoolchain.DefaultProxy + "`.",
						Optional:            true,
					},
					"sumdb": schema.StringAttribute{
						MarkdownDescription: "With `module_proxy`: the checksum database as in GOSUMDB (`name+hash+key`). Defaults to sum.golang.org.",
						Optional:            true,
					},
					"mirror_url": schema.StringAttribute{
						MarkdownDescription: "With `dl` or `host`: base URL of the release files, as the machine running Terraform " +
							"(`dl`) or the host (`host`) reaches it. Defaults to `" + gotoolchain.DefaultMirror + "`.",
						Optional: true,
					},
					"index_url": schema.StringAttribute{
						MarkdownDescription: "With `dl` or `host`: the release index giving each file's SHA-256, read by the machine " +
							"running Terraform. Defaults to `" + gotoolchain.DefaultIndexURL + "`.",
						Optional: true,
					},
					"keyring": schema.StringAttribute{
						MarkdownDescription: "With `dl`: armored OpenPGP public keys for a private mirror's signatures. " +
							"Defaults to the embedded Go release signing keys.",
						Optional: true,
					},
					"key_fingerprint": schema.StringAttribute{
						MarkdownDescription: "With `dl`: the primary key fingerprint signatures must come from. Defaults to " +
							"`" + gotoolchain.GoReleaseKeyFingerprint + "` with the embedded keys.",
						Optional: true,
					},
				},
			},
			"hardening": schema.SingleNestedBlock{
				MarkdownDescription: "Host settings for build machines.",
				Attributes: map[string]schema.Attribute{
					"swap_off": schema.BoolAttribute{
						MarkdownDescription: "Turn swap off now and for good: `swapoff -a`, swap lines in `/etc/fstab` commented out, swap units masked. Defaults to `false`.",
						Optional:            true,
						Computed:            true,
						Default:             booldefault.StaticBool(false),
					},
					"nofile": schema.Int64Attribute{
						MarkdownDescription: "Open-file limit for logins (`/etc/security/limits.d`) and services (systemd `DefaultLimitNOFILE`). Unset leaves limits alone.",
						Optional:            true,
						Validators:          []validator.Int64{int64validator.Between(1024, 1<<30)},
					},
					"nproc": schema.Int64Attribute{
						MarkdownDescription: "Process limit for logins and services. Unset leaves it alone.",
						Optional:            true,
						Validators:          []validator.Int64{int64validator.Between(64, 1<<30)},
					},
					"sysctls": schema.MapAttribute{
						MarkdownDescription: "Kernel parameters, written to `/etc/sysctl.d/90-kiln.conf` and applied.",
						ElementType:         types.StringType,
						Optional:            true,
						Validators:          []validator.Map{mapvalidator.KeysAre(stringvalidator.RegexMatches(regexp.MustCompile(`^[a-z0-9_.]+$`), "must be a sysctl name"))},
					},
					"gocache_tmpfs_mib": schema.Int64Attribute{
						MarkdownDescription: "Mount a tmpfs of this many MiB, owned by `gocache_user`, on that user's default " +
							"`GOCACHE` (`~/.cache/go-build`) and list it in `/etc/fstab`: the build cache lives in memory. Unset leaves the cache alone.",
						Optional:   true,
						Validators: []validator.Int64{int64validator.Between(64, 1<<20)},
					},
					"gocache_user": schema.StringAttribute{
						MarkdownDescription: "The build user whose `GOCACHE` gets the tmpfs. Defaults to the login user.",
						Optional:            true,
						Validators:          []validator.String{stringvalidator.RegexMatches(regexp.MustCompile(`^[a-z_][a-z0-9_-]*[$]?$`), "must be a user name")},
					},
					"cgroup_v2": schema.StringAttribute{
						MarkdownDescription: "`verify` fails unless the host runs cgroup v2; `enable` puts " +
							"`systemd.unified_cgroup_hierarchy=1` on the kernel command line and reboots when needed; `ignore`. Defaults to `verify`.",
						Optional:   true,
						Computed:   true,
						Default:    stringdefault.StaticString("verify"),
						Validators: []validator.String{stringvalidator.OneOf("verify", "enable", "ignore")},
					},
				},
			},
			"verify": schema.SingleNestedBlock{
				MarkdownDescription: "Checks run with the default toolchain, as the login user, after each apply; results in `verification`.",
				Attributes: map[string]schema.Attribute{
					"build": schema.BoolAttribute{
						MarkdownDescription: "Build and run a small program. Defaults to `true`.",
						Optional:            true,
						Computed:            true,
						Default:             booldefault.StaticBool(true),
					},
					"test_packages": schema.ListAttribute{
						MarkdownDescription: "Standard library packages to run `go test -short` on, for example `[\"strings\"]`.",
						ElementType:         types.StringType,
						Optional:            true,
						Validators:          []validator.List{listvalidator.SizeAtLeast(1)},
					},
				},
			},
			"timeouts": timeouts.Block(ctx, timeouts.Opts{Create: true, Update: true, Delete: true}),
		},
	}
}

func (r *goHostResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	r.clients = configuredClients(req.ProviderData, &resp.Diagnostics)
}

func (r *goHostResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan goHostModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	timeout, diags := plan.Timeouts.Create(ctx, defaultHostCreateTimeout)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	r.apply(ctx, timeout, &plan, nil, &resp.State, &resp.Diagnostics)
}

func (r *goHostResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan, prior goHostModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(req.State.Get(ctx, &prior)...)
	if resp.Diagnostics.HasError() {
		return
	}
	timeout, diags := plan.Timeouts.Update(ctx, defaultHostUpdateTimeout)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	r.apply(ctx, timeout, &plan, &prior, &resp.State, &resp.Diagnostics)
}

// stateSetter is the part of tfsdk.State apply needs.
type stateSetter interface {
	Set(context.Context, any) diag.Diagnostics
}

// apply brings the host to plan and records what it then reads back. When it
// fails part way, the state records what the host looks like now over prior
// (the plan on create), so the next plan shows what is left to do.
func (r *goHostResource) apply(ctx context.Context, timeout time.Duration, plan, prior *goHostModel, state stateSetter, diags *diag.Diagnostics) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	target, err := sshTarget(r.clients.ssh, plan.Connection)
	if err != nil {
		diags.AddAttributeError(path.Root("ssh"), "Invalid ssh block", err.Error())
		return
	}
	client, err := remote.Dial(ctx, target)
	if err != nil {
		diags.AddError("Could not connect to the host", err.Error())
		return
	}
	defer func() { client.Close() }()
	spec := plan.spec(target.User)
	source := plan.Go
	host := &hostprep.Host{
		Client: client,
		Dial:   func(ctx context.Context) (*remote.Client, error) { return remote.Dial(ctx, target) },
		Log:    func(ctx context.Context, msg string, fields map[string]any) { tflogInfo(ctx, msg, fields) },
		Fetch: func(ctx context.Context, version string) (hostprep.Archive, error) {
			return r.fetch(ctx, source, version)
		},
	}
	facts, verification, err := host.Apply(ctx, spec)
	client = host.Client
	if err != nil {
		diags.AddError("Could not prepare the Go host", err.Error())
		if facts.Kernel != "" {
			known := plan
			if prior != nil {
				known = prior
			}
			known.readBack(facts, known.verification())
			diags.Append(state.Set(ctx, known)...)
		}
		return
	}
	plan.ID = types.StringValue(hostID(target))
	plan.readBack(facts, verification)
	diags.Append(state.Set(ctx, plan)...)
}

// ModifyPlan resolves version requests ("1.24", "stable") against the source,
// so a new patch release shows as an update, and checks the default.
func (r *goHostResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	if req.Plan.Raw.IsNull() {
		return
	}
	var g *goToolchainsModel
	resp.Diagnostics.Append(req.Plan.GetAttribute(ctx, path.Root("go"), &g)...)
	if resp.Diagnostics.HasError() || g == nil || g.Versions == nil {
		return
	}
	resolvedPath := path.Root("go").AtName("resolved_versions")
	for _, v := range g.Versions {
		if v.IsUnknown() {
			resp.Diagnostics.Append(resp.Plan.SetAttribute(ctx, resolvedPath, types.ListUnknown(types.StringType))...)
			return
		}
	}
	requests := stringsOf(g.Versions)
	// The default is checked as configured, resolved like the versions: the
	// plan's value may be the release an unset default resolved to last time.
	defaultPath := path.Root("go").AtName("default")
	var configured types.String
	resp.Diagnostics.Append(req.Config.GetAttribute(ctx, defaultPath, &configured)...)
	lookups := requests
	if !configured.IsUnknown() && !configured.IsNull() {
		lookups = append(slices.Clone(requests), configured.ValueString())
	}
	resolved, err := r.resolveVersions(ctx, g, lookups)
	if err != nil {
		resp.Diagnostics.AddAttributeError(path.Root("go").AtName("versions"), "Could not resolve Go versions", err.Error())
		return
	}
	if len(lookups) > len(requests) {
		d := resolved[len(requests)]
		resolved = resolved[:len(requests)]
		if !slices.Contains(resolved, d) {
			resp.Diagnostics.AddAttributeError(defaultPath, "Default Go version not declared",
				fmt.Sprintf("default %q (go%s) must be one of the versions: %v resolve to %v", configured.ValueString(), d, requests, resolved))
			return
		}
	}
	planned := stringList(resolved)
	resp.Diagnostics.Append(resp.Plan.SetAttribute(ctx, resolvedPath, planned)...)
	if req.State.Raw.IsNull() {
		return
	}
	var prior types.List
	resp.Diagnostics.Append(req.State.GetAttribute(ctx, resolvedPath, &prior)...)
	if !prior.Equal(planned) {
		// A request now names another release: what the host reports changes too.
		resp.Diagnostics.Append(resp.Plan.SetAttribute(ctx, path.Root("facts"), types.ObjectUnknown(hostFactsType))...)
		resp.Diagnostics.Append(resp.Plan.SetAttribute(ctx, path.Root("verification"), types.ObjectUnknown(verificationType))...)
		resp.Diagnostics.Append(resp.Plan.SetAttribute(ctx, path.Root("installed"), types.ListUnknown(types.ObjectType{AttrTypes: installedType}))...)
		if configured.IsNull() {
			resp.Diagnostics.Append(resp.Plan.SetAttribute(ctx, defaultPath, types.StringUnknown())...)
		}
	}
}

// resolveVersions maps each request to a release; exact releases need no lookup.
func (r *goHostResource) resolveVersions(ctx context.Context, g *goToolchainsModel, requests []string) ([]string, error) {
	if !slices.ContainsFunc(requests, func(v string) bool { return !goRelease.MatchString(v) }) {
		return requests, nil
	}
	if r.clients == nil {
		return nil, fmt.Errorf("the provider is not configured yet")
	}
	releases, err := goReleases(ctx, r.clients.toolchains, g.Source.ValueString(),
		gotoolchain.ModuleProxy{URL: g.ProxyURL.ValueString(), SumDB: g.SumDB.ValueString()}, g.mirror(), "linux", "amd64")
	if err != nil {
		return nil, err
	}
	resolved := make([]string, len(requests))
	for i, request := range requests {
		if resolved[i], err = gotoolchain.Resolve(request, releases); err != nil {
			return nil, err
		}
	}
	return resolved, nil
}

// fetch gets a verified archive of version for the host's platform.
func (r *goHostResource) fetch(ctx context.Context, source *goToolchainsModel, version string) (hostprep.Archive, error) {
	var (
		a   gotoolchain.Artifact
		err error
	)
	m := source.mirror()
	pinned := stringMap(source.SHA256)[version]
	switch source.Source.ValueString() {
	case "host":
		if pinned == "" {
			if pinned, err = m.ExpectedSHA256(ctx, http.DefaultClient, version, "linux", "amd64"); err != nil {
				return hostprep.Archive{}, fmt.Errorf("go%s: %w", version, err)
			}
		}
		return hostprep.Archive{SHA256: pinned, URL: m.ArchiveURL(version, "linux", "amd64")}, nil
	case "dl":
		if k := source.Keyring.ValueString(); k != "" {
			if m.Keyring, err = gotoolchain.ParseKeyring([]byte(k)); err != nil {
				return hostprep.Archive{}, fmt.Errorf("go.keyring: %w", err)
			}
		}
		a, err = r.clients.toolchains.FromMirror(ctx, m, version, "linux", "amd64", pinned)
	default:
		p := gotoolchain.ModuleProxy{URL: source.ProxyURL.ValueString(), SumDB: source.SumDB.ValueString()}
		a, err = r.clients.toolchains.FromModuleProxy(ctx, p, version, "linux", "amd64")
	}
	if err != nil {
		return hostprep.Archive{}, fmt.Errorf("go%s: %w", version, err)
	}
	return hostprep.Archive{SHA256: a.SHA256, Size: a.Size, Open: a.Open}, nil
}

func (r *goHostResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var state goHostModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	target, err := sshTarget(r.clients.ssh, state.Connection)
	if err != nil {
		resp.Diagnostics.AddError("Invalid ssh block", err.Error())
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	client, err := remote.Dial(ctx, target)
	if err != nil {
		resp.Diagnostics.AddError("Could not connect to the host", err.Error())
		return
	}
	defer client.Close()
	facts, err := hostprep.ReadFacts(ctx, client, state.spec(target.User))
	if err != nil {
		resp.Diagnostics.AddError("Could not read the Go host", err.Error())
		return
	}
	if state.Go == nil && state.Hardening == nil {
		state.importFrom(facts) // just imported: adopt what the host has
	}
	state.ID = types.StringValue(hostID(target))
	state.readBack(facts, state.verification())
	resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
}

func (r *goHostResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var state goHostModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() || !state.RemoveOnDestroy.ValueBool() {
		return
	}
	timeout, diags := state.Timeouts.Delete(ctx, defaultHostDeleteTimeout)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	target, err := sshTarget(r.clients.ssh, state.Connection)
	if err != nil {
		resp.Diagnostics.AddError("Invalid ssh block", err.Error())
		return
	}
	client, err := remote.Dial(ctx, target)
	if err != nil {
		resp.Diagnostics.AddError("Could not connect to the host", err.Error())
		return
	}
	defer client.Close()
	if err := hostprep.Uninstall(ctx, client, state.spec(target.User)); err != nil {
		resp.Diagnostics.AddError("Could not remove what Kiln installed", err.Error())
	}
}

// ImportState takes `user@host:port`; the key and the host key check come from
// the provider's ssh block.
func (r *goHostResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	user, hostport, ok := strings.Cut(req.ID, "@")
	host, portText, err := net.SplitHostPort(hostport)
	port, perr := strconv.ParseInt(portText, 10, 64)
	if !ok || err != nil || perr != nil || user == "" || host == "" {
		resp.Diagnostics.AddError("Invalid import ID", fmt.Sprintf("want user@host:port, got %q", req.ID))
		return
	}
	conn := &hostConnectionModel{
		Host: types.StringValue(host), Port: types.Int64Value(port), User: types.StringValue(user),
		PrivateKey: types.StringNull(), UseAgent: types.BoolNull(), HostKey: types.StringNull(), KnownHostsFile: types.StringNull(),
	}
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("ssh"), conn)...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("id"), req.ID)...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("remove_on_destroy"), true)...)
}

// sshTarget resolves an ssh block over the provider's ssh defaults d.
func sshTarget(d sshDefaults, c *hostConnectionModel) (remote.Target, error) {
	if c == nil || c.Host.ValueString() == "" {
		return remote.Target{}, fmt.Errorf("ssh.host is required")
	}
	t, err := endpoint{host: c.Host, port: c.Port, user: c.User, privateKey: c.PrivateKey, useAgent: c.UseAgent,
		hostKey: c.HostKey, knownHosts: c.KnownHostsFile}.target(d, "ssh")
	if err != nil || c.Bastion == nil {
		return t, err
	}
	b := c.Bastion
	if b.Host.ValueString() == "" {
		return t, fmt.Errorf("ssh.bastion.host is required")
	}
	jump, err := endpoint{host: b.Host, port: b.Port, user: b.User, privateKey: b.PrivateKey, useAgent: c.UseAgent,
		hostKey: b.HostKey, knownHosts: b.KnownHostsFile}.target(d, "ssh.bastion")
	if err != nil {
		return t, err
	}
	t.Jump = &jump
	return t, nil
}

// endpoint is one SSH server of an ssh block: the host or its bastion.
type endpoint struct {
	host, user, privateKey, hostKey, knownHosts types.String
	port                                        types.Int64
	useAgent                                    types.Bool
}

// target resolves e over the provider's defaults; block names it in errors.
func (e endpoint) target(d sshDefaults, block string) (remote.Target, error) {
	port := d.Port
	if !e.port.IsNull() {
		port = e.port.ValueInt64()
	}
	t := remote.Target{
		Addr:           net.JoinHostPort(e.host.ValueString(), strconv.FormatInt(port, 10)),
		User:           firstSet(e.user.ValueString(), d.User),
		ConnectTimeout: hostConnectRetry,
	}
	if key := firstSet(e.privateKey.ValueString(), d.PrivateKey); key != "" {
		auth, err := remote.KeyAuth([]byte(key))
		if err != nil {
			return t, fmt.Errorf("%s.private_key: %w", block, err)
		}
		t.Auth = append(t.Auth, auth)
	}
	if e.useAgent.ValueBool() || d.UseAgent {
		auth, err := remote.AgentAuth()
		if err != nil {
			return t, err
		}
		t.Auth = append(t.Auth, auth)
	}
	if len(t.Auth) == 0 {
		return t, fmt.Errorf("no SSH credentials for %s: set %s.private_key, use_agent, or the provider's ssh block", t.Addr, block)
	}
	switch {
	case e.hostKey.ValueString() != "":
		key, err := remote.ParsePublicKey(e.hostKey.ValueString())
		if err != nil {
			return t, fmt.Errorf("%s.host_key: %w", block, err)
		}
		t.HostKey = remote.PinHostKey(key)
	case firstSet(e.knownHosts.ValueString(), d.KnownHostsFile) != "":
		check, err := remote.KnownHosts(firstSet(e.knownHosts.ValueString(), d.KnownHostsFile))
		if err != nil {
			return t, err
		}
		t.HostKey = check
	default:
		return t, fmt.Errorf("the host key of %s is not pinned: set %s.host_key or a known_hosts_file", t.Addr, block)
	}
	return t, nil
}

func hostID(t remote.Target) string { return t.User + "@" + t.Addr }

// spec is the hostprep form of the model; loginUser is the ssh user.
func (m goHostModel) spec(loginUser string) hostprep.Spec {
	s := hostprep.Spec{Root: hostprep.DefaultRoot, RemoveUndeclared: true, CgroupV2: "ignore"}
	if g := m.Go; g != nil {
		s.Root = firstSet(g.Root.ValueString(), hostprep.DefaultRoot)
		resolved := g.resolved()
		for _, v := range g.Versions {
			s.Versions = append(s.Versions, resolved[v.ValueString()])
		}
		s.Default = resolved[g.Default.ValueString()]
		if s.Default == "" && slices.Contains(s.Versions, g.Default.ValueString()) {
			s.Default = g.Default.ValueString() // an exact release that a request ("1.24") resolved to
		}
		if s.Default == "" && len(s.Versions) > 0 {
			s.Default = s.Versions[0]
		}
	}
	s.Env = stringMap(m.Env)
	if h := m.Hardening; h != nil {
		s.SwapOff = h.SwapOff.ValueBool()
		s.NoFile = int(h.NoFile.ValueInt64())
		s.NProc = int(h.NProc.ValueInt64())
		s.Sysctls = stringMap(h.Sysctls)
		s.CgroupV2 = h.CgroupV2.ValueString()
		s.GoCacheTmpfsMiB = int(h.GoCacheTmpfsMiB.ValueInt64())
		s.GoCacheUser = firstSet(h.GoCacheUser.ValueString(), loginUser)
	}
	if v := m.Verify; v != nil {
		s.VerifyBuild = v.Build.ValueBool()
		s.TestPackages = stringsOf(v.TestPackages)
	} else {
		s.VerifyBuild = true
	}
	return s
}

// readBack records the host's facts: managed values that drifted take the
// host's value, so the plan shows the way back.
func (m *goHostModel) readBack(f hostprep.Facts, v hostprep.Verification) {
	spec := m.spec("")
	if g := m.Go; g != nil {
		resolved := g.resolved()
		kept, keptResolved := []types.String{}, []string{}
		for _, want := range g.Versions {
			version := resolved[want.ValueString()]
			if t, ok := f.Toolchains[version]; ok && t.Intact() {
				kept = append(kept, want)
				keptResolved = append(keptResolved, version)
			}
		}
		if g.Versions != nil {
			g.Versions = kept
		}
		g.ResolvedVersions = stringList(keptResolved)
		// A default written as a request ("1.24") stays as written while it
		// still names the host's default.
		if resolved[g.Default.ValueString()] != f.Default || f.Default == "" {
			g.Default = optionalString(f.Default)
		}
	}
	if !m.Env.IsNull() {
		envs := map[string]attr.Value{}
		current := f.Toolchains[f.Default].Env
		for k := range m.Env.Elements() {
			if val, ok := current[k]; ok {
				envs[k] = types.StringValue(val)
			} else {
				envs[k] = types.StringValue("")
			}
		}
		m.Env = types.MapValueMust(types.StringType, envs)
	}
	if h := m.Hardening; h != nil {
		if spec.SwapOff {
			h.SwapOff = types.BoolValue(f.SwapOff())
		}
		if spec.NoFile > 0 {
			h.NoFile = types.Int64Value(int64(f.NoFile))
		}
		if spec.NProc > 0 {
			h.NProc = types.Int64Value(int64(f.NProc))
		}
		if spec.GoCacheTmpfsMiB > 0 {
			h.GoCacheTmpfsMiB = types.Int64Value(int64(f.GoCacheTmpfsMiB))
		}
		if !h.Sysctls.IsNull() {
			vals := map[string]attr.Value{}
			for k, want := range spec.Sysctls {
				got := strings.Join(strings.Fields(f.Sysctls[k]), " ")
				if got == strings.Join(strings.Fields(want), " ") {
					got = want
				}
				vals[k] = types.StringValue(got)
			}
			h.Sysctls = types.MapValueMust(types.StringType, vals)
		}
	}
	m.Facts, m.Installed = factsValue(f), installedValue(f)
	m.Verification = types.ObjectValueMust(verificationType, map[string]attr.Value{
		"go_version": types.StringValue(v.GoVersion), "goroot": types.StringValue(v.GOROOT), "gopath": types.StringValue(v.GOPATH),
		"build_output": types.StringValue(v.BuildOutput), "test_output": types.StringValue(v.TestOutput),
	})
}

// verification is the last recorded verification (Read does not rerun it).
func (m goHostModel) verification() hostprep.Verification {
	if m.Verification.IsNull() || m.Verification.IsUnknown() {
		return hostprep.Verification{}
	}
	a := m.Verification.Attributes()
	get := func(k string) string {
		if s, ok := a[k].(types.String); ok {
			return s.ValueString()
		}
		return ""
	}
	return hostprep.Verification{GoVersion: get("go_version"), GOROOT: get("goroot"), GOPATH: get("gopath"),
		BuildOutput: get("build_output"), TestOutput: get("test_output")}
}

// importFrom adopts the toolchains found on an imported host.
func (m *goHostModel) importFrom(f hostprep.Facts) {
	var versions []types.String
	for version, t := range f.Toolchains {
		if t.Intact() {
			versions = append(versions, types.StringValue(version))
		}
	}
	slices.SortFunc(versions, func(a, b types.String) int { return strings.Compare(a.ValueString(), b.ValueString()) })
	if len(versions) > 0 {
		m.Go = &goToolchainsModel{
			Versions: versions, ResolvedVersions: stringList(stringsOf(versions)), SHA256: types.MapNull(types.StringType),
			Default: optionalString(f.Default), Source: types.StringValue("module_proxy"),
			Root: types.StringValue(hostprep.DefaultRoot), ProxyURL: types.StringNull(), SumDB: types.StringNull(),
			MirrorURL: types.StringNull(), IndexURL: types.StringNull(), Keyring: types.StringNull(), KeyFingerprint: types.StringNull(),
		}
	}
}

// resolved maps each version request to the release it resolved to; exact
// releases map to themselves.
func (g *goToolchainsModel) resolved() map[string]string {
	out := map[string]string{}
	var list []types.String
	if !g.ResolvedVersions.IsNull() && !g.ResolvedVersions.IsUnknown() {
		for _, e := range g.ResolvedVersions.Elements() {
			if s, ok := e.(types.String); ok {
				list = append(list, s)
			}
		}
	}
	for i, v := range g.Versions {
		out[v.ValueString()] = v.ValueString()
		if len(list) == len(g.Versions) {
			out[v.ValueString()] = list[i].ValueString()
		}
	}
	return out
}

func (g *goToolchainsModel) mirror() gotoolchain.Mirror {
	return gotoolchain.Mirror{URL: g.MirrorURL.ValueString(), IndexURL: g.IndexURL.ValueString(), Fingerprint: g.KeyFingerprint.ValueString()}
}

func stringMap(m types.Map) map[string]string {
	if m.IsNull() || m.IsUnknown() {
		return nil
	}
	out := map[string]string{}
	for k, v := range m.Elements() {
		if s, ok := v.(types.String); ok {
			out[k] = s.ValueString()
		}
	}
	return out
}

func factsValue(f hostprep.Facts) types.Object {
	return types.ObjectValueMust(hostFactsType, map[string]attr.Value{
		"os": types.StringValue(f.OS), "kernel": types.StringValue(f.Kernel), "arch": types.StringValue(f.Arch),
		"cgroup_mode": types.StringValue(f.CgroupFS), "swap_total_kib": types.Int64Value(f.SwapTotalKiB),
		"nofile": types.Int64Value(int64(f.NoFile)), "nproc": types.Int64Value(int64(f.NProc)),
	})
}

func installedValue(f hostprep.Facts) types.List {
	versions := make([]string, 0, len(f.Toolchains))
	for version := range f.Toolchains {
		versions = append(versions, version)
	}
	slices.Sort(versions)
	installed := make([]attr.Value, 0, len(versions))
	for _, version := range versions {
		t := f.Toolchains[version]
		installed = append(installed, types.ObjectValueMust(installedType, map[string]attr.Value{
			"version": types.StringValue(version), "archive_sha256": types.StringValue(t.ArchiveSHA256),
			"go_binary_sha256": types.StringValue(t.InstalledGoSHA256),
		}))
	}
	return types.ListValueMust(types.ObjectType{AttrTypes: installedType}, installed)
}
