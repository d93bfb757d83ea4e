package provider

import (
	"strings"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringdefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"

	"github.com/kilnhq/terraform-provider-kiln/internal/delivery"
)

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
