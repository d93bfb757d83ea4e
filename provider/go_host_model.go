package provider

// The go_host model and its conversion to and from the engine's types.

import (
	"slices"

	"github.com/hashicorp/terraform-plugin-framework-timeouts/resource/timeouts"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/kilnhq/terraform-provider-kiln/internal/gotool"
	"github.com/kilnhq/terraform-provider-kiln/internal/gotoolchain"
	"github.com/kilnhq/terraform-provider-kiln/internal/hostprep"
	"github.com/kilnhq/terraform-provider-kiln/internal/redact"
)

type goHostModel struct {
	ID              types.String             `tfsdk:"id"`
	OwnerID         types.String             `tfsdk:"owner_id"`
	Connection      *resourceConnectionModel `tfsdk:"ssh"`
	Go              *goToolchainsModel       `tfsdk:"go"`
	Env             types.Map                `tfsdk:"env"`
	Hardening       *hardeningModel          `tfsdk:"hardening"`
	Verify          *verifyModel             `tfsdk:"verify"`
	RemoveOnDestroy types.Bool               `tfsdk:"remove_on_destroy"`
	Facts           types.Object             `tfsdk:"facts"`
	Installed       types.List               `tfsdk:"installed"`
	Verification    types.Object             `tfsdk:"verification"`
	Timeouts        timeouts.Value           `tfsdk:"timeouts"`
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
	Tools            []types.String `tfsdk:"tools"`
	ResolvedTools    types.List     `tfsdk:"resolved_tools"`
	ToolsDir         types.String   `tfsdk:"tools_dir"`
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

// secrets are the values the host's errors and logs must hide: env may hold
// a token.
func (m goHostModel) secrets() redact.Secrets {
	var s redact.Secrets
	for _, v := range stringMap(m.Env) {
		s.Add(v)
	}
	return s
}

// spec is the hostprep form of the model; loginUser is the ssh user.
func (m goHostModel) spec(loginUser string) hostprep.Spec {
	s := hostprep.Spec{Root: hostprep.DefaultRoot, Owner: m.OwnerID.ValueString(), CgroupV2: "ignore"}
	if g := m.Go; g != nil {
		s.RemoveUndeclared = g.Versions != nil
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
		s.ToolsDir = firstSet(g.ToolsDir.ValueString(), hostprep.DefaultToolsDir)
		tools := g.resolvedTools()
		for _, t := range g.Tools {
			if r, err := gotool.ParseRequest(tools[t.ValueString()]); err == nil && r.Version != gotool.Latest {
				s.Tools = append(s.Tools, gotool.Tool{Package: r.Package, Version: r.Version})
			}
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
	}
	return s
}

// readBack records the host as hostprep observes it against the model's spec:
// managed values that drifted take the host's value, so the plan shows the
// way back.
func (m *goHostModel) readBack(f hostprep.Facts, v hostprep.Verification) {
	observed := f.Observed(m.spec(""))
	if g := m.Go; g != nil {
		resolved := g.resolved()
		if g.Versions != nil {
			g.Versions = slices.DeleteFunc(slices.Clone(g.Versions), func(want types.String) bool {
				return !slices.Contains(observed.Versions, resolved[want.ValueString()])
			})
		}
		g.ResolvedVersions = stringList(observed.Versions)
		// A tool that is gone, replaced or built from another version leaves
		// the list: the plan puts it back.
		tools := g.resolvedTools()
		if g.Tools != nil {
			g.Tools = slices.DeleteFunc(slices.Clone(g.Tools), func(want types.String) bool {
				return !slices.ContainsFunc(observed.Tools, func(t gotool.Tool) bool { return t.String() == tools[want.ValueString()] })
			})
		}
		var present []string
		for _, t := range observed.Tools {
			present = append(present, t.String())
		}
		g.ResolvedTools = stringList(present)
		// A default written as a request ("1.24") stays as written while it
		// still names the host's default.
		if resolved[g.Default.ValueString()] != observed.Default || observed.Default == "" {
			g.Default = optionalString(observed.Default)
		}
	}
	if !m.Env.IsNull() {
		m.Env = stringMapValue(observed.Env)
	}
	if h := m.Hardening; h != nil {
		h.SwapOff = types.BoolValue(observed.SwapOff)
		if !h.NoFile.IsNull() {
			h.NoFile = types.Int64Value(int64(observed.NoFile))
		}
		if !h.NProc.IsNull() {
			h.NProc = types.Int64Value(int64(observed.NProc))
		}
		if !h.GoCacheTmpfsMiB.IsNull() {
			h.GoCacheTmpfsMiB = types.Int64Value(int64(observed.GoCacheTmpfsMiB))
		}
		if !h.Sysctls.IsNull() {
			h.Sysctls = stringMapValue(observed.Sysctls)
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
	if versions := f.IntactVersions(); len(versions) > 0 {
		m.Go = &goToolchainsModel{
			Versions: stringValues(versions), ResolvedVersions: stringList(versions), SHA256: types.MapNull(types.StringType),
			Default: optionalString(f.Default), Source: types.StringValue(gotoolchain.FromModuleProxy),
			Root: types.StringValue(hostprep.DefaultRoot), ProxyURL: types.StringNull(), SumDB: types.StringNull(),
			MirrorURL: types.StringNull(), IndexURL: types.StringNull(), Keyring: types.StringNull(), KeyFingerprint: types.StringNull(),
			ResolvedTools: types.ListNull(types.StringType), ToolsDir: types.StringValue(hostprep.DefaultToolsDir),
		}
	}
}

// resolved maps each version request to the release it resolved to; exact
// releases map to themselves.
func (g *goToolchainsModel) resolved() map[string]string {
	return resolvedBy(g.Versions, g.ResolvedVersions)
}

// resolvedTools maps each go.tools entry to the package@version it resolved
// to; exact entries map to themselves.
func (g *goToolchainsModel) resolvedTools() map[string]string {
	return resolvedBy(g.Tools, g.ResolvedTools)
}

// resolvedBy maps each request to the entry of resolved at its index, or to
// itself while resolved does not match the requests one to one.
func resolvedBy(requests []types.String, resolved types.List) map[string]string {
	out := map[string]string{}
	var list []string
	if !resolved.IsNull() && !resolved.IsUnknown() {
		for _, e := range resolved.Elements() {
			if s, ok := e.(types.String); ok {
				list = append(list, s.ValueString())
			}
		}
	}
	for i, r := range requests {
		out[r.ValueString()] = r.ValueString()
		if len(list) == len(requests) {
			out[r.ValueString()] = list[i]
		}
	}
	return out
}
