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

// nullObject is an object of typ with the given attributes set, the others null.
func nullObject(typ tftypes.Object, set map[string]tftypes.Value) tftypes.Value {
	values := map[string]tftypes.Value{}
	for name, at := range typ.AttributeTypes {
		values[name] = tftypes.NewValue(at, nil)
		if v, ok := set[name]; ok {
			values[name] = v
		}
	}
	return tftypes.NewValue(typ, values)
}

// Configurations the libvirt block or the source block cannot take fail
// validation, naming the field: the source is a provisioned VM, or a base
// volume with a provisioning spec, never both or neither.
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
	sourceType := objType.AttributeTypes["source"].(tftypes.Object)
	goType := sourceType.AttributeTypes["go"].(tftypes.Object)
	hardeningType := sourceType.AttributeTypes["hardening"].(tftypes.Object)
	str := func(s string) tftypes.Value { return tftypes.NewValue(tftypes.String, s) }
	versions := tftypes.NewValue(goType.AttributeTypes["versions"], []tftypes.Value{str("1.24.4")})
	vmSource := nullObject(sourceType, map[string]tftypes.Value{
		"vm_id": str("src"), "toolchains": tftypes.NewValue(sourceType.AttributeTypes["toolchains"], []tftypes.Value{}),
	})
	// baseSource is a base volume source with a go block of these settings
	// and the other source settings given.
	baseSource := func(goSettings, other map[string]tftypes.Value) tftypes.Value {
		g := map[string]tftypes.Value{"versions": versions}
		for k, v := range goSettings {
			g[k] = v
		}
		set := map[string]tftypes.Value{"base_volume": str("debian12.qcow2"), "go": nullObject(goType, g)}
		for k, v := range other {
			set[k] = v
		}
		return nullObject(sourceType, set)
	}
	noVsphere := tftypes.NewValue(vsphereType, nil)
	for name, c := range map[string]struct {
		source           tftypes.Value // vmSource when unset
		libvirt, vsphere tftypes.Value
		want             string // in the error's attribute path or text; "" for none
	}{
		"base volume":              {source: baseSource(nil, nil), libvirt: libvirtBlock(nil, &zstd), vsphere: noVsphere},
		"base volume, dl":          {source: baseSource(map[string]tftypes.Value{"source": str("dl"), "mirror_url": str("http://m/")}, nil), libvirt: libvirtBlock(nil, nil), vsphere: noVsphere},
		"both source forms":        {source: baseSource(nil, map[string]tftypes.Value{"vm_id": str("src")}), libvirt: libvirtBlock(nil, nil), vsphere: noVsphere, want: "source.base_volume"},
		"neither source form":      {source: nullObject(sourceType, nil), libvirt: libvirtBlock(nil, nil), vsphere: noVsphere, want: "[source.vm_id,source.base_volume]"},
		"no source block":          {source: tftypes.NewValue(sourceType, nil), libvirt: libvirtBlock(nil, nil), vsphere: noVsphere, want: "[source.vm_id,source.base_volume]"},
		"base volume without go":   {source: nullObject(sourceType, map[string]tftypes.Value{"base_volume": str("debian12.qcow2")}), libvirt: libvirtBlock(nil, nil), vsphere: noVsphere, want: "source.go"},
		"go without versions":      {source: baseSource(map[string]tftypes.Value{"versions": tftypes.NewValue(goType.AttributeTypes["versions"], nil)}, nil), libvirt: libvirtBlock(nil, nil), vsphere: noVsphere, want: "source.go.versions"},
		"base volume, toolchains":  {source: baseSource(nil, map[string]tftypes.Value{"toolchains": tftypes.NewValue(sourceType.AttributeTypes["toolchains"], []tftypes.Value{})}), libvirt: libvirtBlock(nil, nil), vsphere: noVsphere, want: "source.toolchains"},
		"vm with a go block":       {source: nullObject(sourceType, map[string]tftypes.Value{"vm_id": str("src"), "toolchains": tftypes.NewValue(sourceType.AttributeTypes["toolchains"], []tftypes.Value{}), "go": nullObject(goType, map[string]tftypes.Value{"versions": versions})}), libvirt: libvirtBlock(nil, nil), vsphere: noVsphere, want: "source.go"},
		"vm without toolchains":    {source: nullObject(sourceType, map[string]tftypes.Value{"vm_id": str("src")}), libvirt: libvirtBlock(nil, nil), vsphere: noVsphere, want: "source.toolchains"},
		"go tools in an image":     {source: baseSource(map[string]tftypes.Value{"tools": tftypes.NewValue(goType.AttributeTypes["tools"], []tftypes.Value{str("golang.org/x/tools/cmd/stringer@v0.30.0")})}, nil), libvirt: libvirtBlock(nil, nil), vsphere: noVsphere, want: "source.go.tools"},
		"keyring from the proxy":   {source: baseSource(map[string]tftypes.Value{"keyring": str("keys")}, nil), libvirt: libvirtBlock(nil, nil), vsphere: noVsphere, want: "source.go.keyring"},
		"base volume on vSphere":   {source: baseSource(nil, nil), libvirt: tftypes.NewValue(libvirtType, nil), vsphere: vsphereBlock, want: "source.base_volume"},
		"GOCACHE tmpfs, no user":   {source: baseSource(nil, map[string]tftypes.Value{"hardening": nullObject(hardeningType, map[string]tftypes.Value{"gocache_tmpfs_mib": tftypes.NewValue(tftypes.Number, 512)})}), libvirt: libvirtBlock(nil, nil), vsphere: noVsphere, want: "source.hardening.gocache_user"},
		"bad domain type":          {source: baseSource(nil, map[string]tftypes.Value{"domain_type": str("xen")}), libvirt: libvirtBlock(nil, nil), vsphere: noVsphere, want: "source.domain_type"},
		"hardening, GOCACHE owned": {source: baseSource(nil, map[string]tftypes.Value{"hardening": nullObject(hardeningType, map[string]tftypes.Value{"gocache_tmpfs_mib": tftypes.NewValue(tftypes.Number, 512), "gocache_user": str("build")})}), libvirt: libvirtBlock(nil, nil), vsphere: noVsphere},

		"libvirt {}":         {libvirt: libvirtBlock(nil, nil), vsphere: noVsphere},
		"vsphere {}":         {libvirt: tftypes.NewValue(libvirtType, nil), vsphere: vsphereBlock},
		"neither":            {libvirt: tftypes.NewValue(libvirtType, nil), vsphere: noVsphere, want: "[libvirt,vsphere]"},
		"both":               {libvirt: libvirtBlock(nil, nil), vsphere: vsphereBlock, want: "[libvirt,vsphere]"},
		"zstd":               {libvirt: libvirtBlock(nil, &zstd), vsphere: noVsphere},
		"gzip":               {libvirt: libvirtBlock(nil, &gzip), vsphere: noVsphere, want: "libvirt.compress"},
		"overlay":            {libvirt: libvirtBlock(&no, nil), vsphere: noVsphere},
		"compressed overlay": {libvirt: libvirtBlock(&no, &zstd), vsphere: noVsphere, want: "libvirt.compress"},
		"library":            {libvirt: tftypes.NewValue(libvirtType, nil), vsphere: vsphereWith("templates", "go-images")},
		"library, VM folder": {libvirt: tftypes.NewValue(libvirtType, nil), vsphere: vsphereWith(nil, "go-images"), want: "vsphere.content_library"},
		"library, empty":     {libvirt: tftypes.NewValue(libvirtType, nil), vsphere: vsphereWith("templates", ""), want: "vsphere.content_library"},
	} {
		t.Run(name, func(t *testing.T) {
			values := map[string]tftypes.Value{}
			for attr, at := range objType.AttributeTypes {
				values[attr] = tftypes.NewValue(at, nil)
			}
			values["name"] = tftypes.NewValue(tftypes.String, "go")
			values["source"] = vmSource
			if c.source.Type() != nil {
				values["source"] = c.source
			}
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
