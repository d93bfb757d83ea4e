package provider

import (
	"context"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringdefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/kilnhq/terraform-provider-kiln/internal/delivery"
)

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

// controlNamespaceDescription says what a control namespace is to the
// resources and data sources that belong to a project.
const controlNamespaceDescription = "The project's `control_namespace` (`kiln_project.<name>.control_namespace`): " +
	"Kiln reads the project's and environments' records and the release history there, by name, and nowhere " +
	"else. Defaults to `" + delivery.DefaultControlNamespace + "`."

// controlNamespaceAttribute is the control namespace of a resource that
// belongs to a project; state remembers it, and changing it replaces the resource.
func controlNamespaceAttribute() schema.StringAttribute {
	return schema.StringAttribute{
		MarkdownDescription: controlNamespaceDescription,
		Optional:            true,
		Computed:            true,
		Default:             stringdefault.StaticString(delivery.DefaultControlNamespace),
		PlanModifiers:       []planmodifier.String{stringplanmodifier.RequiresReplace()},
		Validators:          dnsLabelValidators,
	}
}

// importIDParts splits an import ID of n names, optionally preceded by the
// control namespace (`<project>/<env>` or `<control>/<project>/<env>`).
func importIDParts(id string, n int) (control string, names []string, ok bool) {
	parts := strings.Split(id, "/")
	if len(parts) == n+1 {
		control, parts = parts[0], parts[1:]
	} else {
		control = delivery.DefaultControlNamespace
	}
	if len(parts) != n || control == "" {
		return "", nil, false
	}
	for _, p := range parts {
		if p == "" {
			return "", nil, false
		}
	}
	return control, parts, true
}

// addWarnings reports what the engine ignored or left alone (a release record
// it could not trust, an object Kiln did not apply) as warnings.
func addWarnings(diags *diag.Diagnostics, warnings []string) {
	for _, w := range warnings {
		diags.AddWarning("Kiln did not act on something it does not trust", w)
	}
}
