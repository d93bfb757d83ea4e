package provider

import (
	"context"

	"github.com/hashicorp/terraform-plugin-framework-validators/int64validator"
	"github.com/hashicorp/terraform-plugin-framework-validators/objectvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	dschema "github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	rschema "github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/int64planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/kilnhq/terraform-provider-kiln/internal/hostprep"
	"github.com/kilnhq/terraform-provider-kiln/internal/redact"
	"github.com/kilnhq/terraform-provider-kiln/internal/remote"
)

// The `ssh` block of every resource and data source that reaches a host: its
// model, its schema (one definition, rendered for resources and for data
// sources) and its conversion to a remote.Target.

// resourceConnectionModel is a resource's `ssh` block: a data source's, and a
// write-only key.
type resourceConnectionModel struct {
	hostConnectionModel
	PrivateKeyWO types.String `tfsdk:"private_key_wo"`
}

// connection is the block with the write-only key, when set, as its key.
func (c *resourceConnectionModel) connection() *hostConnectionModel {
	if c == nil {
		return nil
	}
	conn := c.hostConnectionModel
	if !c.PrivateKeyWO.IsNull() && !c.PrivateKeyWO.IsUnknown() {
		conn.PrivateKey = c.PrivateKeyWO
	}
	return &conn
}

// hostConnectionModel is an `ssh` block.
type hostConnectionModel struct {
	Host           types.String  `tfsdk:"host"`
	Port           types.Int64   `tfsdk:"port"`
	User           types.String  `tfsdk:"user"`
	PrivateKey     types.String  `tfsdk:"private_key"`
	UseAgent       types.Bool    `tfsdk:"use_agent"`
	HostKey        types.String  `tfsdk:"host_key"`
	KnownHostsFile types.String  `tfsdk:"known_hosts_file"`
	Bastion        *bastionModel `tfsdk:"bastion"`
}

// bastionModel is the jump host an ssh block goes through.
type bastionModel struct {
	Host           types.String `tfsdk:"host"`
	Port           types.Int64  `tfsdk:"port"`
	User           types.String `tfsdk:"user"`
	PrivateKey     types.String `tfsdk:"private_key"`
	HostKey        types.String `tfsdk:"host_key"`
	KnownHostsFile types.String `tfsdk:"known_hosts_file"`
}

// sshDefaults are the provider's ssh block: what every ssh block falls back to.
type sshDefaults = remote.Defaults

// sshTarget resolves an ssh block over the provider's ssh defaults d.
func sshTarget(d sshDefaults, c *hostConnectionModel) (remote.Target, error) {
	var cfg remote.Config
	if c != nil {
		cfg.Endpoint = remote.Endpoint{Host: c.Host.ValueString(), Port: c.Port.ValueInt64(), User: c.User.ValueString(),
			PrivateKey: c.PrivateKey.ValueString(), UseAgent: c.UseAgent.ValueBool(),
			HostKey: c.HostKey.ValueString(), KnownHostsFile: c.KnownHostsFile.ValueString()}
		if b := c.Bastion; b != nil {
			cfg.Bastion = &remote.Endpoint{Host: b.Host.ValueString(), Port: b.Port.ValueInt64(), User: b.User.ValueString(),
				PrivateKey: b.PrivateKey.ValueString(), HostKey: b.HostKey.ValueString(), KnownHostsFile: b.KnownHostsFile.ValueString()}
		}
	}
	return cfg.Target(d)
}

// connectHost connects to the host of an ssh block; its errors and logs hide
// secrets. On failure it adds the error to diags and returns nil.
func connectHost(ctx context.Context, d sshDefaults, c *hostConnectionModel, secrets redact.Secrets, diags *diag.Diagnostics) *hostprep.Host {
	target, err := sshTarget(d, c)
	if err != nil {
		diags.AddAttributeError(path.Root("ssh"), "Invalid ssh block", err.Error())
		return nil
	}
	target.Secrets = secrets
	host := &hostprep.Host{Target: target, Log: kilnLog}
	if err := host.Connect(ctx); err != nil {
		diags.AddError("Could not connect to the host", err.Error())
		return nil
	}
	return host
}

// hostID names a host in state: `user@host:port`.
func hostID(h *hostprep.Host) string { return h.Target.User + "@" + h.Target.Addr }

// sshAttribute is one attribute of the ssh block or of its bastion block.
type sshAttribute struct {
	description string
	kind        sshKind
	sensitive   bool
	// writeOnly attributes are never stored, and exist only in resources.
	writeOnly bool
	// replaces marks what names another host: changing it replaces a resource.
	replaces bool
	strings  []validator.String
	int64s   []validator.Int64
}

type sshKind int

const (
	stringKind sshKind = iota
	int64Kind
	boolKind
)

var (
	sshPort = []validator.Int64{int64validator.Between(1, 65535)}
	sshHost = []validator.String{stringvalidator.LengthAtLeast(1)}
	// Keys are parsed at plan time, as the connection would.
	sshPrivateKey = stringCheck{"must be a PEM or OpenSSH private key", func(v string) error {
		_, err := remote.KeyAuth([]byte(v))
		return err
	}}
	sshHostKey = []validator.String{stringCheck{"must be a public key in authorized_keys format", func(v string) error {
		_, err := remote.ParsePublicKey(v)
		return err
	}}}
)

const sshBlockDescription = "How to reach the host over SSH (the block is not called `connection`: Terraform reserves that name). " +
	"Unset values come from the provider's `ssh` block. The host key must be pinned (`host_key`) or listed in " +
	"`known_hosts_file`; an unknown or changed key is refused."

var sshAttributes = map[string]sshAttribute{
	"host": {description: "Host name or address.", kind: stringKind, replaces: true, strings: sshHost},
	"port": {description: "SSH port. Defaults to the provider's `ssh.port`, then `22`.", kind: int64Kind, replaces: true, int64s: sshPort},
	"user": {description: "Login user; commands run through `sudo -n` unless it is `root`. Defaults to the provider's `ssh.user`, then `root`.", kind: stringKind},
	"private_key": {description: "Private key (PEM or OpenSSH). Defaults to the provider's `ssh.private_key`. " +
		"A key given here is kept in state (as a sensitive value); the provider's is never stored.", kind: stringKind, sensitive: true,
		strings: []validator.String{sshPrivateKey}},
	"private_key_wo": {description: "Private key (PEM or OpenSSH) that Terraform keeps in neither plan nor state, " +
		"for instance from an ephemeral resource or an ephemeral variable: write-only, which needs OpenTofu or " +
		"Terraform 1.11 or later. It reaches Kiln only with the configuration being applied, so refreshes and " +
		"destroys log in with the provider's `ssh` block (whose values are never stored either, and may be ephemeral) " +
		"or the agent; without either, a refresh keeps the recorded state and warns. Conflicts with `private_key`.",
		kind: stringKind, sensitive: true, writeOnly: true,
		strings: []validator.String{sshPrivateKey, stringvalidator.ConflictsWith(path.MatchRelative().AtParent().AtName("private_key"))}},
	"use_agent": {description: "Also authenticate through the agent at `SSH_AUTH_SOCK`.", kind: boolKind},
	"host_key": {description: "The host's public key in authorized_keys format, for example `kiln_libvirt_vm.x.ssh_host_public_key`.",
		kind: stringKind, strings: sshHostKey},
	"known_hosts_file": {description: "known_hosts file to check the host key against when `host_key` is not set. " +
		"Defaults to the provider's `ssh.known_hosts_file`.", kind: stringKind},
}

const bastionBlockDescription = "A jump host to reach `host` through (OpenSSH's `ProxyJump`): `host` and `port` are then " +
	"dialled from the bastion. Unset values come from the provider's `ssh` block; its host key must be pinned too."

var bastionAttributes = map[string]sshAttribute{
	"host": {description: "Bastion host name or address.", kind: stringKind},
	"port": {description: "Bastion SSH port. Defaults to the provider's `ssh.port`, then `22`.", kind: int64Kind, int64s: sshPort},
	"user": {description: "Bastion login user. Defaults to the provider's `ssh.user`, then `root`.", kind: stringKind},
	"private_key": {description: "Private key for the bastion (PEM or OpenSSH). Defaults to the provider's `ssh.private_key`.",
		kind: stringKind, sensitive: true, strings: []validator.String{sshPrivateKey}},
	"host_key":         {description: "The bastion's public host key in authorized_keys format.", kind: stringKind, strings: sshHostKey},
	"known_hosts_file": {description: "known_hosts file to check the bastion's key against when `host_key` is not set.", kind: stringKind},
}

// sshResourceBlock is the ssh block of a resource: changing what names the
// host replaces the resource.
func sshResourceBlock() rschema.SingleNestedBlock {
	attributes := func(from map[string]sshAttribute) map[string]rschema.Attribute {
		out := map[string]rschema.Attribute{}
		for name, a := range from {
			description := a.description
			if a.replaces {
				description += " Changing it means another host: a new resource."
			}
			switch a.kind {
			case stringKind:
				s := rschema.StringAttribute{MarkdownDescription: description, Optional: true, Sensitive: a.sensitive, WriteOnly: a.writeOnly, Validators: a.strings}
				if a.replaces {
					s.PlanModifiers = []planmodifier.String{stringplanmodifier.RequiresReplace()}
				}
				out[name] = s
			case int64Kind:
				i := rschema.Int64Attribute{MarkdownDescription: description, Optional: true, Validators: a.int64s}
				if a.replaces {
					i.PlanModifiers = []planmodifier.Int64{int64planmodifier.RequiresReplace()}
				}
				out[name] = i
			default:
				out[name] = rschema.BoolAttribute{MarkdownDescription: description, Optional: true}
			}
		}
		return out
	}
	return rschema.SingleNestedBlock{
		MarkdownDescription: sshBlockDescription,
		Validators:          []validator.Object{objectvalidator.IsRequired()},
		Attributes:          attributes(sshAttributes),
		Blocks: map[string]rschema.Block{"bastion": rschema.SingleNestedBlock{
			MarkdownDescription: bastionBlockDescription,
			Attributes:          attributes(bastionAttributes),
		}},
	}
}

// sshDataSourceBlock is the ssh block of a data source.
func sshDataSourceBlock() dschema.SingleNestedBlock {
	attributes := func(from map[string]sshAttribute) map[string]dschema.Attribute {
		out := map[string]dschema.Attribute{}
		for name, a := range from {
			if a.writeOnly { // a data source's configuration is stored
				continue
			}
			switch a.kind {
			case stringKind:
				out[name] = dschema.StringAttribute{MarkdownDescription: a.description, Optional: true, Sensitive: a.sensitive, Validators: a.strings}
			case int64Kind:
				out[name] = dschema.Int64Attribute{MarkdownDescription: a.description, Optional: true, Validators: a.int64s}
			default:
				out[name] = dschema.BoolAttribute{MarkdownDescription: a.description, Optional: true}
			}
		}
		return out
	}
	return dschema.SingleNestedBlock{
		MarkdownDescription: sshBlockDescription,
		Validators:          []validator.Object{objectvalidator.IsRequired()},
		Attributes:          attributes(sshAttributes),
		Blocks: map[string]dschema.Block{"bastion": dschema.SingleNestedBlock{
			MarkdownDescription: bastionBlockDescription,
			Attributes:          attributes(bastionAttributes),
		}},
	}
}
