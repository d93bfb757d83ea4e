package provider

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/providerserver"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/tfsdk"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	"github.com/hashicorp/terraform-plugin-go/tftypes"
	"golang.org/x/crypto/ssh"
)

// validateGoHost validates a kiln_go_host configuration as Terraform does
// before a plan, through the provider's protocol server: set maps attribute
// paths ("go.root") to their values; ssh.host is always set.
func validateGoHost(t *testing.T, set map[string]any) []*tfprotov6.Diagnostic {
	t.Helper()
	ctx := context.Background()
	var schemaResp resource.SchemaResponse
	(&goHostResource{}).Schema(ctx, resource.SchemaRequest{}, &schemaResp)
	s := schemaResp.Schema
	config := tfsdk.Plan{Schema: s, Raw: tftypes.NewValue(s.Type().TerraformType(ctx), nil)}
	diags := config.SetAttribute(ctx, path.Root("ssh").AtName("host"), "build-1.example")
	for p, v := range set {
		var at path.Path
		for i, step := range strings.Split(p, ".") {
			if i == 0 {
				at = path.Root(step)
			} else {
				at = at.AtName(step)
			}
		}
		diags.Append(config.SetAttribute(ctx, at, v)...)
	}
	if diags.HasError() {
		t.Fatal(diags)
	}
	dv, err := tfprotov6.NewDynamicValue(s.Type().TerraformType(ctx), config.Raw)
	if err != nil {
		t.Fatal(err)
	}
	server, err := providerserver.NewProtocol6WithError(New("test")())()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := server.GetProviderSchema(ctx, &tfprotov6.GetProviderSchemaRequest{}); err != nil {
		t.Fatal(err)
	}
	resp, err := server.ValidateResourceConfig(ctx, &tfprotov6.ValidateResourceConfigRequest{TypeName: "kiln_go_host", Config: &dv})
	if err != nil {
		t.Fatal(err)
	}
	return resp.Diagnostics
}

// Inputs that used to fail on the host, or to be ignored, are refused before
// a plan, by an error naming the attribute.
func TestGoHostValidatesAtPlanTime(t *testing.T) {
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	plain, err := ssh.MarshalPrivateKey(key, "")
	if err != nil {
		t.Fatal(err)
	}
	locked, err := ssh.MarshalPrivateKeyWithPassphrase(key, "", []byte("secret"))
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := ssh.NewSignerFromKey(key)
	hostKey := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(signer.PublicKey())))

	for name, c := range map[string]struct {
		set  map[string]any
		want string // in the error's attribute path and text; "" for none
	}{
		"clean root":            {map[string]any{"go.root": "/opt/go"}, ""},
		"root /.":               {map[string]any{"go.root": "/."}, "go.root"},
		"root //":               {map[string]any{"go.root": "//"}, "go.root"},
		"relative root":         {map[string]any{"go.root": "opt/go"}, "go.root"},
		"root with ..":          {map[string]any{"go.root": "/opt/../go"}, "go.root"},
		"good keys":             {map[string]any{"ssh.host_key": hostKey, "ssh.private_key": string(pem.EncodeToMemory(plain))}, ""},
		"host key not a key":    {map[string]any{"ssh.host_key": "ssh-ed25519 not-base64"}, "ssh.host_key"},
		"private key not a key": {map[string]any{"ssh.private_key": "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n"}, "ssh.private_key"},
		"passphrase key":        {map[string]any{"ssh.private_key": string(pem.EncodeToMemory(locked))}, "passphrase"},
		"sysctl newline":        {map[string]any{"hardening.sysctls": map[string]string{"vm.swappiness": "1\nkernel.panic = 0"}}, "hardening.sysctls"},
		"test package":          {map[string]any{"verify.test_packages": []string{"strings", "net/..."}}, ""},
		"test flag":             {map[string]any{"verify.test_packages": []string{"-exec=/bin/sh"}}, "verify.test_packages"},
		"keyring with host":     {map[string]any{"go.source": "host", "go.keyring": "keys"}, "go.keyring"},
		"sha256 with proxy": {map[string]any{"go.source": "module_proxy",
			"go.sha256": map[string]string{"1.24.4": strings.Repeat("a", 64)}}, "go.sha256"},
		"sha256 by default source": {map[string]any{"go.sha256": map[string]string{"1.24.4": strings.Repeat("a", 64)}}, "go.sha256"},
		"proxy_url with dl":        {map[string]any{"go.source": "dl", "go.proxy_url": "https://proxy.example"}, "go.proxy_url"},
		"tools":                    {map[string]any{"go.tools": []string{"github.com/go-delve/delve/cmd/dlv@v1.27.2", "honnef.co/go/tools/cmd/staticcheck@latest"}}, ""},
		"tool without version":     {map[string]any{"go.tools": []string{"github.com/go-delve/delve/cmd/dlv"}}, "go.tools"},
		"tool with a branch":       {map[string]any{"go.tools": []string{"github.com/go-delve/delve/cmd/dlv@master"}}, "go.tools"},
		"tool twice":               {map[string]any{"go.tools": []string{"a.example/x@v1.0.0", "a.example/x@v1.0.0"}}, "Duplicate"},
		"relative tools_dir":       {map[string]any{"go.tools_dir": "bin"}, "go.tools_dir"},
		"dl settings":              {map[string]any{"go.source": "dl", "go.keyring": "keys", "go.key_fingerprint": "EB4C", "go.mirror_url": "https://m.example/"}, ""},
	} {
		t.Run(name, func(t *testing.T) {
			var errs []string
			for _, d := range validateGoHost(t, c.set) {
				if d.Severity == tfprotov6.DiagnosticSeverityError {
					at := ""
					if d.Attribute != nil {
						at = d.Attribute.String()
					}
					errs = append(errs, at+": "+d.Summary+": "+d.Detail)
				}
			}
			switch {
			case c.want == "" && len(errs) > 0:
				t.Errorf("refused: %v", errs)
			case c.want != "" && len(errs) == 0:
				t.Errorf("accepted, want an error about %s", c.want)
			case c.want != "" && !strings.Contains(strings.Join(errs, "\n"), c.want) && !strings.Contains(strings.ReplaceAll(strings.Join(errs, "\n"), `AttributeName("`, ""), c.want):
				t.Errorf("errors %v do not name %s", errs, c.want)
			}
		})
	}
}
