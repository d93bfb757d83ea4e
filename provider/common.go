package provider

import (
	"context"
	"fmt"
	"regexp"

	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/kilnhq/terraform-provider-kiln/internal/hostprep"
)

// optionalString maps "" to null, for optional attributes read back from an engine.
func optionalString(s string) types.String {
	if s == "" {
		return types.StringNull()
	}
	return types.StringValue(s)
}

func stringsOf(values []types.String) []string {
	if values == nil {
		return nil
	}
	out := make([]string, 0, len(values))
	for _, v := range values {
		out = append(out, v.ValueString())
	}
	return out
}

// stringValues maps nil to a null list and anything else to a list.
func stringValues(values []string) []types.String {
	if values == nil {
		return nil
	}
	out := make([]types.String, 0, len(values))
	for _, v := range values {
		out = append(out, types.StringValue(v))
	}
	return out
}

// stringList renders a computed list of strings; nil becomes an empty list.
func stringList(values []string) types.List {
	elems := make([]attr.Value, 0, len(values))
	for _, v := range values {
		elems = append(elems, types.StringValue(v))
	}
	return types.ListValueMust(types.StringType, elems)
}

// stringMap converts a known map attribute; null and unknown give nil.
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

// stringMapValue renders a map as state; empty stays empty (not null).
func stringMapValue(m map[string]string) types.Map {
	elems := map[string]attr.Value{}
	for k, v := range m {
		elems[k] = types.StringValue(v)
	}
	return types.MapValueMust(types.StringType, elems)
}

// optionalStringMapValue renders an optional map as state: an empty map
// becomes null (optional maps must hold at least one element, so null is how
// "none" reads back).
func optionalStringMapValue(m map[string]string) types.Map {
	if len(m) == 0 {
		return types.MapNull(types.StringType)
	}
	return stringMapValue(m)
}

// configuredClients is the Configure of every resource and data source: the
// provider's clients, nil before the provider is configured.
func configuredClients(data any, diags *diag.Diagnostics) *clients {
	if data == nil {
		return nil
	}
	c, ok := data.(*clients)
	if !ok {
		diags.AddError("Unexpected provider data", fmt.Sprintf("got %T", data))
		return nil
	}
	return c
}

// stringCheck validates a known string with check, whose error is the
// diagnostic's detail: for checks an engine owns (a key that must parse, a
// path it takes as it is), so the plan refuses what the engine would.
type stringCheck struct {
	description string
	check       func(string) error
}

func (v stringCheck) Description(context.Context) string         { return v.description }
func (v stringCheck) MarkdownDescription(context.Context) string { return v.description }

func (v stringCheck) ValidateString(_ context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	if err := v.check(req.ConfigValue.ValueString()); err != nil {
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid "+req.Path.String(), fmt.Sprintf("%s %s: %s", req.Path, v.description, err))
	}
}

// oneLine refuses values with line breaks: they end up in line-based files.
var oneLine = stringvalidator.RegexMatches(regexp.MustCompile(`^[^\n\r]*$`), "must be one line")

// userName is a Unix user name on a host.
var userName = stringvalidator.RegexMatches(regexp.MustCompile(`^[a-z_][a-z0-9_-]*[$]?$`), "must be a user name")

// cleanAbsolutePath is a directory on a host, as the host engines take it.
var cleanAbsolutePath = stringCheck{"must be a clean absolute path", hostprep.CheckRoot}
