package provider

import (
	"context"
	"strconv"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-validators/listvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/mapvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/objectvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/boolplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/listplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/mapplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/objectplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/kilnhq/terraform-provider-kiln/internal/buildfarm"
	"github.com/kilnhq/terraform-provider-kiln/internal/gitsource"
)

var (
	_ resource.ResourceWithConfigure  = (*buildResource)(nil)
	_ resource.ResourceWithModifyPlan = (*buildResource)(nil)
)

func newBuildResource() resource.Resource { return &buildResource{} }

type buildResource struct {
	clients *clients
}

type buildModel struct {
	ID               types.String      `tfsdk:"id"`
	Project          types.String      `tfsdk:"project"`
	Service          types.String      `tfsdk:"service"`
	Name             types.String      `tfsdk:"name"`
	ControlNamespace types.String      `tfsdk:"control_namespace"`
	PoolLabels       types.Map         `tfsdk:"pool_labels"`
	GoVersion        types.String      `tfsdk:"go_version"`
	Source           *buildSourceModel `tfsdk:"source"`
	Go               *buildGoModel     `tfsdk:"go"`
	Script           types.String      `tfsdk:"script"`
	Artifacts        types.List        `tfsdk:"artifacts"`
	Env              types.Map         `tfsdk:"env"`
	SecretEnv        types.Map         `tfsdk:"secret_env"`
	Timeout          goDuration        `tfsdk:"timeout"`

	Commit          types.String `tfsdk:"commit"`
	SourceHash      types.String `tfsdk:"source_hash"`
	ImageRef        types.String `tfsdk:"image_ref"`
	ImageDigest     types.String `tfsdk:"image_digest"`
	Tags            types.List   `tfsdk:"tags"`
	ArtifactFiles   types.Map    `tfsdk:"artifact_files"`
	BinarySHA256    types.String `tfsdk:"binary_sha256"`
	Host            types.String `tfsdk:"host"`
	GoVersionExact  types.String `tfsdk:"go_version_exact"`
	BuildNumber     types.Int64  `tfsdk:"build_number"`
	InputsHash      types.String `tfsdk:"inputs_hash"`
	DurationSeconds types.Int64  `tfsdk:"duration_seconds"`
	LogTail         types.String `tfsdk:"log_tail"`
}

type buildSourceModel struct {
	Git  *buildGitModel `tfsdk:"git"`
	Path types.String   `tfsdk:"path"`
}

type buildGitModel struct {
	URL        types.String `tfsdk:"url"`
	Ref        types.String `tfsdk:"ref"`
	Username   types.String `tfsdk:"username"`
	Password   types.String `tfsdk:"password"`
	PasswordWO types.String `tfsdk:"password_wo"`
	SSHKey     types.String `tfsdk:"ssh_private_key"`
	SSHHostKey types.String `tfsdk:"ssh_host_key"`
}

type buildGoModel struct {
	Package types.String `tfsdk:"package"`
	LDFlags types.String `tfsdk:"ldflags"`
	Tags    types.List   `tfsdk:"tags"`
	CGO     types.Bool   `tfsdk:"cgo"`
	Base    types.String `tfsdk:"base"`
}

var artifactFileType = types.ObjectType{AttrTypes: map[string]attr.Type{
	"sha256": types.StringType, "size": types.Int64Type, "ref": types.StringType,
}}

func (r *buildResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_build"
}

// replaceString, replaceList, ... are the plan modifiers of a build's inputs:
// a build is immutable, so every change is a new build.
var (
	replaceString = []planmodifier.String{stringplanmodifier.RequiresReplace()}
	replaceList   = []planmodifier.List{listplanmodifier.RequiresReplace()}
	replaceMap    = []planmodifier.Map{mapplanmodifier.RequiresReplace()}
	replaceBool   = []planmodifier.Bool{boolplanmodifier.RequiresReplace()}
	keepString    = []planmodifier.String{stringplanmodifier.UseStateForUnknown()}
)

func (r *buildResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	computedString := func(description string) schema.StringAttribute {
		return schema.StringAttribute{MarkdownDescription: description, Computed: true, PlanModifiers: keepString}
	}
	resp.Schema = schema.Schema{
		MarkdownDescription: "One build: a source at one commit, built on a `kiln_build_pool` host into a " +
			"content-addressed output in the provider's `registry`. A Go build (`go`) gives an OCI image made the way " +
			"ko makes one (a layer holding the binary, mode 0755 at `/ko-app/<name>`, on `base` or on scratch, " +
			"entrypoint set, no Docker daemon anywhere); a `script` build gives its `artifacts` as one OCI artifact.\n\n" +
			"Builds are reproducible by construction: the source is streamed to the host at exactly `commit`, built " +
			"with `-trimpath`, no build id, `SOURCE_DATE_EPOCH` = the commit time, the toolchain's own `go.env` and " +
			"`GOTOOLCHAIN=local`; image layers have fixed modes and times. The same commit and inputs give the same " +
			"digest on any host with the same Go version.\n\n" +
			"A git `ref` is resolved to `commit` at plan time: a new commit on the branch shows in `terraform plan` " +
			"as a rebuild. Create picks a ready pool host with the labels and the Go version and a free slot, runs " +
			"the build there as the pool's build user with the host's module and build caches, brings the outputs " +
			"back hashed in flight, pushes them and records the build (a Secret `kiln-build-<project>.<service>-<n>` " +
			"or `kiln-build-<name>-<n>` in the control namespace, with its number, commit, inputs hash, digest, " +
			"host, Go version, status, times and log tail). A failing build fails the apply with the host, the step, " +
			"the exit code and the log's last lines, pushes nothing, and is recorded as `failed` (with " +
			"`lifecycle { create_before_destroy = true }` the previous build stays in state when its replacement fails); a dropped " +
			"connection or a timeout kills the build's process group on the host.\n\n" +
			"Refresh checks the output is still in the registry (one HEAD request, no build); an output deleted " +
			"there makes the next plan build again. Every input forces a new build. Destroying a build forgets it: " +
			"its record and its image stay. A build is not importable: it is an event, and its inputs (the ref as " +
			"written, the credentials, the secret environment) cannot be read back from its output. Builds run on " +
			"pool hosts, not as Kubernetes Jobs (which need a container runtime on the cluster's nodes). Requires " +
			"the provider's `kubernetes` and `registry` blocks.",
		Attributes: map[string]schema.Attribute{
			"id": computedString("`<project>.<service>/<build_number>` or `<name>/<build_number>`."),
			"project": schema.StringAttribute{
				MarkdownDescription: "The `kiln_project` the build belongs to; with `service`. Conflicts with `name`.",
				Optional:            true, PlanModifiers: replaceString, Validators: dnsLabelValidators,
			},
			"service": schema.StringAttribute{
				MarkdownDescription: "A service of `project`: the image's repository and tag follow the project's " +
					"`image_rule`, its `.Timestamp` the commit time (`20060102150405`) and `.Branch` the ref, so tags are reproducible too.",
				Optional: true, PlanModifiers: replaceString, Validators: append([]validator.String{
					stringvalidator.AlsoRequires(path.MatchRoot("project"))}, dnsLabelValidators...),
			},
			"name": schema.StringAttribute{
				MarkdownDescription: "A standalone build's name (for host releases): its output's repository. Conflicts with `project`.",
				Optional:            true, PlanModifiers: replaceString,
				Validators: append([]validator.String{stringvalidator.ExactlyOneOf(path.MatchRoot("project"))}, dnsLabelValidators...),
			},
			"control_namespace": controlNamespaceAttribute(),
			"pool_labels": schema.MapAttribute{
				MarkdownDescription: "Labels of the pools the build may run on. Defaults to the project's `build_pool_labels`.",
				ElementType:         types.StringType, Optional: true, PlanModifiers: replaceMap,
			},
			"go_version": schema.StringAttribute{
				MarkdownDescription: "The Go version: `1.24` (its newest patch any matching host has) or exact (`1.24.4`). " +
					"A plan fails when no matching pool host has it.",
				Required: true, PlanModifiers: replaceString,
			},
			"script": schema.StringAttribute{
				MarkdownDescription: "A bash script run in the source tree instead of `go` (with `-euo pipefail`, the " +
					"toolchain first on `PATH`); its `artifacts` are pushed.",
				Optional: true, PlanModifiers: replaceString,
				Validators: []validator.String{stringvalidator.ExactlyOneOf(path.MatchRoot("go")), stringvalidator.AlsoRequires(path.MatchRoot("artifacts"))},
			},
			"artifacts": schema.ListAttribute{
				MarkdownDescription: "Files the `script` leaves, relative to the source tree (`dist/app`): pushed as one " +
					"OCI artifact, each file a blob of its own.",
				ElementType: types.StringType, Optional: true, PlanModifiers: replaceList,
				Validators: []validator.List{listvalidator.SizeAtLeast(1), listvalidator.AlsoRequires(path.MatchRoot("script"))},
			},
			"env": schema.MapAttribute{
				MarkdownDescription: "Environment of the build (`GOFLAGS`, `GOPRIVATE`, ...), over the toolchain's `go.env`.",
				ElementType:         types.StringType, Optional: true, PlanModifiers: replaceMap,
				Validators: []validator.Map{mapvalidator.SizeAtLeast(1)},
			},
			"secret_env": schema.MapAttribute{
				MarkdownDescription: "Environment with secret values (tokens): sensitive, passed to the host on the build's " +
					"standard input (never on a command line), kept out of logs, errors and the log tail; only their " +
					"hashes enter `inputs_hash`.",
				ElementType: types.StringType, Optional: true, Sensitive: true, PlanModifiers: replaceMap,
				Validators: []validator.Map{mapvalidator.SizeAtLeast(1)},
			},
			"timeout": func() schema.StringAttribute {
				a := durationAttribute("How long the build may take, waiting for a slot included; then its process group is killed.", "30m")
				a.PlanModifiers = replaceString
				return a
			}(),
			"commit":      computedString("The commit built: `source.git.ref` resolved at plan time."),
			"source_hash": computedString("For a `source.path`: the content hash of the directory, taken at plan time (a change rebuilds)."),
			"image_ref": computedString("The output, pinned by digest: `<registry>/<repository>@sha256:…` (an image, or the " +
				"artifact of a script build). Ready for `kiln_release.services`."),
			"image_digest": computedString("The output's digest, `sha256:…`."),
			"tags": schema.ListAttribute{
				MarkdownDescription: "Tags pushed with the output (from the project's `image_rule`; none for a standalone build).",
				ElementType:         types.StringType, Computed: true,
				PlanModifiers: []planmodifier.List{listplanmodifier.UseStateForUnknown()},
			},
			"artifact_files": schema.MapAttribute{
				MarkdownDescription: "A script build's files by path: `sha256` (hex), `size` in bytes and `ref` " +
					"(`<repository>@sha256:…`, the blob, fetchable from the registry).",
				ElementType: artifactFileType, Computed: true,
				PlanModifiers: []planmodifier.Map{mapplanmodifier.UseStateForUnknown()},
			},
			"binary_sha256":    computedString("A Go build's binary, hashed as it came back from the host (hex)."),
			"host":             computedString("The pool host the build ran on (`host:port`)."),
			"go_version_exact": computedString("The exact Go version the build used."),
			"build_number": schema.Int64Attribute{
				MarkdownDescription: "The build's number in its series (per project and service, or per name), like ZadigX's task id.",
				Computed:            true,
			},
			"inputs_hash": computedString("`sha256:` of everything the build is made of: source, Go version, build settings, environment."),
			"duration_seconds": schema.Int64Attribute{
				MarkdownDescription: "How long the build took, waiting for a slot and pushing included.",
				Computed:            true,
			},
			"log_tail": computedString("The last lines of the build's log (secrets hidden)."),
		},
		Blocks: map[string]schema.Block{
			"source": sourceBlock(),
			"go": schema.SingleNestedBlock{
				MarkdownDescription: "Build a Go package into a binary packed as an OCI image.",
				PlanModifiers:       []planmodifier.Object{objectplanmodifier.RequiresReplace()},
				Attributes: map[string]schema.Attribute{
					"package": schema.StringAttribute{
						MarkdownDescription: "The main package, e.g. `./cmd/backend` (the binary is named after its last element).",
						Optional:            true, PlanModifiers: replaceString,
					},
					"ldflags": schema.StringAttribute{
						MarkdownDescription: "Linker flags, e.g. `-s -w -X main.version=1.2.3` (`-buildid=` is always added). A Go " +
							"template with ko's names for the commit: `{{.Git.FullCommit}}`, `{{.Git.ShortCommit}}`, `{{.Git.Branch}}`, " +
							"`{{.Git.CommitDate}}` (RFC 3339, UTC) and `{{.Git.CommitTimestamp}}` (Unix seconds), so a stamp stays reproducible.",
						Optional: true, PlanModifiers: replaceString,
					},
					"tags": schema.ListAttribute{
						MarkdownDescription: "Build tags.",
						ElementType:         types.StringType, Optional: true, PlanModifiers: replaceList,
					},
					"cgo": schema.BoolAttribute{
						MarkdownDescription: "`CGO_ENABLED=1`. Defaults to `false` (a static binary, which runs on scratch).",
						Optional:            true, PlanModifiers: replaceBool,
					},
					"base": schema.StringAttribute{
						MarkdownDescription: "Base image pinned by digest (`repo@sha256:…`); unset for scratch.",
						Optional:            true, PlanModifiers: replaceString,
					},
				},
			},
		},
	}
}

func (r *buildResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	r.clients = configuredClients(req.ProviderData, &resp.Diagnostics)
}

// spec converts the model; password is the write-only password when set.
func (m buildModel) spec(password types.String) (buildfarm.BuildSpec, bool) {
	s := buildfarm.BuildSpec{
		Project: m.Project.ValueString(), Service: m.Service.ValueString(), Name: m.Name.ValueString(),
		PoolLabels: stringMap(m.PoolLabels), GoVersion: m.GoVersion.ValueString(),
		Script: m.Script.ValueString(), Artifacts: listStrings(m.Artifacts),
		Env: stringMap(m.Env), SecretEnv: stringMap(m.SecretEnv),
	}
	if m.Source == nil || (m.Go == nil && s.Script == "") {
		return s, false
	}
	var known bool
	if s.Source, known = m.Source.source(password, m.Commit); !known {
		return s, false
	}
	if g := m.Go; g != nil {
		s.Go = &buildfarm.GoBuild{Package: g.Package.ValueString(), LDFlags: g.LDFlags.ValueString(),
			Tags: listStrings(g.Tags), CGO: g.CGO.ValueBool(), Base: g.Base.ValueString()}
	}
	if d, diags := m.Timeout.ValueGoDuration(); !diags.HasError() {
		s.Timeout = d
	}
	for _, v := range []attr.Value{m.Project, m.Service, m.Name, m.PoolLabels, m.GoVersion, m.Script, m.Artifacts, m.Env, m.SecretEnv} {
		if v.IsUnknown() {
			return s, false
		}
	}
	return s, true
}

// source converts the source block; commit is the one planned, password the
// write-only password when set. Not known while the url, ref or path is not.
func (m *buildSourceModel) source(password, commit types.String) (buildfarm.Source, bool) {
	g := m.Git
	if g == nil {
		return buildfarm.Source{Path: m.Path.ValueString()}, !m.Path.IsUnknown()
	}
	creds := gitsource.Credentials{Username: g.Username.ValueString(), Password: g.Password.ValueString(),
		SSHPrivateKey: []byte(g.SSHKey.ValueString()), SSHHostKey: g.SSHHostKey.ValueString()}
	if !password.IsNull() && !password.IsUnknown() {
		creds.Password = password.ValueString()
	}
	return buildfarm.Source{Git: &gitsource.Repository{URL: g.URL.ValueString(), Credentials: creds},
		Ref: g.Ref.ValueString(), Commit: commit.ValueString()}, !g.URL.IsUnknown() && !g.Ref.IsUnknown()
}

// listStrings converts a known list of strings; null and unknown give nil.
func listStrings(l types.List) []string {
	if l.IsNull() || l.IsUnknown() {
		return nil
	}
	var out []string
	for _, v := range l.Elements() {
		if s, ok := v.(types.String); ok {
			out = append(out, s.ValueString())
		}
	}
	return out
}

// ModifyPlan resolves the ref to a commit (a new commit replaces the build),
// hashes a path source, and checks the project, the service and that some
// pool host has the labels and the Go version.
func (r *buildResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	if req.Plan.Raw.IsNull() {
		return
	}
	var plan buildModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	var password types.String
	resp.Diagnostics.Append(req.Config.GetAttribute(ctx, path.Root("source").AtName("git").AtName("password_wo"), &password)...)
	if resp.Diagnostics.HasError() {
		return
	}
	spec, known := plan.spec(password)
	farm := buildFarm(r.clients, plan.ControlNamespace.ValueString(), true, &resp.Diagnostics)
	if !known || farm == nil {
		return
	}
	spec.Source.Commit = ""
	planned, warnings, err := farm.Plan(ctx, &spec, false)
	if err != nil {
		addBuildError(&resp.Diagnostics, "Invalid build", err)
		return
	}
	for _, w := range warnings {
		resp.Diagnostics.AddWarning("Build checked in part", w)
	}
	if planResolvedSource(ctx, req, resp, planned) {
		planUnknown(ctx, resp, types.StringUnknown(), "id", "image_ref", "image_digest", "binary_sha256", "host", "go_version_exact", "inputs_hash", "log_tail")
		resp.Diagnostics.Append(resp.Plan.SetAttribute(ctx, path.Root("tags"), types.ListUnknown(types.StringType))...)
		resp.Diagnostics.Append(resp.Plan.SetAttribute(ctx, path.Root("artifact_files"), types.MapUnknown(artifactFileType))...)
	}
}

func (r *buildResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan buildModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	var password types.String
	resp.Diagnostics.Append(req.Config.GetAttribute(ctx, path.Root("source").AtName("git").AtName("password_wo"), &password)...)
	farm := buildFarm(r.clients, plan.ControlNamespace.ValueString(), true, &resp.Diagnostics)
	if resp.Diagnostics.HasError() {
		return
	}
	spec, _ := plan.spec(password)
	// The build takes the commit the plan showed, not the branch's tip now;
	// Plan only fills in the project's pool labels.
	commit := spec.Source.Commit
	if _, _, err := farm.Plan(ctx, &spec, true); err != nil {
		addBuildError(&resp.Diagnostics, "Invalid build", err)
		return
	}
	if spec.Source.Git != nil {
		spec.Source.Commit = commit
	}
	res, err := farm.Run(ctx, spec)
	if err != nil {
		resp.Diagnostics.AddError("Build failed", err.Error())
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, withResult(plan, res))...)
}

// withResult is m with a build's outputs.
func withResult(m buildModel, res buildfarm.Result) buildModel {
	m.ID = types.StringValue(res.Series() + "/" + strconv.Itoa(res.Number))
	m.ImageRef, m.ImageDigest = types.StringValue(res.ImageRef), types.StringValue(res.ImageDigest)
	m.Tags = stringList(res.Tags)
	files := map[string]attr.Value{}
	for _, f := range res.Artifacts {
		files[f.Path] = types.ObjectValueMust(artifactFileType.AttrTypes, map[string]attr.Value{
			"sha256": types.StringValue(f.SHA256), "size": types.Int64Value(f.Size), "ref": types.StringValue(f.Ref)})
	}
	m.ArtifactFiles = types.MapValueMust(artifactFileType, files)
	m.BinarySHA256 = types.StringValue(res.BinarySHA256)
	m.Host = types.StringValue(res.Host)
	m.GoVersionExact = types.StringValue(res.GoVersion)
	m.BuildNumber = types.Int64Value(int64(res.Number))
	m.InputsHash = types.StringValue(res.InputsHash)
	m.DurationSeconds = types.Int64Value(int64(res.Finished.Sub(res.Started).Round(time.Second) / time.Second))
	m.LogTail = types.StringValue(res.LogTail)
	return m
}

// Update has nothing to change: every input replaces the build.
func (r *buildResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan buildModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(resp.State.Set(ctx, plan)...)
}

// Read checks the output is still in the registry: one HEAD. Gone, the build
// is gone, and the next plan builds again.
func (r *buildResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var state buildModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	farm := buildFarm(r.clients, state.ControlNamespace.ValueString(), true, &resp.Diagnostics)
	if resp.Diagnostics.HasError() {
		return
	}
	ok, err := farm.Exists(ctx, state.ImageRef.ValueString())
	if err != nil {
		resp.Diagnostics.AddError("Could not check the build's output in the registry", err.Error())
		return
	}
	if !ok {
		resp.State.RemoveResource(ctx)
	}
}

// Delete forgets the build: its record and its output stay.
func (r *buildResource) Delete(context.Context, resource.DeleteRequest, *resource.DeleteResponse) {}

// sourceBlock is the source of a build or a test suite: a git repository at
// a ref resolved at plan time, or a directory.
func sourceBlock() schema.SingleNestedBlock {
	return schema.SingleNestedBlock{
		MarkdownDescription: "Where the source comes from: `git`, or `path`.",
		Validators:          []validator.Object{objectvalidator.IsRequired()},
		PlanModifiers:       []planmodifier.Object{objectplanmodifier.RequiresReplace()},
		Attributes: map[string]schema.Attribute{
			"path": schema.StringAttribute{
				MarkdownDescription: "A directory on the machine running Terraform, content-hashed at plan time " +
					"(`.git` left out). Its files are built with `SOURCE_DATE_EPOCH=0`. Conflicts with `git`.",
				Optional: true, PlanModifiers: replaceString,
				Validators: []validator.String{stringvalidator.ExactlyOneOf(path.MatchRoot("source").AtName("git"))},
			},
		},
		Blocks: map[string]schema.Block{
			"git": schema.SingleNestedBlock{
				MarkdownDescription: "A git repository, read by Kiln with go-git (no git on either machine).",
				PlanModifiers:       []planmodifier.Object{objectplanmodifier.RequiresReplace()},
				Attributes: map[string]schema.Attribute{
					"url": schema.StringAttribute{
						MarkdownDescription: "Repository URL: `https://`, `http://` or `ssh://`.",
						Optional:            true, PlanModifiers: replaceString,
						Validators: []validator.String{stringvalidator.LengthAtLeast(1)},
					},
					"ref": schema.StringAttribute{
						MarkdownDescription: "Branch, tag, full ref name or full commit hash; resolved to `commit` at plan time.",
						Optional:            true, PlanModifiers: replaceString,
						Validators: []validator.String{stringvalidator.LengthAtLeast(1)},
					},
					"username": schema.StringAttribute{
						MarkdownDescription: "HTTP(S) basic-auth user (any name with a forge's access token).",
						Optional:            true,
					},
					"password": schema.StringAttribute{
						MarkdownDescription: "HTTP(S) password or access token; kept in state as a sensitive value. " +
							"Prefer `password_wo`.",
						Optional: true, Sensitive: true,
						Validators: []validator.String{stringvalidator.ConflictsWith(path.MatchRelative().AtParent().AtName("password_wo"))},
					},
					"password_wo": schema.StringAttribute{
						MarkdownDescription: "HTTP(S) password or access token that Terraform keeps in neither plan nor " +
							"state (write-only: OpenTofu, or Terraform 1.11 and later).",
						Optional: true, Sensitive: true, WriteOnly: true,
					},
					"ssh_private_key": schema.StringAttribute{
						MarkdownDescription: "For an `ssh://` URL: the private key (PEM or OpenSSH).",
						Optional:            true, Sensitive: true,
					},
					"ssh_host_key": schema.StringAttribute{
						MarkdownDescription: "For an `ssh://` URL: the server's host key, authorized_keys format (pinned).",
						Optional:            true,
					},
				},
			},
		},
	}
}
