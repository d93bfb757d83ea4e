package provider

import (
	"context"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/tfsdk"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-go/tftypes"
)

// An in-place update keeps the endpoint a kiln_go_host logs in through; the
// address list is kept only when the guest is not restarted, since a
// restarted guest may come back before it has configured every address.
func TestLibvirtVMPlanKeepsEndpoints(t *testing.T) {
	ctx := context.Background()
	var schemaResp resource.SchemaResponse
	(&libvirtVMResource{}).Schema(ctx, resource.SchemaRequest{}, &schemaResp)
	s := schemaResp.Schema
	vm := func(running bool, memory int64) tftypes.Value {
		state := tfsdk.State{Schema: s, Raw: tftypes.NewValue(s.Type().TerraformType(ctx), nil)}
		diags := state.SetAttribute(ctx, path.Root("running"), running)
		diags.Append(state.SetAttribute(ctx, path.Root("vcpu"), int64(2))...)
		diags.Append(state.SetAttribute(ctx, path.Root("memory_mib"), memory)...)
		diags.Append(state.SetAttribute(ctx, path.Root("network_interface"), []networkInterfaceModel{{
			Network: types.StringNull(), Bridge: types.StringNull(), UserMode: types.BoolValue(true),
			MAC: types.StringValue("52:54:00:00:00:01"), SSHForwardPort: types.Int64Value(2222),
		}})...)
		if diags.HasError() {
			t.Fatal(diags)
		}
		return state.Raw
	}
	addresses := types.ListValueMust(types.StringType, []attr.Value{types.StringValue("10.0.2.15"), types.StringValue("fec0::5054:ff:fe00:1")})

	for _, c := range []struct {
		name                 string
		running              bool
		fromMemory, toMemory int64
		keepsAddresses       bool
	}{
		{"disk or nothing that restarts", true, 2048, 2048, true},
		{"memory grown on a running guest", true, 2048, 2560, false},
		{"memory grown on a stopped guest", false, 2048, 2560, true},
	} {
		state := tfsdk.State{Schema: s, Raw: vm(c.running, c.fromMemory)}
		plan := tfsdk.Plan{Schema: s, Raw: vm(c.running, c.toMemory)}

		listResp := planmodifier.ListResponse{PlanValue: types.ListUnknown(types.StringType)}
		keepEndpoint{addresses: true}.PlanModifyList(ctx, planmodifier.ListRequest{
			State: state, Plan: plan, StateValue: addresses, PlanValue: types.ListUnknown(types.StringType),
		}, &listResp)
		if kept := listResp.PlanValue.Equal(addresses); kept != c.keepsAddresses || listResp.Diagnostics.HasError() {
			t.Errorf("%s: ip_addresses planned %s (%v), want kept = %v", c.name, listResp.PlanValue, listResp.Diagnostics, c.keepsAddresses)
		}

		portResp := planmodifier.Int64Response{PlanValue: types.Int64Unknown()}
		keepEndpoint{}.PlanModifyInt64(ctx, planmodifier.Int64Request{
			State: state, Plan: plan, StateValue: types.Int64Value(2222), PlanValue: types.Int64Unknown(),
		}, &portResp)
		if portResp.PlanValue.ValueInt64() != 2222 {
			t.Errorf("%s: ssh_port planned %s, want the forward kept", c.name, portResp.PlanValue)
		}
	}
}
