package provider

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/providerserver"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/tfsdk"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	"github.com/hashicorp/terraform-plugin-go/tftypes"
)

// imageServer is the provider's protocol server, its schemas loaded, as
// Terraform talks to it.
func imageServer(t *testing.T) tfprotov6.ProviderServer {
	t.Helper()
	server, err := providerserver.NewProtocol6WithError(New("test")())()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := server.GetProviderSchema(context.Background(), &tfprotov6.GetProviderSchemaRequest{}); err != nil {
		t.Fatal(err)
	}
	return server
}

func imageSchemaType(t *testing.T) tftypes.Type {
	t.Helper()
	var resp resource.SchemaResponse
	(&imageResource{}).Schema(context.Background(), resource.SchemaRequest{}, &resp)
	if resp.Schema.Version != 1 {
		t.Fatalf("schema version %d, want 1", resp.Schema.Version)
	}
	return resp.Schema.Type().TerraformType(context.Background())
}

// A version 0 state, with the pool at the top level, is upgraded through the
// provider's server: the pool moves into the libvirt block with the defaults
// the image was baked with, so the plan stays empty; a vSphere image gets no
// libvirt block.
func TestImageStateUpgradeFromV0(t *testing.T) {
	ctx := context.Background()
	server := imageServer(t)
	typ := imageSchemaType(t)
	v0 := func(pool, vsphere string) []byte {
		return []byte(`{"id":"kiln-test/go-3f2a9c81d04e.qcow2","name":"go","pool":` + pool + `,
			"source":{"vm_id":"src","toolchains":[{"version":"1.24.4","archive_sha256":"a","go_binary_sha256":"b"}]},
			"inputs":null,"generalize":null,"source_after_bake":"deleted","force_destroy":false,
			"fingerprint":"3f2a9c81d04e","volume":"go-3f2a9c81d04e.qcow2","format":"qcow2","virtual_size":4294967296,
			"allocation":1048576,"sha256":"ab","backing_volume":"","manifest":"{}","bake_seconds":12.5,
			"vsphere":` + vsphere + `,"template_path":null,"template_moid":null,"template_uuid":null,"snapshot":null,"timeouts":null}`)
	}
	for name, c := range map[string]struct {
		raw  []byte
		want map[string]any // the libvirt block; nil for none
	}{
		"libvirt": {v0(`"kiln-test"`, "null"), map[string]any{"pool": "kiln-test", "flatten": true, "compress": "none"}},
		"vsphere": {v0("null", `{"datacenter":"DC0","folder":"templates"}`), nil},
	} {
		t.Run(name, func(t *testing.T) {
			resp, err := server.UpgradeResourceState(ctx, &tfprotov6.UpgradeResourceStateRequest{
				TypeName: "kiln_image", Version: 0, RawState: &tfprotov6.RawState{JSON: c.raw},
			})
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range resp.Diagnostics {
				t.Fatalf("%s: %s", d.Summary, d.Detail)
			}
			raw, err := resp.UpgradedState.Unmarshal(typ)
			if err != nil {
				t.Fatal(err)
			}
			var state imageModel
			diags := (&tfsdk.State{Schema: imageSchema(t), Raw: raw}).Get(ctx, &state)
			if diags.HasError() {
				t.Fatal(diags)
			}
			if state.Volume.ValueString() != "go-3f2a9c81d04e.qcow2" || state.SHA256.ValueString() != "ab" || state.BakeSeconds.ValueFloat64() != 12.5 {
				t.Errorf("the rest of the state changed: %+v", state)
			}
			var got map[string]any
			if l := state.Libvirt; l != nil {
				got = map[string]any{"pool": l.Pool.ValueString(), "flatten": l.Flatten.ValueBool(), "compress": l.Compress.ValueString()}
			}
			if gotJSON, wantJSON := mustJSON(t, got), mustJSON(t, c.want); gotJSON != wantJSON {
				t.Errorf("libvirt block %s, want %s", gotJSON, wantJSON)
			}
		})
	}
}

func imageSchema(t *testing.T) schema.Schema {
	t.Helper()
	var resp resource.SchemaResponse
	(&imageResource{}).Schema(context.Background(), resource.SchemaRequest{}, &resp)
	return resp.Schema
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Configurations the libvirt block cannot take fail validation, naming the
// field.
func TestImageValidatesAtPlanTime(t *testing.T) {
	ctx := context.Background()
	server := imageServer(t)
	typ := imageSchemaType(t)
	objType := typ.(tftypes.Object)
	libvirtType := objType.AttributeTypes["libvirt"]
	vsphereType := objType.AttributeTypes["vsphere"]
	libvirtBlock := func(flatten *bool, compress *string) tftypes.Value {
		var f, c any
		if flatten != nil {
			f = *flatten
		}
		if compress != nil {
			c = *compress
		}
		return tftypes.NewValue(libvirtType, map[string]tftypes.Value{
			"pool": tftypes.NewValue(tftypes.String, nil), "flatten": tftypes.NewValue(tftypes.Bool, f),
			"compress": tftypes.NewValue(tftypes.String, c),
		})
	}
	vsphereWith := func(folder, library any) tftypes.Value {
		return tftypes.NewValue(vsphereType, map[string]tftypes.Value{"datacenter": tftypes.NewValue(tftypes.String, nil),
			"folder": tftypes.NewValue(tftypes.String, folder), "content_library": tftypes.NewValue(tftypes.String, library)})
	}
	vsphereBlock := vsphereWith(nil, nil)
	no, zstd, gzip := false, "zstd", "gzip"
	for name, c := range map[string]struct {
		libvirt, vsphere tftypes.Value
		want             string // in the error's attribute path or text; "" for none
	}{
		"libvirt {}":         {libvirtBlock(nil, nil), tftypes.NewValue(vsphereType, nil), ""},
		"vsphere {}":         {tftypes.NewValue(libvirtType, nil), vsphereBlock, ""},
		"neither":            {tftypes.NewValue(libvirtType, nil), tftypes.NewValue(vsphereType, nil), "[libvirt,vsphere]"},
		"both":               {libvirtBlock(nil, nil), vsphereBlock, "[libvirt,vsphere]"},
		"zstd":               {libvirtBlock(nil, &zstd), tftypes.NewValue(vsphereType, nil), ""},
		"gzip":               {libvirtBlock(nil, &gzip), tftypes.NewValue(vsphereType, nil), "libvirt.compress"},
		"overlay":            {libvirtBlock(&no, nil), tftypes.NewValue(vsphereType, nil), ""},
		"compressed overlay": {libvirtBlock(&no, &zstd), tftypes.NewValue(vsphereType, nil), "libvirt.compress"},
		"library":            {tftypes.NewValue(libvirtType, nil), vsphereWith("templates", "go-images"), ""},
		"library, VM folder": {tftypes.NewValue(libvirtType, nil), vsphereWith(nil, "go-images"), "vsphere.content_library"},
		"library, empty":     {tftypes.NewValue(libvirtType, nil), vsphereWith("templates", ""), "vsphere.content_library"},
	} {
		t.Run(name, func(t *testing.T) {
			values := map[string]tftypes.Value{}
			for attr, at := range objType.AttributeTypes {
				values[attr] = tftypes.NewValue(at, nil)
			}
			values["name"] = tftypes.NewValue(tftypes.String, "go")
			sourceType := objType.AttributeTypes["source"].(tftypes.Object)
			values["source"] = tftypes.NewValue(sourceType, map[string]tftypes.Value{
				"vm_id": tftypes.NewValue(tftypes.String, "src"), "toolchains": tftypes.NewValue(sourceType.AttributeTypes["toolchains"], []tftypes.Value{}),
			})
			values["libvirt"], values["vsphere"] = c.libvirt, c.vsphere
			config, err := tfprotov6.NewDynamicValue(typ, tftypes.NewValue(typ, values))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := server.ValidateResourceConfig(ctx, &tfprotov6.ValidateResourceConfigRequest{TypeName: "kiln_image", Config: &config})
			if err != nil {
				t.Fatal(err)
			}
			var errs []string
			for _, d := range resp.Diagnostics {
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
			case c.want != "" && !strings.Contains(strings.Join(errs, "\n"), c.want):
				t.Errorf("errors %v, want one naming %q", errs, c.want)
			}
		})
	}
}
