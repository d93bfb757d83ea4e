package provider

import (
	"context"
	"fmt"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-log/tflog"
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

// tflogInfo passes engine progress messages to Terraform's log.
func tflogInfo(ctx context.Context, msg string, fields map[string]any) {
	tflog.Info(ctx, msg, fields)
}

// bastionDescription and bastionAttributes document the ssh.bastion block of
// the resources and data sources that reach hosts over SSH.
const bastionDescription = "A jump host to reach `host` through (OpenSSH's `ProxyJump`): `host` and `port` are then " +
	"dialled from the bastion. Unset values come from the provider's `ssh` block; its host key must be pinned too."

var bastionAttributes = map[string]string{
	"host":             "Bastion host name or address.",
	"port":             "Bastion SSH port. Defaults to the provider's `ssh.port`, then `22`.",
	"user":             "Bastion login user. Defaults to the provider's `ssh.user`, then `root`.",
	"private_key":      "Private key for the bastion (PEM or OpenSSH). Defaults to the provider's `ssh.private_key`.",
	"host_key":         "The bastion's public host key in authorized_keys format.",
	"known_hosts_file": "known_hosts file to check the bastion's key against when `host_key` is not set.",
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
