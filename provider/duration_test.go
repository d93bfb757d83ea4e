package provider

import (
	"context"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
)

func TestNotNegativeDuration(t *testing.T) {
	for value, wantErr := range map[string]bool{
		"5m": false, "0": false, "1h30m": false, "250ms": false, "2µs": false,
		"-1s": true,
		"5":   false, // not a duration: the type reports it, not this validator
	} {
		resp := &validator.StringResponse{}
		notNegativeDuration{}.ValidateString(context.Background(), validator.StringRequest{
			Path: path.Root("rollout_timeout"), ConfigValue: types.StringValue(value),
		}, resp)
		if got := resp.Diagnostics.HasError(); got != wantErr {
			t.Errorf("%q: error = %v, want %v (%v)", value, got, wantErr, resp.Diagnostics)
		}
	}
}
