package provider

import (
	"context"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/defaults"
	"github.com/hashicorp/terraform-plugin-framework/tfsdk"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-go/tftypes"

	"github.com/kilnhq/terraform-provider-kiln/internal/hostprep"
)

// Once a host's facts are known, a plan for toolchains on a platform Go
// publishes none for is refused; a supported one plans.
func TestGoHostPlanRefusesAnUnsupportedPlatform(t *testing.T) {
	ctx := context.Background()
	r := &goHostResource{}
	var schemaResp resource.SchemaResponse
	r.Schema(ctx, resource.SchemaRequest{}, &schemaResp)
	s := schemaResp.Schema
	empty := func() tftypes.Value { return tftypes.NewValue(s.Type().TerraformType(ctx), nil) }

	for arch, wantErr := range map[string]bool{"arm64": false, "sparc64": true} {
		state := tfsdk.State{Schema: s, Raw: empty()}
		facts := hostprep.Facts{OS: "Debian GNU/Linux 12 (bookworm)", GOOS: "linux", Arch: arch}
		diags := state.SetAttribute(ctx, path.Root("facts"), factsValue(facts))
		plan := tfsdk.Plan{Schema: s, Raw: empty()}
		diags.Append(plan.SetAttribute(ctx, path.Root("go").AtName("versions"), []string{"1.24.4"})...)
		config := tfsdk.Config{Schema: s, Raw: plan.Raw}
		if diags.HasError() {
			t.Fatal(diags)
		}
		resp := resource.ModifyPlanResponse{Plan: plan}
		r.ModifyPlan(ctx, resource.ModifyPlanRequest{State: state, Plan: plan, Config: config}, &resp)
		refused := resp.Diagnostics.HasError() && strings.Contains(resp.Diagnostics[0].Summary(), "Unsupported host platform")
		if refused != wantErr {
			t.Errorf("arch %s: diagnostics %v, want refused = %v", arch, resp.Diagnostics, wantErr)
		}
		var resolved []string
		resp.Plan.GetAttribute(ctx, path.Root("go").AtName("resolved_versions"), &resolved)
		if !wantErr && strings.Join(resolved, " ") != "1.24.4" {
			t.Errorf("arch %s: resolved_versions %v", arch, resolved)
		}
	}
}

// env may carry a GOPROXY URL with a token: it is sensitive.
func TestGoHostEnvIsSensitive(t *testing.T) {
	var resp resource.SchemaResponse
	(&goHostResource{}).Schema(context.Background(), resource.SchemaRequest{}, &resp)
	if !resp.Schema.Attributes["env"].IsSensitive() {
		t.Error("kiln_go_host.env is not sensitive")
	}
}

// The build check is opt-in: without a verify block, or with one that leaves
// build unset, the host gets the cheap checks only; build = true asks for it.
func TestGoHostVerifyBuildIsOptIn(t *testing.T) {
	ctx := context.Background()
	var resp resource.SchemaResponse
	(&goHostResource{}).Schema(ctx, resource.SchemaRequest{}, &resp)
	build := resp.Schema.Blocks["verify"].(schema.SingleNestedBlock).Attributes["build"].(schema.BoolAttribute)
	var d defaults.BoolResponse
	build.Default.DefaultBool(ctx, defaults.BoolRequest{}, &d)
	if d.PlanValue.ValueBool() {
		t.Error("verify.build defaults to true")
	}
	for name, c := range map[string]struct {
		verify *verifyModel
		want   bool
	}{
		"no verify block": {nil, false},
		"build = false":   {&verifyModel{Build: types.BoolValue(false)}, false},
		"build = true":    {&verifyModel{Build: types.BoolValue(true)}, true},
	} {
		if got := (goHostModel{Verify: c.verify}).spec("debian").VerifyBuild; got != c.want {
			t.Errorf("%s: VerifyBuild = %v, want %v", name, got, c.want)
		}
	}
}
