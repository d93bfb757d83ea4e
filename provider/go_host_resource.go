package provider

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/hashicorp/terraform-plugin-framework-timeouts/resource/timeouts"
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
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringdefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/tfsdk"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/kilnhq/terraform-provider-kiln/internal/gotool"
	"github.com/kilnhq/terraform-provider-kiln/internal/gotoolchain"
	"github.com/kilnhq/terraform-provider-kiln/internal/hostprep"
	"github.com/kilnhq/terraform-provider-kiln/internal/redact"
	"github.com/kilnhq/terraform-provider-kiln/internal/remote"
)

var (
	_ resource.ResourceWithConfigure      = (*goHostResource)(nil)
	_ resource.ResourceWithImportState    = (*goHostResource)(nil)
	_ resource.ResourceWithModifyPlan     = (*goHostResource)(nil)
	_ resource.ResourceWithValidateConfig = (*goHostResource)(nil)
)

func newGoHostResource() resource.Resource { return &goHostResource{} }

type goHostResource struct {
	clients *clients
}

var (
	verificationType = map[string]attr.Type{
		"go_version": types.StringType, "goroot": types.StringType, "gopath": types.StringType,
		"build_output": types.StringType, "test_output": types.StringType,
	}
	goVersionRequest = regexp.MustCompile(`^([0-9]+\.[0-9]+(\.[0-9]+)?|stable)$`)
	goRelease        = regexp.MustCompile(`^[0-9]+\.[0-9]+\.[0-9]+$`)
	sha256Hex        = regexp.MustCompile(`^[0-9a-f]{64}$`)
	// packagePattern is an import path, possibly with "..." wildcards: a
	// leading "-" would make it a flag of go test.
	packagePattern = regexp.MustCompile(`^[A-Za-z0-9_.~+][A-Za-z0-9_.~+/-]*$`)
	goToolRequest  = stringCheck{"must be a package path and a version", func(s string) error {
		_, err := gotool.ParseRequest(s)
		return err
	}}
)

const (
	defaultHostCreateTimeout = 30 * time.Minute
	defaultHostUpdateTimeout = 30 * time.Minute
	defaultHostDeleteTimeout = 10 * time.Minute
)

func (r *goHostResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_go_host"
}

func (r *goHostResource) Schema(ctx context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "A hardened Go build host, provisioned over SSH: verified Go toolchains side by side " +
			"(from the module proxy checked against the checksum database, or release tarballs checked by " +
			"SHA-256 and OpenPGP signature), the system Go environment, swap off, file limits, sysctls and " +
			"cgroup v2, then a check that the default toolchain works (the go command and its compiler run, `go env` " +
			"read; a build and run of a small program on request, once per toolchain).\n\n" +
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
			"owner_id": schema.StringAttribute{
				MarkdownDescription: "Names this resource on the host: `<root>/.kiln-owners/<owner_id>` lists the toolchains " +
					"it declared, so that several `kiln_go_host` resources on one host (one for toolchains, one for " +
					"hardening, say) each remove only their own. Generated when the resource is created or imported.",
				Computed:      true,
				PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"env": schema.MapAttribute{
				MarkdownDescription: "System Go environment written to each toolchain's `$GOROOT/go.env`: any of " +
					"`GOPROXY`, `GOPRIVATE`, `GONOSUMDB`, `GOSUMDB`, `GOFLAGS`, `GOTOOLCHAIN`. Unset keys keep Go's defaults. " +
					"Sensitive, since a GOPROXY URL may carry a token: its values never appear in plans, errors or logs. " +
					"The host's `go.env` files are readable by every user there, as Go needs.",
				ElementType: types.StringType,
				Optional:    true,
				Sensitive:   true,
				Validators: []validator.Map{mapvalidator.KeysAre(stringvalidator.OneOf(hostprep.EnvKeys...)),
					mapvalidator.ValueStringsAre(oneLine)},
			},
			"remove_on_destroy": schema.BoolAttribute{
				MarkdownDescription: "On destroy, remove what this resource installed: the toolchains it declared that no other " +
					"`kiln_go_host` on the host still declares, and the limits, sysctl and GOCACHE settings it made (swap stays off). " +
					"With `false` everything stays and the toolchains are left to whoever declares them next. Defaults to `true`.",
				Optional: true,
				Computed: true,
				Default:  booldefault.StaticBool(true),
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
					"`build_output` of the test program (`kiln-verify-ok` with `verify.build`, else empty) and `test_output` of `go test -short`.",
				AttributeTypes: verificationType,
				Computed:       true,
			},
		},
		Blocks: map[string]schema.Block{
			"ssh":       sshResourceBlock(),
			"go":        goToolchainsBlock(),
			"hardening": hardeningBlock(),
			"verify": schema.SingleNestedBlock{
				MarkdownDescription: "Checks run with the default toolchain, as the login user, after each apply; results in " +
					"`verification`. Without this block (or with `build = false`) the checks are the cheap ones, which build " +
					"nothing: the go command's release, platform, `GOROOT` and `GOPATH` (`go env`), and the compiler reporting the same release (`go tool compile -V`).",
				Attributes: map[string]schema.Attribute{
					"build": schema.BoolAttribute{
						MarkdownDescription: "Also build and run a small program, as a first build on the host would (about half a " +
							"minute on an emulated host: it compiles the runtime from an empty build cache). It runs once per " +
							"toolchain: a stamp beside the toolchain records the archive digest it passed with, and later applies " +
							"skip it while that toolchain stays installed from that archive, its `bin/go` intact. Defaults to `false`.",
						Optional: true,
						Computed: true,
						Default:  booldefault.StaticBool(false),
					},
					"test_packages": schema.ListAttribute{
						MarkdownDescription: "Standard library packages to run `go test -short` on, for example `[\"strings\"]`: " +
							"package patterns (`net/...`), never flags.",
						ElementType: types.StringType,
						Optional:    true,
						Validators: []validator.List{listvalidator.SizeAtLeast(1), listvalidator.ValueStringsAre(stringvalidator.RegexMatches(
							packagePattern, "must be a package pattern such as strings or net/..., not a flag"))},
					},
				},
			},
			"timeouts": timeouts.Block(ctx, timeouts.Opts{Create: true, Update: true, Delete: true}),
		},
	}
}

// goToolchainsBlock is the `go` block: the toolchains a host is provisioned
// with, in kiln_go_host and in a kiln_image baked from a base volume.
func goToolchainsBlock() schema.SingleNestedBlock {
	return schema.SingleNestedBlock{
		MarkdownDescription: "Go toolchains to install side by side under `root`.",
		Attributes: map[string]schema.Attribute{
			"versions": schema.ListAttribute{
				MarkdownDescription: "Go versions: an exact release (`1.24.4`), a minor version for its newest patch " +
					"(`1.24`) or `stable` for the newest release, resolved at plan time against the source; " +
					"a new patch release then shows as an update. A version whose `bin/go` was changed or removed " +
					"on the host reads as missing and is reinstalled. A version dropped from the list is removed " +
					"unless another `kiln_go_host` on the host declares it; toolchains this resource never declared " +
					"(installed by hand or by another resource) are left alone, and without `versions` no toolchain is removed.",
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
					"or `sha256` is checked there). Defaults to `module_proxy`. Settings only another source uses " +
					"(a `keyring` with `host`, a `sha256` with `module_proxy`) are refused rather than ignored.",
				Optional:   true,
				Computed:   true,
				Default:    stringdefault.StaticString(gotoolchain.FromModuleProxy),
				Validators: []validator.String{stringvalidator.OneOf(gotoolchain.SourceKinds...)},
			},
			"root": schema.StringAttribute{
				MarkdownDescription: "Directory holding one sub-directory per version. Defaults to `" + hostprep.DefaultRoot + "`.",
				Optional:            true,
				Computed:            true,
				Default:             stringdefault.StaticString(hostprep.DefaultRoot),
				PlanModifiers:       []planmodifier.String{stringplanmodifier.RequiresReplace()},
				Validators:          []validator.String{cleanAbsolutePath},
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
			"tools": schema.ListAttribute{
				MarkdownDescription: "Go programs to install on the host, as `go install` takes them: a main package and a " +
					"module version, exact (`github.com/go-delve/delve/cmd/dlv@v1.27.2`) or `latest`, resolved when planning " +
					"through `proxy_url` (the module proxy the toolchains come from; the resolved version is in `resolved_tools`). " +
					"Each is built on the machine running Terraform, for the host's OS and architecture, as pure Go " +
					"(`CGO_ENABLED=0`, `-trimpath`), by the newest of `versions` that the module's `go` line accepts, its modules " +
					"downloaded through `proxy_url` and checked against `sumdb`; the binary is cached there, so further hosts and " +
					"applies reuse it. Tools that need cgo are not supported: their build fails with an error saying so. " +
					"The binary is streamed to the host, checked by SHA-256 and renamed into `tools_dir` with mode 0755. Every " +
					"refresh hashes it again whenever its inode, size or change time moved, so a replaced or deleted binary " +
					"shows in the plan and the next apply puts Kiln's back. A tool dropped from the list is removed, unless another " +
					"`kiln_go_host` on the host declares it. Kiln never overwrites a file it did not install at the tool's path " +
					"(the apply fails, naming it), and never deletes a binary it did not install or one replaced since. " +
					"Needs `versions`.",
				ElementType: types.StringType,
				Optional:    true,
				Validators: []validator.List{listvalidator.SizeAtLeast(1), listvalidator.UniqueValues(),
					listvalidator.ValueStringsAre(goToolRequest)},
			},
			"resolved_tools": schema.ListAttribute{
				MarkdownDescription: "The `package@version` each entry of `tools` resolved to, in the same order.",
				ElementType:         types.StringType,
				Computed:            true,
			},
			"tools_dir": schema.StringAttribute{
				MarkdownDescription: "Directory the `tools` binaries are installed into. Defaults to `" + hostprep.DefaultToolsDir + "`.",
				Optional:            true,
				Computed:            true,
				Default:             stringdefault.StaticString(hostprep.DefaultToolsDir),
				Validators:          []validator.String{cleanAbsolutePath},
			},
			"key_fingerprint": schema.StringAttribute{
				MarkdownDescription: "With `dl`: the primary key fingerprint signatures must come from. Defaults to " +
					"`" + gotoolchain.GoReleaseKeyFingerprint + "` with the embedded keys.",
				Optional: true,
			},
		},
	}
}

// hardeningBlock is the `hardening` block of a provisioned host, in
// kiln_go_host and in a kiln_image baked from a base volume.
func hardeningBlock() schema.SingleNestedBlock {
	return schema.SingleNestedBlock{
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
				Validators: []validator.Map{mapvalidator.KeysAre(stringvalidator.RegexMatches(regexp.MustCompile(`^[a-z0-9_.]+$`), "must be a sysctl name")),
					mapvalidator.ValueStringsAre(oneLine)},
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
				Validators:          []validator.String{userName},
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
	resp.Diagnostics.Append(plan.writeOnlyKey(ctx, req.Config)...)
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
	resp.Diagnostics.Append(plan.writeOnlyKey(ctx, req.Config)...)
	if resp.Diagnostics.HasError() {
		return
	}
	r.apply(ctx, timeout, &plan, &prior, &resp.State, &resp.Diagnostics)
}

// writeOnlyKey takes ssh.private_key_wo from config: plans never carry
// write-only values (and the framework drops it again from the state).
func (m *goHostModel) writeOnlyKey(ctx context.Context, config tfsdk.Config) diag.Diagnostics {
	if m.Connection == nil {
		return nil
	}
	return config.GetAttribute(ctx, path.Root("ssh").AtName("private_key_wo"), &m.Connection.PrivateKeyWO)
}

// sourceSettings are the go block settings each source uses.
var sourceSettings = map[string][]string{
	gotoolchain.FromModuleProxy: {"proxy_url", "sumdb"},
	gotoolchain.FromMirror:      {"mirror_url", "index_url", "keyring", "key_fingerprint", "sha256"},
	gotoolchain.FetchedByHost:   {"mirror_url", "index_url", "sha256"},
}

// ValidateConfig refuses go block settings the chosen source ignores: a
// keyring the host never checks, or a SHA-256 the module proxy path never
// compares, would look like protection it is not.
func (r *goHostResource) ValidateConfig(ctx context.Context, req resource.ValidateConfigRequest, resp *resource.ValidateConfigResponse) {
	// The block as an object, not goToolchainsModel: versions from a module
	// variable are unknown when validating, which the model's list cannot hold.
	var g types.Object
	resp.Diagnostics.Append(req.Config.GetAttribute(ctx, path.Root("go"), &g)...)
	if resp.Diagnostics.HasError() {
		return
	}
	checkGoSourceSettings(g, path.Root("go"), &resp.Diagnostics)
}

// checkGoSourceSettings refuses the settings of the go block g (at at) that
// its source ignores.
func checkGoSourceSettings(g types.Object, at path.Path, diags *diag.Diagnostics) {
	if g.IsNull() || g.IsUnknown() {
		return
	}
	attrs := g.Attributes()
	sourceValue, ok := attrs["source"].(types.String)
	if !ok || sourceValue.IsUnknown() {
		return
	}
	source := firstSet(sourceValue.ValueString(), gotoolchain.FromModuleProxy)
	used, ok := sourceSettings[source]
	if !ok {
		return // the source's own validator names it
	}
	for _, name := range slices.Sorted(maps.Keys(attrs)) {
		if !slices.ContainsFunc(gotoolchain.SourceKinds, func(kind string) bool { return slices.Contains(sourceSettings[kind], name) }) ||
			attrs[name].IsNull() || slices.Contains(used, name) {
			continue
		}
		var with []string
		for _, kind := range gotoolchain.SourceKinds {
			if slices.Contains(sourceSettings[kind], name) {
				with = append(with, strconv.Quote(kind))
			}
		}
		diags.AddAttributeError(at.AtName(name), "Setting has no effect for this source",
			fmt.Sprintf("%s.%s has no effect with source = %q (it is used with source %s): remove it, or choose that source.",
				at, name, source, strings.Join(with, " or ")))
	}
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
	host := connectHost(ctx, r.clients.ssh, plan.Connection.connection(), plan.secrets(), diags)
	if host == nil {
		return
	}
	defer host.Close()
	if plan.OwnerID.IsUnknown() || plan.OwnerID.IsNull() {
		plan.OwnerID = types.StringValue(uuid.NewString())
	}
	if plan.Go != nil {
		host.Source = r.source(plan.Go)
		host.Tools = r.toolBuilder(plan.Go)
	}
	// Known before the work starts: a create that fails part way records the
	// host under its id, and an unknown one would make the state invalid.
	plan.ID = types.StringValue(hostID(host))
	facts, verification, err := host.Apply(ctx, plan.spec(host.Target.User))
	if err != nil {
		diags.AddError("Could not prepare the Go host", err.Error())
		if facts.Kernel != "" {
			known := plan
			if prior != nil {
				known = prior
				known.OwnerID = plan.OwnerID // the host may hold claims under it already
			}
			known.readBack(facts, known.verification())
			diags.Append(state.Set(ctx, known)...)
		}
		return
	}
	plan.readBack(facts, verification)
	diags.Append(state.Set(ctx, plan)...)
}

// ModifyPlan resolves version requests ("1.24", "stable") against the source,
// so a new patch release shows as an update, and checks the default. Once the
// host's facts are known, versions resolve for its platform, and a platform
// Go publishes no toolchain for is refused.
func (r *goHostResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	if req.Plan.Raw.IsNull() {
		return
	}
	var g *goToolchainsModel
	resp.Diagnostics.Append(req.Plan.GetAttribute(ctx, path.Root("go"), &g)...)
	if resp.Diagnostics.HasError() || g == nil {
		return
	}
	if g.Versions == nil {
		if len(g.Tools) > 0 {
			resp.Diagnostics.AddAttributeError(path.Root("go").AtName("tools"), "Go tools need toolchains",
				"go.tools are built with one of go.versions: declare the Go versions too.")
		} else {
			resp.Diagnostics.Append(resp.Plan.SetAttribute(ctx, path.Root("go").AtName("resolved_tools"), stringList(nil))...)
		}
		return
	}
	resolvedPath := path.Root("go").AtName("resolved_versions")
	for _, v := range g.Versions {
		if v.IsUnknown() {
			resp.Diagnostics.Append(resp.Plan.SetAttribute(ctx, resolvedPath, types.ListUnknown(types.StringType))...)
			return
		}
	}
	platform := hostprep.AnyPlatform
	if !req.State.Raw.IsNull() && len(resp.RequiresReplace) == 0 { // the facts are this host's
		var arch types.String
		resp.Diagnostics.Append(req.State.GetAttribute(ctx, path.Root("facts").AtName("arch"), &arch)...)
		if arch.ValueString() != "" {
			var err error
			if platform, err = hostprep.LinuxPlatform(arch.ValueString()); err != nil {
				resp.Diagnostics.AddAttributeError(path.Root("go"), "Unsupported host platform", err.Error())
				return
			}
		}
	}
	// The default is checked as configured, resolved like the versions: the
	// plan's value may be the release an unset default resolved to last time.
	defaultPath := path.Root("go").AtName("default")
	var configured types.String
	resp.Diagnostics.Append(req.Config.GetAttribute(ctx, defaultPath, &configured)...)
	resolved := resolveGoVersions(ctx, r.source(g), stringsOf(g.Versions), configured, platform, path.Root("go"), &resp.Diagnostics)
	if resolved == nil {
		return
	}
	planned := stringList(resolved)
	resp.Diagnostics.Append(resp.Plan.SetAttribute(ctx, resolvedPath, planned)...)
	r.planTools(ctx, g, resolved, req, resp)
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

// resolveGoVersions resolves the version requests of the go block at at, and
// its configured default, against src for platform; nil, with the error in
// diags, when they do not resolve or the default is not among them.
func resolveGoVersions(ctx context.Context, src gotoolchain.Source, requests []string, configured types.String,
	platform gotoolchain.Platform, at path.Path, diags *diag.Diagnostics) []string {
	lookups := requests
	if !configured.IsUnknown() && !configured.IsNull() {
		lookups = append(slices.Clone(requests), configured.ValueString())
	}
	resolved, err := src.Resolve(ctx, lookups, platform)
	if err != nil {
		diags.AddAttributeError(at.AtName("versions"), "Could not resolve Go versions", redact.URLCredentials(err.Error()))
		return nil
	}
	if len(lookups) > len(requests) {
		d := resolved[len(requests)]
		resolved = resolved[:len(requests)]
		if !slices.Contains(resolved, d) {
			diags.AddAttributeError(at.AtName("default"), "Default Go version not declared",
				fmt.Sprintf("default %q (go%s) must be one of the versions: %v resolve to %v", configured.ValueString(), d, requests, resolved))
			return nil
		}
	}
	return resolved
}

// planTools resolves go.tools (latest through the module proxy) into
// go.resolved_tools and checks that one of the toolchains, resolved to
// versions, can build each. A plan whose tools and toolchains are those of
// the state, all exact, asks the proxy nothing.
func (r *goHostResource) planTools(ctx context.Context, g *goToolchainsModel, versions []string, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	toolsPath := path.Root("go").AtName("tools")
	resolvedPath := path.Root("go").AtName("resolved_tools")
	requests := stringsOf(g.Tools)
	if len(requests) == 0 {
		resp.Diagnostics.Append(resp.Plan.SetAttribute(ctx, resolvedPath, stringList(nil))...)
		return
	}
	for _, t := range g.Tools {
		if t.IsUnknown() {
			resp.Diagnostics.Append(resp.Plan.SetAttribute(ctx, resolvedPath, types.ListUnknown(types.StringType))...)
			return
		}
	}
	if !req.State.Raw.IsNull() {
		var prior *goToolchainsModel
		resp.Diagnostics.Append(req.State.GetAttribute(ctx, path.Root("go"), &prior)...)
		if prior != nil && slices.Equal(stringsOf(prior.Tools), requests) && prior.ResolvedVersions.Equal(stringList(versions)) &&
			!slices.ContainsFunc(requests, func(s string) bool { return strings.HasSuffix(s, "@"+gotool.Latest) }) {
			resp.Diagnostics.Append(resp.Plan.SetAttribute(ctx, resolvedPath, prior.ResolvedTools)...)
			return
		}
	}
	builder := r.toolBuilder(g)
	resolved := make([]string, 0, len(requests))
	names := map[string]string{}
	for _, s := range requests {
		request, err := gotool.ParseRequest(s)
		if err != nil {
			resp.Diagnostics.AddAttributeError(toolsPath, "Invalid Go tool", err.Error())
			return
		}
		tool, err := builder.Resolve(ctx, request)
		if err != nil {
			resp.Diagnostics.AddAttributeError(toolsPath, "Could not resolve Go tool", redact.URLCredentials(err.Error()))
			return
		}
		if _, ok := gotool.PickToolchain(tool.GoVersion, versions); !ok {
			resp.Diagnostics.AddAttributeError(toolsPath, "No declared Go toolchain builds this tool",
				fmt.Sprintf("go.tools: %s (module %s) needs go %s or newer to build, and go.versions resolve to %v: "+
					"add a newer Go version, or choose an older version of the tool.", tool, tool.Module, tool.GoVersion, versions))
			return
		}
		if other, ok := names[tool.Name()]; ok {
			resp.Diagnostics.AddAttributeError(toolsPath, "Two Go tools with one name",
				fmt.Sprintf("go.tools: %s and %s would both install %s", other, s, tool.Name()))
			return
		}
		names[tool.Name()] = s
		resolved = append(resolved, tool.String())
	}
	resp.Diagnostics.Append(resp.Plan.SetAttribute(ctx, resolvedPath, stringList(resolved))...)
}

func (r *goHostResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var state goHostModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	if _, err := sshTarget(r.clients.ssh, state.Connection.connection()); errors.Is(err, remote.ErrNoCredentials) {
		// The key was write-only: it came with the last apply and is gone.
		resp.Diagnostics.AddWarning("Go host not read back",
			"The host's SSH key is write-only (ssh.private_key_wo), so refreshes cannot log in: the recorded state is kept "+
				"and drift on the host does not show. Give the provider's ssh block a private_key (it may be ephemeral) "+
				"or use_agent to read the host back. "+err.Error())
		return
	}
	host := connectHost(ctx, r.clients.ssh, state.Connection.connection(), state.secrets(), &resp.Diagnostics)
	if host == nil {
		return
	}
	defer host.Close()
	facts, err := host.ReadFacts(ctx, state.spec(host.Target.User))
	if err != nil {
		resp.Diagnostics.AddError("Could not read the Go host", err.Error())
		return
	}
	// Only an import leaves owner_id unset with nothing declared: a resource
	// created without go and hardening blocks must not adopt the toolchains
	// another resource on the host installed.
	if state.OwnerID.IsNull() {
		if state.Go == nil && state.Hardening == nil {
			state.importFrom(facts) // just imported: adopt what the host has
		}
		state.OwnerID = types.StringValue(uuid.NewString())
	}
	state.ID = types.StringValue(hostID(host))
	state.readBack(facts, state.verification())
	resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
}

func (r *goHostResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var state goHostModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	timeout, diags := state.Timeouts.Delete(ctx, defaultHostDeleteTimeout)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	remove := state.RemoveOnDestroy.ValueBool()
	// Keeping everything, the resource only drops its claims, and a host
	// that is gone must not block the destroy: failures are warnings.
	var connected diag.Diagnostics
	host := connectHost(ctx, r.clients.ssh, state.Connection.connection(), state.secrets(), &connected)
	if host == nil {
		if remove {
			resp.Diagnostics.Append(connected...)
		} else {
			resp.Diagnostics.AddWarning("Toolchain claims left on the host", diagDetails(connected))
		}
		return
	}
	defer host.Close()
	spec := state.spec(host.Target.User)
	if !remove {
		if err := host.Forget(ctx, spec); err != nil {
			resp.Diagnostics.AddWarning("Toolchain claims left on the host", err.Error())
		}
		return
	}
	if err := host.Uninstall(ctx, spec); err != nil {
		resp.Diagnostics.AddError("Could not remove what Kiln installed", err.Error())
	}
}

// diagDetails joins the summaries and details of diags.
func diagDetails(diags diag.Diagnostics) string {
	var lines []string
	for _, d := range diags {
		lines = append(lines, d.Summary()+": "+d.Detail())
	}
	return strings.Join(lines, "\n")
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
	conn := &resourceConnectionModel{hostConnectionModel: hostConnectionModel{
		Host: types.StringValue(host), Port: types.Int64Value(port), User: types.StringValue(user),
		PrivateKey: types.StringNull(), UseAgent: types.BoolNull(), HostKey: types.StringNull(), KnownHostsFile: types.StringNull(),
	}, PrivateKeyWO: types.StringNull()}
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("ssh"), conn)...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("id"), req.ID)...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("remove_on_destroy"), true)...)
}

// toolBuilder builds a go block's tools, through its module proxy.
func (r *goHostResource) toolBuilder(g *goToolchainsModel) *gotool.Builder {
	b := &gotool.Builder{Proxy: gotoolchain.ModuleProxy{URL: g.ProxyURL.ValueString(), SumDB: g.SumDB.ValueString()}, Log: kilnLog}
	if r.clients != nil {
		b.Dir = r.clients.goToolsDir
	}
	return b
}

// source is the toolchain source a go block names.
func (r *goHostResource) source(g *goToolchainsModel) gotoolchain.Source {
	return toolchainSource(r.clients, g)
}

// toolchainSource is the toolchain source a go block names, fetched through
// the provider's cache (c, nil before the provider is configured).
func toolchainSource(c *clients, g *goToolchainsModel) gotoolchain.Source {
	s := gotoolchain.Source{
		Kind:  g.Source.ValueString(),
		Proxy: gotoolchain.ModuleProxy{URL: g.ProxyURL.ValueString(), SumDB: g.SumDB.ValueString()},
		Mirror: gotoolchain.Mirror{URL: g.MirrorURL.ValueString(), IndexURL: g.IndexURL.ValueString(),
			Fingerprint: g.KeyFingerprint.ValueString()},
		Keyring: g.Keyring.ValueString(),
		SHA256:  stringMap(g.SHA256),
	}
	if c != nil {
		s.Fetcher = c.toolchains
	}
	return s
}
