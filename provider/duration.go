package provider

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-timetypes/timetypes"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringdefault"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
)

// goDuration is the value of an attribute durationAttribute makes.
type goDuration = timetypes.GoDuration

// durationAttribute is an optional Go duration such as `90s` or `1h30m` that
// defaults to def: timetypes.GoDuration parses it as the engines will, and
// plans `300s` where state holds `5m` as no change.
func durationAttribute(description, def string) schema.StringAttribute {
	return schema.StringAttribute{
		MarkdownDescription: description + " Defaults to `" + def + "`.",
		CustomType:          timetypes.GoDurationType{},
		Optional:            true,
		Computed:            true,
		Default:             stringdefault.StaticString(def),
		Validators:          []validator.String{notNegativeDuration{}},
	}
}

// notNegativeDuration refuses a negative duration; what does not parse is
// reported by the attribute's type.
type notNegativeDuration struct{}

func (notNegativeDuration) Description(context.Context) string { return "must not be negative" }

func (v notNegativeDuration) MarkdownDescription(ctx context.Context) string {
	return v.Description(ctx)
}

func (notNegativeDuration) ValidateString(_ context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	if d, err := time.ParseDuration(req.ConfigValue.ValueString()); err == nil && d < 0 {
		resp.Diagnostics.AddAttributeError(req.Path, "Negative duration",
			fmt.Sprintf("%s must not be negative, got %q.", req.Path, req.ConfigValue.ValueString()))
	}
}
