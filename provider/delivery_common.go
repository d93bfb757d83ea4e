package provider

import (
	"context"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/kilnhq/terraform-provider-kiln/internal/delivery"
)

const (
	missingKubeSummary = "Missing kubernetes configuration"
	missingKubeDetail  = "Kiln's delivery resources need the provider's kubernetes block: add `kubernetes {}` " +
		"(with `config_path`, or `host` and credentials; `KUBECONFIG` is used when `config_path` is unset) " +
		"to the `provider \"kiln\"` block."
)

// deliveryEngine returns the engine, or adds the missing-block error.
func deliveryEngine(c *clients, diags *diag.Diagnostics) *delivery.Engine {
	if c == nil || c.delivery == nil {
		diags.AddError(missingKubeSummary, missingKubeDetail)
		return nil
	}
	return c.delivery
}

// deliveryMap converts a known map-of-strings attribute (delivery's and
// vSphere's extra_config); null and unknown give nil.
func deliveryMap(ctx context.Context, m types.Map, diags *diag.Diagnostics) map[string]string {
	if m.IsNull() || m.IsUnknown() {
		return nil
	}
	out := map[string]string{}
	diags.Append(m.ElementsAs(ctx, &out, false)...)
	return out
}

// deliveryMapValue renders a map as state; an empty map becomes null (optional
// maps must hold at least one element, so null is how "none" reads back).
func deliveryMapValue(m map[string]string) types.Map {
	if len(m) == 0 {
		return types.MapNull(types.StringType)
	}
	elems := map[string]attr.Value{}
	for k, v := range m {
		elems[k] = types.StringValue(v)
	}
	return types.MapValueMust(types.StringType, elems)
}
