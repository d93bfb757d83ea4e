package provider

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/kilnhq/terraform-provider-kiln/internal/buildfarm"
	"github.com/kilnhq/terraform-provider-kiln/internal/oci"
)

// registryOf reads the registry block's url: a host[:port], optionally after
// https:// or http:// (which implies insecure).
func registryOf(raw string, insecure bool) (oci.Registry, error) {
	host := raw
	if scheme, rest, ok := strings.Cut(raw, "://"); ok {
		switch scheme {
		case "http":
			insecure = true
		case "https":
		default:
			return oci.Registry{}, fmt.Errorf("%q: the scheme must be https or http", raw)
		}
		host = rest
	}
	host = strings.TrimSuffix(host, "/")
	if u, err := url.Parse("//" + host); err != nil || u.Host != host || host == "" {
		return oci.Registry{}, fmt.Errorf("%q: want a registry host with an optional port, such as registry.example.com or 127.0.0.1:5000", raw)
	}
	return oci.Registry{Host: host, Insecure: insecure}, nil
}

// buildFarm is the build farm of a control namespace: its records in the
// cluster of the kubernetes block, its outputs in the registry block's
// registry (withRegistry; pools need none). It adds the missing block's error
// to diags and returns nil.
func buildFarm(c *clients, control string, withRegistry bool, diags *diag.Diagnostics) *buildfarm.Farm {
	engine := requireEngine(c, kubernetesBlock, diags)
	var reg *oci.Registry
	if withRegistry {
		reg = requireEngine(c, registryBlock, diags)
	}
	if engine == nil || (withRegistry && reg == nil) {
		return nil
	}
	cs, err := engine.Kube.Typed()
	if err != nil {
		diags.AddError("Could not reach the cluster", err.Error())
		return nil
	}
	f := &buildfarm.Farm{Control: control, Records: &buildfarm.Secrets{Client: cs, Namespace: control}, Projects: engine, Log: kilnLog}
	if reg != nil {
		f.Registry = *reg
	}
	return f
}

// addBuildError adds an engine error: on the attribute it names when it is a
// buildfarm.FieldError, else as a general error under summary.
func addBuildError(diags *diag.Diagnostics, summary string, err error) {
	var fe *buildfarm.FieldError
	if errors.As(err, &fe) {
		p := path.Empty()
		for _, part := range strings.Split(fe.Field, ".") {
			p = p.AtName(part)
		}
		diags.AddAttributeError(p, summary, err.Error())
		return
	}
	diags.AddError(summary, err.Error())
}

// planResolvedSource puts the commit and source hash the plan resolved into
// the plan; a change in either replaces the run. It reports whether the plan
// makes a new run, whose outputs the caller then marks unknown.
func planResolvedSource(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse, planned buildfarm.Planned) bool {
	exists := !req.State.Raw.IsNull()
	for _, resolved := range []struct{ name, value string }{{"commit", planned.Commit}, {"source_hash", planned.SourceHash}} {
		value := optionalString(resolved.value)
		resp.Diagnostics.Append(resp.Plan.SetAttribute(ctx, path.Root(resolved.name), value)...)
		if !exists {
			continue
		}
		var old types.String
		resp.Diagnostics.Append(req.State.GetAttribute(ctx, path.Root(resolved.name), &old)...)
		if !old.Equal(value) {
			resp.RequiresReplace = append(resp.RequiresReplace, path.Root(resolved.name))
		}
	}
	return len(resp.RequiresReplace) > 0 || !exists
}

// planUnknown marks the named top-level attributes unknown in the plan.
func planUnknown(ctx context.Context, resp *resource.ModifyPlanResponse, unknown attr.Value, names ...string) {
	for _, name := range names {
		resp.Diagnostics.Append(resp.Plan.SetAttribute(ctx, path.Root(name), unknown)...)
	}
}
