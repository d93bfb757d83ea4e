package provider

// The host_release model and its conversion to the engine's types.

import (
	"context"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-timeouts/resource/timeouts"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/kilnhq/terraform-provider-kiln/internal/hostrelease"
	"github.com/kilnhq/terraform-provider-kiln/internal/redact"
)

type hostReleaseModel struct {
	ID                   types.String              `tfsdk:"id"`
	Name                 types.String              `tfsdk:"name"`
	InstallDir           types.String              `tfsdk:"install_dir"`
	KeepReleases         types.Int64               `tfsdk:"keep_releases"`
	RollbackOnFailure    types.Bool                `tfsdk:"rollback_on_failure"`
	ConfigFiles          types.Map                 `tfsdk:"config_files"`
	ConfigFilesSensitive types.Map                 `tfsdk:"config_files_sensitive"`
	DataDirs             types.List                `tfsdk:"data_dirs"`
	RemoveDataOnDestroy  types.Bool                `tfsdk:"remove_data_on_destroy"`
	Artifact             *hostReleaseArtifactModel `tfsdk:"artifact"`
	Systemd              *hostReleaseSystemdModel  `tfsdk:"systemd"`
	HealthCheck          *hostReleaseHealthModel   `tfsdk:"health_check"`
	Rollout              *hostReleaseRolloutModel  `tfsdk:"rollout"`
	Hosts                []hostReleaseHostModel    `tfsdk:"host"`
	PoolLabels           types.Map                 `tfsdk:"pool_labels"`
	ControlNamespace     types.String              `tfsdk:"control_namespace"`
	PoolHosts            types.List                `tfsdk:"pool_hosts"`
	Timeouts             timeouts.Value            `tfsdk:"timeouts"`
}

type hostReleaseArtifactModel struct {
	Version           types.String `tfsdk:"version"`
	URL               types.String `tfsdk:"url"`
	OCIRef            types.String `tfsdk:"oci_ref"`
	SHA256            types.String `tfsdk:"sha256"`
	Signature         types.String `tfsdk:"signature"`
	SignatureURL      types.String `tfsdk:"signature_url"`
	PublicKey         types.String `tfsdk:"public_key"`
	SignerFingerprint types.String `tfsdk:"signer_fingerprint"`
}

type hostReleaseSystemdModel struct {
	ExecStart                   types.String            `tfsdk:"exec_start"`
	User                        types.String            `tfsdk:"user"`
	Environment                 types.Map               `tfsdk:"environment"`
	EnvironmentSensitive        types.Map               `tfsdk:"environment_sensitive"`
	EnvironmentSensitiveVersion types.Int64             `tfsdk:"environment_sensitive_version"`
	WorkingDirectory            types.String            `tfsdk:"working_directory"`
	Limits                      *hostReleaseLimitsModel `tfsdk:"limits"`
}

type hostReleaseLimitsModel struct {
	NOFILE    types.Int64  `tfsdk:"nofile"`
	MemoryMax types.String `tfsdk:"memory_max"`
	CPUQuota  types.String `tfsdk:"cpu_quota"`
}

type hostReleaseHealthModel struct {
	HTTP               *hostReleaseHTTPModel `tfsdk:"http"`
	TCP                *hostReleaseTCPModel  `tfsdk:"tcp"`
	Interval           goDuration            `tfsdk:"interval"`
	Timeout            goDuration            `tfsdk:"timeout"`
	StartPeriod        goDuration            `tfsdk:"start_period"`
	HealthyThreshold   types.Int64           `tfsdk:"healthy_threshold"`
	UnhealthyThreshold types.Int64           `tfsdk:"unhealthy_threshold"`
}

type hostReleaseHTTPModel struct {
	Port         types.Int64  `tfsdk:"port"`
	Path         types.String `tfsdk:"path"`
	ExpectStatus types.Int64  `tfsdk:"expect_status"`
	ExpectBody   types.String `tfsdk:"expect_body"`
}

type hostReleaseTCPModel struct {
	Port types.Int64 `tfsdk:"port"`
}

type hostReleaseRolloutModel struct {
	BatchSize types.Int64 `tfsdk:"batch_size"`
	Pause     goDuration  `tfsdk:"pause"`
}

type hostReleaseHostModel struct {
	Connection *resourceConnectionModel `tfsdk:"ssh"`
	hostReleaseStatusModel
}

// hostReleaseStatusModel is a host as the release found it: the computed
// part of a host block, and an element of pool_hosts.
type hostReleaseStatusModel struct {
	Address         types.String `tfsdk:"address"`
	Release         types.String `tfsdk:"release"`
	PreviousRelease types.String `tfsdk:"previous_release"`
	Digest          types.String `tfsdk:"digest"`
	ActiveState     types.String `tfsdk:"active_state"`
	EnabledState    types.String `tfsdk:"enabled_state"`
	Health          types.String `tfsdk:"health"`
	Drift           types.List   `tfsdk:"drift"`
}

// hostStatusType is the type of a pool_hosts element.
var hostStatusType = types.ObjectType{AttrTypes: map[string]attr.Type{
	"address": types.StringType, "release": types.StringType, "previous_release": types.StringType,
	"digest": types.StringType, "active_state": types.StringType, "enabled_state": types.StringType,
	"health": types.StringType, "drift": types.ListType{ElemType: types.StringType},
}}

// fromPool is whether the hosts are a build pool's, chosen by pool_labels.
func (m hostReleaseModel) fromPool() bool { return !m.PoolLabels.IsNull() }

// statuses are the hosts as recorded: the host blocks' computed part, or
// pool_hosts (none while unknown).
func (m hostReleaseModel) statuses(ctx context.Context, diags *diag.Diagnostics) []hostReleaseStatusModel {
	if !m.fromPool() {
		out := make([]hostReleaseStatusModel, len(m.Hosts))
		for i, h := range m.Hosts {
			out[i] = h.hostReleaseStatusModel
		}
		return out
	}
	var out []hostReleaseStatusModel
	if !m.PoolHosts.IsNull() && !m.PoolHosts.IsUnknown() {
		diags.Append(m.PoolHosts.ElementsAs(ctx, &out, false)...)
	}
	return out
}

// setStatuses records the hosts: into the host blocks, or as pool_hosts.
func (m *hostReleaseModel) setStatuses(ctx context.Context, statuses []hostReleaseStatusModel, diags *diag.Diagnostics) {
	if !m.fromPool() {
		for i := range m.Hosts {
			m.Hosts[i].hostReleaseStatusModel = statuses[i]
		}
		m.PoolHosts = types.ListNull(hostStatusType)
		return
	}
	list, d := types.ListValueFrom(ctx, hostStatusType, statuses)
	diags.Append(d...)
	m.PoolHosts = list
	if m.Hosts == nil {
		m.Hosts = []hostReleaseHostModel{} // no host blocks, as configured
	}
}

// secrets are what the release's errors and logs must hide: the secret
// environment, the sensitive config files and the hosts' keys.
func (m hostReleaseModel) secrets() redact.Secrets {
	var s redact.Secrets
	if m.Systemd != nil {
		for _, v := range stringMap(m.Systemd.EnvironmentSensitive) {
			s.Add(v)
		}
	}
	for _, v := range stringMap(m.ConfigFilesSensitive) {
		s.Add(v)
	}
	for _, h := range m.Hosts {
		if c := h.Connection.connection(); c != nil {
			s.Add(c.PrivateKey.ValueString())
		}
	}
	return s
}

// spec is the engine's form of the model. A model without an artifact (an
// import, before its first apply) gives an empty artifact.
func (m hostReleaseModel) spec() hostrelease.Spec {
	s := hostrelease.Spec{
		Name: m.Name.ValueString(), InstallDir: m.InstallDir.ValueString(), KeepReleases: int(m.KeepReleases.ValueInt64()),
		RollbackOnFailure: m.RollbackOnFailure.ValueBool(),
		ConfigFiles:       stringMap(m.ConfigFiles), SensitiveConfigFiles: stringMap(m.ConfigFilesSensitive),
		DataDirs: listStrings(m.DataDirs), RemoveData: m.RemoveDataOnDestroy.ValueBool(),
	}
	if a := m.Artifact; a != nil {
		s.Artifact = hostrelease.Artifact{Version: a.Version.ValueString(), URL: a.URL.ValueString(), OCIRef: a.OCIRef.ValueString(),
			SHA256: a.SHA256.ValueString(), Signature: a.Signature.ValueString(), SignatureURL: a.SignatureURL.ValueString(),
			PublicKey: a.PublicKey.ValueString()}
	}
	if u := m.Systemd; u != nil {
		s.Unit = hostrelease.Unit{ExecStart: u.ExecStart.ValueString(), User: u.User.ValueString(),
			Environment: stringMap(u.Environment), SecretEnv: stringMap(u.EnvironmentSensitive),
			WorkingDirectory: u.WorkingDirectory.ValueString()}
		if l := u.Limits; l != nil {
			s.Unit.Limits = hostrelease.Limits{NOFILE: l.NOFILE.ValueInt64(), MemoryMax: l.MemoryMax.ValueString(), CPUQuota: l.CPUQuota.ValueString()}
		}
	}
	if h := m.HealthCheck; h != nil {
		s.Health = hostrelease.HealthCheck{Interval: knownDuration(h.Interval), Timeout: knownDuration(h.Timeout), StartPeriod: knownDuration(h.StartPeriod),
			HealthyThreshold: h.HealthyThreshold.ValueInt64(), UnhealthyThreshold: h.UnhealthyThreshold.ValueInt64()}
		if c := h.HTTP; c != nil {
			s.Health.HTTP, s.Health.Port, s.Health.Path = true, c.Port.ValueInt64(), c.Path.ValueString()
			s.Health.ExpectStatus, s.Health.ExpectBody = c.ExpectStatus.ValueInt64(), c.ExpectBody.ValueString()
		}
		if c := h.TCP; c != nil {
			s.Health.Port = c.Port.ValueInt64()
		}
	}
	if r := m.Rollout; r != nil {
		s.Rollout = hostrelease.Rollout{BatchSize: int(r.BatchSize.ValueInt64()), Pause: knownDuration(r.Pause)}
	}
	return s
}

// knownDuration is a known duration attribute's value; zero otherwise.
func knownDuration(v goDuration) time.Duration {
	d, diags := v.ValueGoDuration()
	if diags.HasError() {
		return 0
	}
	return d
}

// fillReleaseHost records a host as the engine found it; wantRelease and wantDigest
// are what it should run.
func fillReleaseHost(h *hostReleaseStatusModel, addr string, s hostrelease.HostState, installDir, wantRelease, wantDigest string) {
	h.Address = types.StringValue(addr)
	h.Release = types.StringValue(s.Current)
	h.PreviousRelease = types.StringValue(s.Previous)
	h.Digest = types.StringValue(s.BinarySHA256)
	h.ActiveState = types.StringValue(s.Active)
	h.EnabledState = types.StringValue(s.Enabled)
	h.Health = types.StringValue(s.Health)
	h.Drift = stringList(s.Drift(installDir, wantRelease, wantDigest))
}
