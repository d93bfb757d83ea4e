package provider

import (
	"context"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/terraform-plugin-framework/providerserver"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
)

// bodySchema is the part of a provider schema HCL needs to check a block.
type bodySchema struct {
	required   []string
	attributes []string
	blocks     map[string]bodySchema
}

func fromBlock(b *tfprotov6.SchemaBlock) bodySchema {
	s := bodySchema{blocks: map[string]bodySchema{}}
	for _, a := range b.Attributes {
		if a.Required {
			s.required = append(s.required, a.Name)
		}
		if a.Required || a.Optional {
			s.attributes = append(s.attributes, a.Name)
		}
	}
	for _, nb := range b.BlockTypes {
		s.blocks[nb.TypeName] = fromBlock(nb.Block)
	}
	return s
}

func (s bodySchema) hcl() *hcl.BodySchema {
	out := &hcl.BodySchema{}
	for _, a := range s.attributes {
		out.Attributes = append(out.Attributes, hcl.AttributeSchema{Name: a})
	}
	for name := range s.blocks {
		out.Blocks = append(out.Blocks, hcl.BlockHeaderSchema{Type: name})
	}
	return out
}

// TestExamplesMatchSchemas parses every example with hclparse and checks each
// kiln provider, resource and data block against the provider's schemas.
func TestExamplesMatchSchemas(t *testing.T) {
	server, err := providerserver.NewProtocol6WithError(New("test")())()
	if err != nil {
		t.Fatal(err)
	}
	schemas, err := server.GetProviderSchema(context.Background(), &tfprotov6.GetProviderSchemaRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range schemas.Diagnostics {
		t.Errorf("provider schema: %s: %s", d.Summary, d.Detail)
	}
	providerSchema := fromBlock(schemas.Provider.Block)
	resources := map[string]bodySchema{}
	for name, rs := range schemas.ResourceSchemas {
		resources[name] = fromBlock(rs.Block)
	}
	dataSources := map[string]bodySchema{}
	for name, ds := range schemas.DataSourceSchemas {
		dataSources[name] = fromBlock(ds.Block)
	}

	files := 0
	err = filepath.WalkDir("../examples", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".tf") {
			return err
		}
		files++
		parser := hclparse.NewParser()
		f, diags := parser.ParseHCLFile(path)
		if diags.HasErrors() {
			t.Errorf("%s: %s", path, diags.Error())
			return nil
		}
		top, _, diags := f.Body.PartialContent(&hcl.BodySchema{Blocks: []hcl.BlockHeaderSchema{
			{Type: "resource", LabelNames: []string{"type", "name"}},
			{Type: "data", LabelNames: []string{"type", "name"}},
			{Type: "provider", LabelNames: []string{"name"}},
		}})
		if diags.HasErrors() {
			t.Errorf("%s: %s", path, diags.Error())
			return nil
		}
		for _, block := range top.Blocks {
			switch {
			case block.Type == "provider" && block.Labels[0] == "kiln":
				checkBody(t, path, "provider kiln", block.Body, providerSchema)
			case block.Type == "resource" && strings.HasPrefix(block.Labels[0], "kiln_"):
				s, ok := resources[block.Labels[0]]
				if !ok {
					t.Errorf("%s: unknown resource type %s", path, block.Labels[0])
					continue
				}
				checkBody(t, path, block.Labels[0]+"."+block.Labels[1], block.Body, s)
			case block.Type == "data" && strings.HasPrefix(block.Labels[0], "kiln_"):
				s, ok := dataSources[block.Labels[0]]
				if !ok {
					t.Errorf("%s: unknown data source type %s", path, block.Labels[0])
					continue
				}
				checkBody(t, path, "data."+block.Labels[0]+"."+block.Labels[1], block.Body, s)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files == 0 {
		t.Fatal("no examples found")
	}
}

// Meta-arguments Terraform accepts in every resource block.
var metaAttributes = []string{"count", "for_each", "depends_on", "provider"}

func checkBody(t *testing.T, file, where string, body hcl.Body, s bodySchema) {
	t.Helper()
	schema := s.hcl()
	for _, m := range metaAttributes {
		schema.Attributes = append(schema.Attributes, hcl.AttributeSchema{Name: m})
	}
	schema.Blocks = append(schema.Blocks, hcl.BlockHeaderSchema{Type: "lifecycle"},
		hcl.BlockHeaderSchema{Type: "dynamic", LabelNames: []string{"type"}})
	content, diags := body.Content(schema)
	if diags.HasErrors() {
		t.Errorf("%s: %s: %s", file, where, diags.Error())
		return
	}
	for _, name := range s.required {
		if _, ok := content.Attributes[name]; !ok {
			t.Errorf("%s: %s: required attribute %q missing", file, where, name)
		}
	}
	for _, block := range content.Blocks {
		if block.Type == "dynamic" {
			// A dynamic block's content block is checked as the block it makes.
			nested, ok := s.blocks[block.Labels[0]]
			if !ok {
				t.Errorf("%s: %s: dynamic %q: no such block", file, where, block.Labels[0])
				continue
			}
			inner, _, diags := block.Body.PartialContent(&hcl.BodySchema{Blocks: []hcl.BlockHeaderSchema{{Type: "content"}}})
			if diags.HasErrors() || len(inner.Blocks) != 1 {
				t.Errorf("%s: %s: dynamic %q needs one content block", file, where, block.Labels[0])
				continue
			}
			checkBody(t, file, where+"."+block.Labels[0], inner.Blocks[0].Body, nested)
			continue
		}
		if nested, ok := s.blocks[block.Type]; ok {
			checkBody(t, file, where+"."+block.Type, block.Body, nested)
		}
	}
}
