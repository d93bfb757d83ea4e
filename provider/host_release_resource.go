package provider

import (
	"context"
	"errors"
	"fmt"
	"net"
	"regexp"
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
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/int64default"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringdefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/tfsdk"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/kilnhq/terraform-provider-kiln/internal/buildfarm"
	"github.com/kilnhq/terraform-provider-kiln/internal/delivery"
	"github.com/kilnhq/terraform-provider-kiln/internal/hostrelease"
	"github.com/kilnhq/terraform-provider-kiln/internal/signature"
)

var (
	_ resource.ResourceWithConfigure      = (*hostReleaseResource)(nil)
	_ resource.ResourceWithImportState    = (*hostReleaseResource)(nil)
	_ resource.ResourceWithModifyPlan     = (*hostReleaseResource)(nil)
	_ resource.ResourceWithValidateConfig = (*hostReleaseResource)(nil)
)

func newHostReleaseResource() resource.Resource { return &hostReleaseResource{} }

type hostReleaseResource struct {
	clients *clients
}

const (
	defaultHostReleaseTimeout       = 20 * time.Minute
	defaultHostReleaseDeleteTimeout = 5 * time.Minute
)

func (r *hostReleaseResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_host_release"
}

func (r *hostReleaseResource) Schema(ctx context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	positive := []validator.Int64{int64validator.AtLeast(1)}
	port := []validator.Int64{int64validator.Between(1, 65535)}
	resp.Schema = schema.Schema{
		MarkdownDescription: "A service released to hosts as a systemd unit: the binary of `artifact` (an executable " +
			"file, fetched by the machine running Terraform from a URL or a registry and checked against its SHA-256, " +
			"and its OpenPGP signature when one is given, before any host receives it; each host checks the digest " +
			"again) is staged under `<install_dir>/releases/<version>-<digest12>/` with the unit and the config files, the `current` symlink is switched atomically, the unit is reloaded, enabled and " +
			"restarted, and the release must pass its health check, probed on the host itself. A release that fails it " +
			"is switched back to the previous release, restarted and checked again, and the apply fails with the host, " +
			"the check's failure and the last " + strconv.Itoa(hostrelease.JournalLines) + " lines of the unit's journal. " +
			"Hosts go in batches (`rollout`); the next batch does not start after a failed one.\n\n" +
			"`terraform plan` is the dry run: it shows, per host, the release it runs and the release it will run. " +
			"A refresh reads every host in one SSH round trip: a replaced binary, a stopped or disabled unit, an edited " +
			"unit, environment or config file, a switched `current` symlink, an active unit that fails one probe of its " +
			"`health_check` and a missing data directory show as `drift` and plan a repair; a host " +
			"that already runs the release as configured is left alone (not restarted).\n\n" +
			"Destroy stops and disables the unit and removes what Kiln installed: the unit, the config files it wrote " +
			"and the install directory; the `data_dirs` it created only with `remove_data_on_destroy`. The service " +
			"user is kept, as is anything else outside the install directory the service wrote. Kiln never releases into, or removes, an install directory it did not create. " +
			"The hosts are `host` blocks, or the hosts of a `kiln_build_pool` chosen by `pool_labels`.\n\n" +
			"Import with `<name>,<user>@<host>:<port>[,...]` (`host` blocks, the hosts in order, the default " +
			"`install_dir`); the host key then comes from the provider's `ssh.known_hosts_file`.",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{
				MarkdownDescription: "The service name.",
				Computed:            true,
				PlanModifiers:       []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"name": schema.StringAttribute{
				MarkdownDescription: "The service: its unit is `<name>.service`, its binary `<install_dir>/current/<name>`. " +
					"Lower-case letters, digits, `-` and `_`. Changing it means a new service.",
				Required:      true,
				PlanModifiers: []planmodifier.String{stringplanmodifier.RequiresReplace()},
				Validators:    []validator.String{stringCheck{"must be a service name", hostrelease.CheckName}},
			},
			"install_dir": schema.StringAttribute{
				MarkdownDescription: "Where the releases live (`releases/`, the `current` and `previous` symlinks, the " +
					"secret environment file). Defaults to `/opt/kiln/<name>`. Changing it means a new service.",
				Optional:      true,
				Computed:      true,
				PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown(), stringplanmodifier.RequiresReplace()},
				Validators:    []validator.String{cleanAbsolutePath},
			},
			"keep_releases": schema.Int64Attribute{
				MarkdownDescription: "How many releases each host keeps; older ones are removed after a successful release. " +
					"The current and the previous release are always kept. Defaults to `5`.",
				Optional:   true,
				Computed:   true,
				Default:    int64default.StaticInt64(hostrelease.DefaultKeepReleases),
				Validators: positive,
			},
			"rollback_on_failure": schema.BoolAttribute{
				MarkdownDescription: "Switch a host whose release fails its health check back to the previous release. " +
					"Defaults to `true`.",
				Optional: true,
				Computed: true,
				Default:  booldefault.StaticBool(true),
			},
			"pool_labels": schema.MapAttribute{
				MarkdownDescription: "Release to the hosts of every `kiln_build_pool` whose labels include all of these " +
					"(pools in name order, each host once), instead of `host` blocks: at the address and with the host " +
					"key the pool's record in `control_namespace` pins (only a record Kiln wrote counts). Kiln logs in " +
					"as the provider's `ssh` block says (`user`, `private_key` or `use_agent`), a user with " +
					"passwordless sudo, as for `kiln_build_pool`'s own `host` blocks: never as the pool's build user, " +
					"which has no sudo and so cannot install a unit. Requires the provider's `kubernetes` block. Each " +
					"refresh reads the pool again: a host that joined it plans a release to it; one that left keeps " +
					"what it runs.",
				ElementType: types.StringType,
				Optional:    true,
				Validators:  []validator.Map{mapvalidator.SizeAtLeast(1)},
			},
			"control_namespace": schema.StringAttribute{
				MarkdownDescription: "With `pool_labels`: the control namespace the pools' records are read from " +
					"(`kiln_build_pool.<name>.control_namespace`), and nowhere else. Defaults to `" +
					delivery.DefaultControlNamespace + "`. Changing it releases to the pools found there; it " +
					"replaces nothing.",
				Optional:   true,
				Computed:   true,
				Default:    stringdefault.StaticString(delivery.DefaultControlNamespace),
				Validators: dnsLabelValidators,
			},
			"pool_hosts": schema.ListNestedAttribute{
				MarkdownDescription: "With `pool_labels`: the pool's hosts as found, like the computed part of a " +
					"`host` block; null with `host` blocks.",
				Computed:     true,
				NestedObject: schema.NestedAttributeObject{Attributes: hostStatusAttributes()},
			},
			"config_files": schema.MapAttribute{
				MarkdownDescription: "Config files installed with each release: absolute path → content. Mode `0640`, " +
					"owned by root, group `systemd.user`. A rollback restores the previous release's files.",
				ElementType: types.StringType,
				Optional:    true,
				Validators:  []validator.Map{mapvalidator.KeysAre(stringCheck{"must be a clean absolute path", hostrelease.CheckFilePath})},
			},
			"data_dirs": schema.ListAttribute{
				MarkdownDescription: "Directories the service keeps its data in (absolute, outside `install_dir`): each " +
					"release creates those missing, mode `0750`, owned by `systemd.user`, before the service starts; a " +
					"directory that already exists is used as it is. A refresh shows one that is gone, and the plan " +
					"creates it again. Destroy keeps them unless `remove_data_on_destroy` is set.",
				ElementType: types.StringType,
				Optional:    true,
				Validators:  []validator.List{listvalidator.UniqueValues()},
			},
			"remove_data_on_destroy": schema.BoolAttribute{
				MarkdownDescription: "Destroy removes the `data_dirs` Kiln created (never one that existed before Kiln " +
					"first released the service). Defaults to `false`: the data outlives the service.",
				Optional: true,
				Computed: true,
				Default:  booldefault.StaticBool(false),
			},
			"config_files_sensitive": schema.MapAttribute{
				MarkdownDescription: "Like `config_files`, for contents that are secret: never shown in plans, logs or errors " +
					"(kept in state as sensitive values).",
				ElementType: types.StringType,
				Optional:    true,
				Sensitive:   true,
				Validators:  []validator.Map{mapvalidator.KeysAre(stringCheck{"must be a clean absolute path", hostrelease.CheckFilePath})},
			},
		},
		Blocks: map[string]schema.Block{
			"artifact": schema.SingleNestedBlock{
				MarkdownDescription: "The service's executable, from exactly one source: `url` or `oci_ref`. The machine " +
					"running Terraform fetches it and checks its SHA-256 and, when `public_key` is set, its detached " +
					"OpenPGP signature before any host receives it. A new `version` or `sha256` is a new release.",
				Validators: []validator.Object{objectvalidator.IsRequired()},
				Attributes: map[string]schema.Attribute{
					"version": schema.StringAttribute{
						MarkdownDescription: "The release's version, the first part of its directory name " +
							"`<version>-<digest12>`: letters, digits, `.`, `_`, `+`, `-`.",
						Required:   true,
						Validators: []validator.String{stringCheck{"must be a version", hostrelease.CheckVersion}},
					},
					"url": schema.StringAttribute{
						MarkdownDescription: "Where the machine running Terraform downloads the executable (`http` or " +
							"`https`); hosts never need to reach it, the binary goes to them over SSH.",
						Optional:   true,
						Validators: []validator.String{stringvalidator.RegexMatches(urlScheme, "must be an http or https URL")},
					},
					"oci_ref": schema.StringAttribute{
						MarkdownDescription: "The executable in an OCI registry, pinned by digest (`<repository>@sha256:…`): " +
							"its blob, whose digest is `sha256` (a `kiln_build` artifact file's `ref`, " +
							"`kiln_build.x.artifact_files[\"dist/app\"].ref`), or an OCI artifact's manifest " +
							"(`kiln_build.x.image_ref` of a script build), whose file with digest `sha256` is the " +
							"executable; the manifest is checked against its digest before its file is fetched. " +
							"Fetched with the provider's `registry` credentials when it is on that registry, anonymously " +
							"otherwise. Its digest must be `sha256`.",
						Optional:   true,
						Validators: []validator.String{stringCheck{"must be a reference pinned by digest", hostrelease.CheckOCIRef}},
					},
					"sha256": schema.StringAttribute{
						MarkdownDescription: "The executable's SHA-256 (hex, optionally after `sha256:`). A download " +
							"with another digest is refused before any host changes.",
						Required:   true,
						Validators: []validator.String{stringCheck{"must be a SHA-256 digest", hostrelease.CheckSHA256}},
					},
					"signature": schema.StringAttribute{
						MarkdownDescription: "The executable's detached OpenPGP signature, armored " +
							"(`-----BEGIN PGP SIGNATURE-----`). Needs `public_key`; conflicts with `signature_url`.",
						Optional:   true,
						Validators: []validator.String{stringCheck{"must be an armored OpenPGP signature", signature.CheckArmored}},
					},
					"signature_url": schema.StringAttribute{
						MarkdownDescription: "Where the machine running Terraform downloads the executable's detached " +
							"OpenPGP signature (`http` or `https`; armored or binary, e.g. `<url>.asc`). Needs `public_key`.",
						Optional:   true,
						Validators: []validator.String{stringvalidator.RegexMatches(urlScheme, "must be an http or https URL")},
					},
					"public_key": schema.StringAttribute{
						MarkdownDescription: "The signer's OpenPGP public key, armored (`-----BEGIN PGP PUBLIC KEY " +
							"BLOCK-----`), one key. With it, every apply that releases checks the signature (`signature` " +
							"or `signature_url`) against the fetched executable, judging the key at the signature's time; " +
							"a signature that does not verify fails the apply before any host changes.",
						Optional:   true,
						Validators: []validator.String{stringCheck{"must be one armored OpenPGP public key", hostrelease.CheckPublicKey}},
					},
					"signer_fingerprint": schema.StringAttribute{
						MarkdownDescription: "The fingerprint of `public_key`'s primary key (upper-case hex), the signer " +
							"every release is verified against; null for an unsigned artifact.",
						Computed: true,
					},
				},
			},
			"systemd": schema.SingleNestedBlock{
				MarkdownDescription: "The unit `/etc/systemd/system/<name>.service` (`Restart=on-failure`).",
				Attributes: map[string]schema.Attribute{
					"exec_start": schema.StringAttribute{
						MarkdownDescription: "The command line (`ExecStart=`; systemd's `%` specifiers and `$VAR` " +
							"apply). Defaults to the binary, `<install_dir>/current/<name>`.",
						Optional: true,
					},
					"user": schema.StringAttribute{
						MarkdownDescription: "The user the service runs as, a system user (no login, no home) created " +
							"where missing and kept on destroy. Defaults to root.",
						Optional:   true,
						Validators: []validator.String{stringCheck{"must be a system user name", hostrelease.CheckUser}},
					},
					"environment": schema.MapAttribute{
						MarkdownDescription: "Environment variables (`Environment=` lines of the unit, readable by " +
							"anyone on the host).",
						ElementType: types.StringType,
						Optional:    true,
						Validators:  []validator.Map{mapvalidator.KeysAre(stringCheck{"must be an environment variable name", hostrelease.CheckEnvName})},
					},
					"environment_sensitive": schema.MapAttribute{
						MarkdownDescription: "Secret environment variables, write-only: written to a root-only " +
							"`EnvironmentFile=` (`<install_dir>/<name>.env`) whenever Kiln releases, never stored in " +
							"the plan or state. A new value alone plans nothing: change `environment_sensitive_version` " +
							"with it. Needs Terraform or OpenTofu 1.11 or later.",
						ElementType: types.StringType,
						Optional:    true,
						Sensitive:   true,
						WriteOnly:   true,
						Validators: []validator.Map{
							mapvalidator.KeysAre(stringCheck{"must be an environment variable name", hostrelease.CheckEnvName}),
							mapvalidator.AlsoRequires(path.MatchRelative().AtParent().AtName("environment_sensitive_version")),
						},
					},
					"environment_sensitive_version": schema.Int64Attribute{
						MarkdownDescription: "Version of `environment_sensitive`: change it to release new secret values.",
						Optional:            true,
						Validators: []validator.Int64{int64validator.AlsoRequires(
							path.MatchRelative().AtParent().AtName("environment_sensitive"))},
					},
					"working_directory": schema.StringAttribute{
						MarkdownDescription: "`WorkingDirectory=`. Defaults to `<install_dir>/current`.",
						Optional:            true,
						Validators:          []validator.String{cleanAbsolutePath},
					},
				},
				Blocks: map[string]schema.Block{
					"limits": schema.SingleNestedBlock{
						MarkdownDescription: "Resource controls of the unit (the cgroup v2 controls `kiln_go_host` " +
							"prepares hosts for).",
						Attributes: map[string]schema.Attribute{
							"nofile": schema.Int64Attribute{
								MarkdownDescription: "`LimitNOFILE=`: open files.",
								Optional:            true,
								Validators:          positive,
							},
							"memory_max": schema.StringAttribute{
								MarkdownDescription: "`MemoryMax=`: bytes with an optional `K`, `M`, `G` or `T` suffix, " +
									"a percentage, or `infinity`.",
								Optional: true,
								Validators: []validator.String{stringvalidator.RegexMatches(memoryMax,
									"must be bytes with an optional K, M, G or T suffix, a percentage, or infinity")},
							},
							"cpu_quota": schema.StringAttribute{
								MarkdownDescription: "`CPUQuota=`: a percentage of one CPU, e.g. `150%`.",
								Optional:            true,
								Validators:          []validator.String{stringvalidator.RegexMatches(cpuQuota, "must be a percentage such as 150%")},
							},
						},
					},
				},
			},
			"health_check": schema.SingleNestedBlock{
				MarkdownDescription: "How a release proves it works, probed on the host (`127.0.0.1`) with bash alone: " +
					"after `start_period`, a probe every `interval`, each within `timeout`; `healthy_threshold` passes " +
					"in a row make the release healthy, `unhealthy_threshold` failures in a row make it fail. " +
					"Exactly one of `http` and `tcp`.",
				Validators: []validator.Object{objectvalidator.IsRequired()},
				Attributes: map[string]schema.Attribute{
					"interval":     durationAttribute("Time between probes.", "2s"),
					"timeout":      durationAttribute("How long one probe may take.", "2s"),
					"start_period": durationAttribute("How long after the restart the first probe waits.", "1s"),
					"healthy_threshold": schema.Int64Attribute{
						MarkdownDescription: "Passing probes in a row that make the release healthy. Defaults to `2`.",
						Optional:            true, Computed: true, Default: int64default.StaticInt64(2),
						Validators: []validator.Int64{int64validator.Between(1, 10)},
					},
					"unhealthy_threshold": schema.Int64Attribute{
						MarkdownDescription: "Failing probes in a row that fail the release. Defaults to `3`.",
						Optional:            true, Computed: true, Default: int64default.StaticInt64(3),
						Validators: []validator.Int64{int64validator.Between(1, 10)},
					},
				},
				Blocks: map[string]schema.Block{
					"http": schema.SingleNestedBlock{
						MarkdownDescription: "An HTTP GET of `path` on `127.0.0.1:port`.",
						Attributes: map[string]schema.Attribute{
							"port": schema.Int64Attribute{MarkdownDescription: "The port.", Optional: true, Validators: port},
							"path": schema.StringAttribute{
								MarkdownDescription: "The path. Defaults to `/`.",
								Optional:            true, Computed: true, Default: stringdefault.StaticString("/"),
								Validators: []validator.String{stringvalidator.RegexMatches(httpPath, "must start with / and hold no spaces")},
							},
							"expect_status": schema.Int64Attribute{
								MarkdownDescription: "The status a healthy answer has. Defaults to `200`.",
								Optional:            true, Computed: true, Default: int64default.StaticInt64(200),
								Validators: []validator.Int64{int64validator.Between(100, 599)},
							},
							"expect_body": schema.StringAttribute{
								MarkdownDescription: "Text a healthy answer's body contains.",
								Optional:            true,
							},
						},
					},
					"tcp": schema.SingleNestedBlock{
						MarkdownDescription: "A TCP connection to `127.0.0.1:port`.",
						Attributes: map[string]schema.Attribute{
							"port": schema.Int64Attribute{MarkdownDescription: "The port.", Optional: true, Validators: port},
						},
					},
				},
			},
			"rollout": schema.SingleNestedBlock{
				MarkdownDescription: "How hosts are paced. Without it, all hosts are released at once.",
				Attributes: map[string]schema.Attribute{
					"batch_size": schema.Int64Attribute{
						MarkdownDescription: "Hosts released at once, in the order of the `host` blocks (or of `pool_hosts`). Defaults to all.",
						Optional:            true,
						Validators:          positive,
					},
					"pause": durationAttribute("Wait between batches.", "0s"),
				},
			},
			"host": schema.ListNestedBlock{
				MarkdownDescription: "A host the service runs on: a Linux host with systemd and bash, reached as its " +
					"`ssh` block says (root, or a user with passwordless sudo). Give the hosts this way or by " +
					"`pool_labels`, not both.",
				Validators: []validator.List{listvalidator.SizeAtLeast(1)},
				NestedObject: schema.NestedBlockObject{
					Blocks:     map[string]schema.Block{"ssh": sshResourceBlock()},
					Attributes: hostStatusAttributes(),
				},
			},
			"timeouts": timeouts.Block(ctx, timeouts.Opts{Create: true, Update: true, Delete: true}),
		},
	}
}

// hostStatusAttributes are what a release finds on each host: the computed
// part of a host block, and of a pool_hosts element.
func hostStatusAttributes() map[string]schema.Attribute {
	return map[string]schema.Attribute{
		"address": schema.StringAttribute{
			MarkdownDescription: "`host:port`, as the host was reached.",
			Computed:            true,
		},
		"release": schema.StringAttribute{
			MarkdownDescription: "The release the host runs (`current` points to it): `<version>-<digest12>`.",
			Computed:            true,
		},
		"previous_release": schema.StringAttribute{
			MarkdownDescription: "The release before it, which a failed release rolls back to; empty " +
				"after a rollback or before a second release.",
			Computed: true,
		},
		"digest": schema.StringAttribute{
			MarkdownDescription: "The SHA-256 of the current binary as found on the host.",
			Computed:            true,
		},
		"active_state": schema.StringAttribute{
			MarkdownDescription: "The unit's `systemctl is-active` state, e.g. `active`, `failed`.",
			Computed:            true,
		},
		"enabled_state": schema.StringAttribute{
			MarkdownDescription: "The unit's `systemctl is-enabled` state, e.g. `enabled`, `disabled`.",
			Computed:            true,
		},
		"health": schema.StringAttribute{
			MarkdownDescription: "The verdict of one `health_check` probe at the last refresh: `healthy`, " +
				"or `unhealthy: <why>`. An active unit that is unhealthy is drift, and the plan restarts it; " +
				"empty when not probed (nothing released, or imported without a `health_check`).",
			Computed: true,
		},
		"drift": schema.ListAttribute{
			MarkdownDescription: "How the host differs from the release: empty when it runs it as " +
				"installed, active, enabled, healthy and with its data directories. Anything listed " +
				"plans a repair.",
			ElementType: types.StringType,
			Computed:    true,
		},
	}
}

var (
	urlScheme = regexp.MustCompile(`^https?://`)
	memoryMax = regexp.MustCompile(`^([0-9]+[KMGT]?|[0-9]+(\.[0-9]+)?%|infinity)$`)
	cpuQuota  = regexp.MustCompile(`^[0-9]+%$`)
	httpPath  = regexp.MustCompile(`^/[^\s]*$`)
)

func (r *hostReleaseResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	r.clients = configuredClients(req.ProviderData, &resp.Diagnostics)
}

// ValidateConfig asks for exactly one artifact source, a signature and a
// key together, and exactly one health check kind, with its port.
func (r *hostReleaseResource) ValidateConfig(ctx context.Context, req resource.ValidateConfigRequest, resp *resource.ValidateConfigResponse) {
	var a *hostReleaseArtifactModel
	resp.Diagnostics.Append(req.Config.GetAttribute(ctx, path.Root("artifact"), &a)...)
	if a != nil {
		validateArtifact(*a, &resp.Diagnostics)
	}
	validateDataDirs(ctx, req.Config, &resp.Diagnostics)
	validateHostSource(ctx, req.Config, &resp.Diagnostics)
	var h *hostReleaseHealthModel
	diags := req.Config.GetAttribute(ctx, path.Root("health_check"), &h)
	resp.Diagnostics.Append(diags...)
	if diags.HasError() || h == nil {
		return
	}
	at := path.Root("health_check")
	switch {
	case (h.HTTP == nil) == (h.TCP == nil):
		resp.Diagnostics.AddAttributeError(at, "Invalid health_check", "health_check needs exactly one of an http and a tcp block.")
	case h.HTTP != nil && h.HTTP.Port.IsNull():
		resp.Diagnostics.AddAttributeError(at.AtName("http").AtName("port"), "Missing health_check.http.port", "health_check.http needs a port.")
	case h.TCP != nil && h.TCP.Port.IsNull():
		resp.Diagnostics.AddAttributeError(at.AtName("tcp").AtName("port"), "Missing health_check.tcp.port", "health_check.tcp needs a port.")
	}
}

// validateHostSource asks for the hosts one way: host blocks or pool_labels.
func validateHostSource(ctx context.Context, config tfsdk.Config, diags *diag.Diagnostics) {
	var blocks types.List
	var labels types.Map
	diags.Append(config.GetAttribute(ctx, path.Root("host"), &blocks)...)
	diags.Append(config.GetAttribute(ctx, path.Root("pool_labels"), &labels)...)
	if diags.HasError() {
		return
	}
	hasBlocks := blocks.IsUnknown() || len(blocks.Elements()) > 0
	switch {
	case hasBlocks && !labels.IsNull():
		diags.AddAttributeError(path.Root("pool_labels"), "Invalid pool_labels",
			"pool_labels and host blocks conflict: give the hosts one way, host blocks or a build pool's labels.")
	case !hasBlocks && labels.IsNull():
		diags.AddAttributeError(path.Root("host"), "Missing hosts", "At least one host block, or pool_labels, is required.")
	}
}

// validateDataDirs checks each known data directory against the install dir
// (the default one when install_dir is not set).
func validateDataDirs(ctx context.Context, config tfsdk.Config, diags *diag.Diagnostics) {
	var name, installDir types.String
	var dirs types.List
	diags.Append(config.GetAttribute(ctx, path.Root("name"), &name)...)
	diags.Append(config.GetAttribute(ctx, path.Root("install_dir"), &installDir)...)
	diags.Append(config.GetAttribute(ctx, path.Root("data_dirs"), &dirs)...)
	if diags.HasError() || dirs.IsNull() || dirs.IsUnknown() || installDir.IsUnknown() || (installDir.IsNull() && name.IsUnknown()) {
		return
	}
	install := installDir.ValueString()
	if installDir.IsNull() {
		install = hostrelease.DefaultInstallDir(name.ValueString())
	}
	for i, v := range dirs.Elements() {
		d, ok := v.(types.String)
		if !ok || d.IsNull() || d.IsUnknown() {
			continue
		}
		if err := hostrelease.CheckDataDir(install, d.ValueString()); err != nil {
			diags.AddAttributeError(path.Root("data_dirs").AtListIndex(i), "Invalid data_dirs", "data_dirs: "+err.Error())
		}
	}
}

// validateArtifact checks what the artifact block's attributes cannot check
// alone; values not known yet are checked at apply.
func validateArtifact(a hostReleaseArtifactModel, diags *diag.Diagnostics) {
	at := path.Root("artifact")
	given := func(v types.String) bool { return !v.IsNull() }
	if given(a.URL) == given(a.OCIRef) {
		diags.AddAttributeError(at, "Invalid artifact", "artifact needs exactly one source: artifact.url or artifact.oci_ref.")
	}
	signed := given(a.Signature) || given(a.SignatureURL)
	switch {
	case given(a.Signature) && given(a.SignatureURL):
		diags.AddAttributeError(at.AtName("signature_url"), "Invalid artifact.signature_url",
			"artifact.signature and artifact.signature_url conflict: give the signature one way.")
	case signed && !given(a.PublicKey):
		diags.AddAttributeError(at.AtName("public_key"), "Missing artifact.public_key",
			"artifact.signature and artifact.signature_url need artifact.public_key, the signer's key.")
	case !signed && given(a.PublicKey):
		diags.AddAttributeError(at.AtName("public_key"), "Invalid artifact.public_key",
			"artifact.public_key needs artifact.signature or artifact.signature_url, the signature to check.")
	}
}

// ModifyPlan plans every host running the configured release, active,
// enabled and without drift: the plan shows, per host, which release it
// moves from and to, and a host that drifted is a change.
func (r *hostReleaseResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	if req.Plan.Raw.IsNull() {
		return
	}
	var plan hostReleaseModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if plan.InstallDir.IsUnknown() && !plan.Name.IsUnknown() {
		resp.Diagnostics.Append(resp.Plan.SetAttribute(ctx, path.Root("install_dir"), hostrelease.DefaultInstallDir(plan.Name.ValueString()))...)
	}
	var prior *hostReleaseModel
	if !req.State.Raw.IsNull() {
		prior = &hostReleaseModel{}
		resp.Diagnostics.Append(req.State.Get(ctx, prior)...)
	}
	if a := plan.Artifact; a != nil {
		resp.Diagnostics.Append(resp.Plan.SetAttribute(ctx, path.Root("artifact").AtName("signer_fingerprint"), signerFingerprint(a.PublicKey))...)
	}
	release, digest := types.StringUnknown(), types.StringUnknown()
	if a := plan.Artifact; a != nil && !a.Version.IsUnknown() && !a.SHA256.IsUnknown() && !a.Version.IsNull() && !a.SHA256.IsNull() {
		spec := plan.spec()
		release, digest = types.StringValue(spec.Artifact.Release()), types.StringValue(spec.Artifact.Digest())
	}
	if plan.fromPool() {
		r.planPoolHosts(ctx, plan, prior, release, digest, resp)
		return
	}
	resp.Diagnostics.Append(resp.Plan.SetAttribute(ctx, path.Root("pool_hosts"), types.ListNull(hostStatusType))...)
	for i := range plan.Hosts {
		at := path.Root("host").AtListIndex(i)
		set := func(name string, v attr.Value) {
			resp.Diagnostics.Append(resp.Plan.SetAttribute(ctx, at.AtName(name), v)...)
		}
		set("release", release)
		set("digest", digest)
		set("active_state", types.StringValue("active"))
		set("enabled_state", types.StringValue("enabled"))
		set("health", types.StringValue(hostrelease.Healthy))
		set("drift", stringList(nil))
		// A host that keeps its release keeps its previous one and its address.
		if prior != nil && i < len(prior.Hosts) && sameHost(prior.Hosts[i], plan.Hosts[i]) {
			p := prior.Hosts[i]
			set("address", p.Address)
			if p.Release.Equal(release) {
				set("previous_release", p.PreviousRelease)
			}
		}
	}
}

// planPoolHosts plans every host of the pool running the release, as a host
// block's computed part is planned. A pool that does not exist yet (created
// in the same apply) leaves pool_hosts unknown, with a warning.
func (r *hostReleaseResource) planPoolHosts(ctx context.Context, plan hostReleaseModel, prior *hostReleaseModel, release, digest types.String, resp *resource.ModifyPlanResponse) {
	if plan.PoolLabels.IsUnknown() || plan.ControlNamespace.IsUnknown() {
		return
	}
	hosts, err := r.poolHosts(ctx, plan, &resp.Diagnostics)
	var fe *buildfarm.FieldError
	switch {
	case errors.As(err, &fe):
		resp.Diagnostics.AddAttributeWarning(path.Root("pool_labels"), "No pool hosts yet",
			err.Error()+": checked again when the release runs (the pool may be created in this apply).")
		return
	case err != nil:
		resp.Diagnostics.AddError("Could not read the build pools", err.Error())
		return
	case hosts == nil:
		return
	}
	before := map[string]hostReleaseStatusModel{}
	if prior != nil {
		for _, p := range prior.statuses(ctx, &resp.Diagnostics) {
			before[p.Address.ValueString()] = p
		}
	}
	planned := make([]hostReleaseStatusModel, len(hosts))
	for i, h := range hosts {
		planned[i] = hostReleaseStatusModel{Address: types.StringValue(h.Addr), Release: release, PreviousRelease: types.StringUnknown(),
			Digest: digest, ActiveState: types.StringValue("active"), EnabledState: types.StringValue("enabled"),
			Health: types.StringValue(hostrelease.Healthy), Drift: stringList(nil)}
		if p, ok := before[h.Addr]; ok && p.Release.Equal(release) {
			planned[i].PreviousRelease = p.PreviousRelease
		}
	}
	list, diags := types.ListValueFrom(ctx, hostStatusType, planned)
	resp.Diagnostics.Append(diags...)
	resp.Diagnostics.Append(resp.Plan.SetAttribute(ctx, path.Root("pool_hosts"), list)...)
}

// poolHosts are the hosts of the pools with the model's pool_labels, from
// their records; nil without an error when the provider has no kubernetes
// block (diags says so).
func (r *hostReleaseResource) poolHosts(ctx context.Context, m hostReleaseModel, diags *diag.Diagnostics) ([]buildfarm.PoolHost, error) {
	farm := buildFarm(r.clients, m.ControlNamespace.ValueString(), false, diags)
	if farm == nil {
		return nil, nil
	}
	return farm.LabelledHosts(ctx, stringMap(m.PoolLabels))
}

// signerFingerprint is the fingerprint of a public_key attribute's key:
// unknown until the key is, null without one.
func signerFingerprint(key types.String) types.String {
	switch {
	case key.IsUnknown():
		return types.StringUnknown()
	case key.IsNull():
		return types.StringNull()
	}
	fp, err := hostrelease.SignerFingerprint(key.ValueString())
	if err != nil {
		return types.StringNull()
	}
	return types.StringValue(fp)
}

// sameHost is whether two host blocks name the same host.
func sameHost(a, b hostReleaseHostModel) bool {
	if a.Connection == nil || b.Connection == nil {
		return false
	}
	return a.Connection.Host.Equal(b.Connection.Host) && a.Connection.Port.Equal(b.Connection.Port)
}

// hosts resolves the hosts for the engine: the host blocks' ssh blocks, or
// the pool's hosts at their pinned addresses and host keys, logged in to as
// the provider's ssh block says.
func (r *hostReleaseResource) hosts(ctx context.Context, m hostReleaseModel, diags *diag.Diagnostics) []*hostrelease.Host {
	secrets := m.secrets()
	var out []*hostrelease.Host
	if m.fromPool() {
		pool, err := r.poolHosts(ctx, m, diags)
		if err != nil {
			addBuildError(diags, "Could not find the pool's hosts", err)
		}
		for _, h := range pool {
			host, port, err := net.SplitHostPort(h.Addr)
			n, perr := strconv.ParseInt(port, 10, 64)
			if err != nil || perr != nil {
				diags.AddAttributeError(path.Root("pool_labels"), "Invalid pool record", fmt.Sprintf("a pool host's address %q is not host:port", h.Addr))
				continue
			}
			t, err := sshTarget(r.clients.ssh, &hostConnectionModel{Host: types.StringValue(host), Port: types.Int64Value(n),
				HostKey: types.StringValue(h.HostKey)})
			if err != nil {
				diags.AddAttributeError(path.Root("pool_labels"), "Could not log in to a pool host", h.Addr+": "+err.Error())
				continue
			}
			t.Secrets = secrets
			out = append(out, &hostrelease.Host{Target: t})
		}
		return out
	}
	for i, h := range m.Hosts {
		t, err := sshTarget(r.clients.ssh, h.Connection.connection())
		if err != nil {
			diags.AddAttributeError(path.Root("host").AtListIndex(i).AtName("ssh"), "Invalid ssh block", err.Error())
			continue
		}
		t.Secrets = secrets
		out = append(out, &hostrelease.Host{Target: t})
	}
	return out
}

// writeOnly takes what plans never carry from config: the hosts'
// ssh.private_key_wo and systemd.environment_sensitive.
func (m *hostReleaseModel) writeOnly(ctx context.Context, config tfsdk.Config, diags *diag.Diagnostics) {
	for i := range m.Hosts {
		if m.Hosts[i].Connection != nil {
			diags.Append(config.GetAttribute(ctx, path.Root("host").AtListIndex(i).AtName("ssh").AtName("private_key_wo"),
				&m.Hosts[i].Connection.PrivateKeyWO)...)
		}
	}
	if m.Systemd != nil {
		diags.Append(config.GetAttribute(ctx, path.Root("systemd").AtName("environment_sensitive"), &m.Systemd.EnvironmentSensitive)...)
	}
}

// withoutWriteOnly clears what state never holds.
func (m hostReleaseModel) withoutWriteOnly() hostReleaseModel {
	hosts := make([]hostReleaseHostModel, len(m.Hosts))
	for i, h := range m.Hosts {
		if c := h.Connection; c != nil {
			conn := *c
			conn.PrivateKeyWO = types.StringNull()
			h.Connection = &conn
		}
		hosts[i] = h
	}
	m.Hosts = hosts
	if m.Systemd != nil {
		u := *m.Systemd
		u.EnvironmentSensitive = types.MapNull(types.StringType)
		m.Systemd = &u
	}
	return m
}

func (r *hostReleaseResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan hostReleaseModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	timeout, diags := plan.Timeouts.Create(ctx, defaultHostReleaseTimeout)
	resp.Diagnostics.Append(diags...)
	r.release(ctx, timeout, plan, req.Config, &resp.State, &resp.Diagnostics)
}

func (r *hostReleaseResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan hostReleaseModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	timeout, diags := plan.Timeouts.Update(ctx, defaultHostReleaseTimeout)
	resp.Diagnostics.Append(diags...)
	r.release(ctx, timeout, plan, req.Config, &resp.State, &resp.Diagnostics)
}

// release releases the planned service and records every host as found
// afterwards, also when the release failed: state then shows which hosts run
// which release.
func (r *hostReleaseResource) release(ctx context.Context, timeout time.Duration, m hostReleaseModel, config tfsdk.Config, state *tfsdk.State, diags *diag.Diagnostics) {
	m.writeOnly(ctx, config, diags)
	if diags.HasError() {
		return
	}
	hosts := r.hosts(ctx, m, diags)
	if diags.HasError() {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	spec := m.spec()
	engine := hostrelease.Engine{Log: kilnLog}
	if r.clients.registry != nil {
		engine.Registry = *r.clients.registry
	}
	results, err := engine.Release(ctx, hosts, spec)
	m.ID = m.Name
	statuses := m.statuses(ctx, diags)
	if m.fromPool() {
		statuses = make([]hostReleaseStatusModel, len(results))
	}
	for i, res := range results {
		h := &statuses[i]
		if res.ReadErr != nil {
			markUnread(h, res.Addr)
			continue
		}
		fillReleaseHost(h, res.Addr, res.State, m.InstallDir.ValueString(), spec.Artifact.Release(), spec.Artifact.Digest())
	}
	m.setStatuses(ctx, statuses, diags)
	if err != nil {
		diags.AddError("Could not release "+spec.Name, m.secrets().Text(err.Error()))
	}
	diags.Append(state.Set(ctx, m.withoutWriteOnly())...)
}

// markUnread records a host that could not be read: its drift makes the next
// plan release to it again.
func markUnread(h *hostReleaseStatusModel, addr string) {
	h.Address = types.StringValue(addr)
	for _, v := range []*types.String{&h.Release, &h.PreviousRelease, &h.Digest, &h.ActiveState, &h.EnabledState, &h.Health} {
		if v.IsUnknown() || v.IsNull() {
			*v = types.StringValue("")
		}
	}
	h.Drift = stringList([]string{"not read"})
}

// Read reads every host in one round trip each. An unreachable host keeps
// its recorded state, with a warning; so do all hosts when the pool's
// records cannot be read. With pool_labels, the pool's hosts are read again:
// a host that joined it shows as not released.
func (r *hostReleaseResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var m hostReleaseModel
	resp.Diagnostics.Append(req.State.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	var hostDiags diag.Diagnostics
	hosts := r.hosts(ctx, m, &hostDiags)
	if hostDiags.HasError() {
		if !m.fromPool() {
			resp.Diagnostics.Append(hostDiags...)
			return
		}
		for _, d := range hostDiags.Errors() {
			resp.Diagnostics.AddWarning("Could not read the pool's hosts", "The recorded hosts are kept: "+d.Summary()+": "+d.Detail())
		}
		return
	}
	spec := m.spec()
	engine := hostrelease.Engine{Log: kilnLog}
	results := engine.Read(ctx, hosts, spec)
	hostrelease.Close(hosts)
	prior := m.statuses(ctx, &resp.Diagnostics)
	byAddr := map[string]hostReleaseStatusModel{}
	for _, p := range prior {
		byAddr[p.Address.ValueString()] = p
	}
	statuses := make([]hostReleaseStatusModel, len(results))
	for i, res := range results {
		if m.fromPool() {
			statuses[i] = byAddr[res.Addr]
		} else {
			statuses[i] = prior[i]
		}
		if res.ReadErr != nil {
			resp.Diagnostics.AddWarning("Could not read a host of "+spec.Name,
				fmt.Sprintf("%s keeps its recorded state: %s", res.Addr, m.secrets().Text(res.ReadErr.Error())))
			if statuses[i].Address.IsNull() {
				markUnread(&statuses[i], res.Addr)
			}
			continue
		}
		release, digest := spec.Artifact.Release(), spec.Artifact.Digest()
		if m.Artifact == nil { // imported: judged against what the host runs
			release, digest = res.State.Current, res.State.BinarySHA256
		}
		fillReleaseHost(&statuses[i], res.Addr, res.State, m.InstallDir.ValueString(), release, digest)
	}
	m.setStatuses(ctx, statuses, &resp.Diagnostics)
	resp.Diagnostics.Append(resp.State.Set(ctx, m)...)
}

func (r *hostReleaseResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var m hostReleaseModel
	resp.Diagnostics.Append(req.State.Get(ctx, &m)...)
	timeout, diags := m.Timeouts.Delete(ctx, defaultHostReleaseDeleteTimeout)
	resp.Diagnostics.Append(diags...)
	hosts := r.hosts(ctx, m, &resp.Diagnostics)
	if resp.Diagnostics.HasError() {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	engine := hostrelease.Engine{Log: kilnLog}
	if err := engine.Remove(ctx, hosts, m.spec()); err != nil {
		resp.Diagnostics.AddError("Could not remove "+m.Name.ValueString(), m.secrets().Text(err.Error()))
	}
}

// ImportState takes `<name>,<user>@<host>:<port>[,...]`.
func (r *hostReleaseResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	parts := strings.Split(req.ID, ",")
	bad := func(why string) {
		resp.Diagnostics.AddError("Invalid import ID",
			fmt.Sprintf("Import a host release as <name>,<user>@<host>:<port>[,<user>@<host>:<port>...]; %s in %q.", why, req.ID))
	}
	if len(parts) < 2 || hostrelease.CheckName(parts[0]) != nil {
		bad("a service name and at least one host are needed")
		return
	}
	var hosts []hostReleaseHostModel
	for _, p := range parts[1:] {
		user, addr, ok := strings.Cut(p, "@")
		host, portText, err := net.SplitHostPort(addr)
		port, perr := strconv.ParseInt(portText, 10, 64)
		if !ok || user == "" || err != nil || perr != nil {
			bad(fmt.Sprintf("%q is not <user>@<host>:<port>", p))
			return
		}
		conn := &resourceConnectionModel{hostConnectionModel: hostConnectionModel{
			Host: types.StringValue(host), Port: types.Int64Value(port), User: types.StringValue(user),
			PrivateKey: types.StringNull(), UseAgent: types.BoolNull(), HostKey: types.StringNull(), KnownHostsFile: types.StringNull(),
		}, PrivateKeyWO: types.StringNull()}
		hosts = append(hosts, hostReleaseHostModel{Connection: conn, hostReleaseStatusModel: hostReleaseStatusModel{Drift: types.ListNull(types.StringType)}})
	}
	name := parts[0]
	m := hostReleaseModel{
		ID: types.StringValue(name), Name: types.StringValue(name), InstallDir: types.StringValue(hostrelease.DefaultInstallDir(name)),
		KeepReleases: types.Int64Value(hostrelease.DefaultKeepReleases), RollbackOnFailure: types.BoolValue(true),
		ConfigFiles: types.MapNull(types.StringType), ConfigFilesSensitive: types.MapNull(types.StringType), Hosts: hosts,
		DataDirs: types.ListNull(types.StringType), RemoveDataOnDestroy: types.BoolValue(false),
		PoolLabels: types.MapNull(types.StringType), ControlNamespace: types.StringValue(delivery.DefaultControlNamespace),
		PoolHosts: types.ListNull(hostStatusType),
		Timeouts: timeouts.Value{Object: types.ObjectNull(map[string]attr.Type{
			"create": types.StringType, "update": types.StringType, "delete": types.StringType})},
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, m)...)
}
