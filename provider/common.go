package provider

import (
	"context"
	"fmt"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/kilnhq/terraform-provider-kiln/internal/redact"
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

// tflogInfo passes engine progress messages to Terraform's log, without URL
// credentials (a mirror or proxy URL may carry them).
func tflogInfo(ctx context.Context, msg string, fields map[string]any) {
	tflog.Info(ctx, msg, redact.Secrets{}.Fields(fields))
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
