package delivery

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	yaml3 "go.yaml.in/yaml/v3"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/kilnhq/terraform-provider-kiln/internal/delivery/label"
)

// parseDocuments splits a YAML stream into objects; each needs apiVersion, kind
// and metadata.name.
func parseDocuments(text string) ([]*unstructured.Unstructured, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(strings.NewReader(text)))
	var out []*unstructured.Unstructured
	for i := 1; ; i++ {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("YAML document %d: %w", i, err)
		}
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		js, err := yaml.YAMLToJSON(doc)
		if err != nil {
			return nil, fmt.Errorf("YAML document %d: %w", i, err)
		}
		if string(js) == "null" {
			continue
		}
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(js); err != nil {
			return nil, fmt.Errorf("YAML document %d: %w", i, err)
		}
		if u.GetName() == "" {
			return nil, fmt.Errorf("YAML document %d (%s): metadata.name is missing", i, u.GetKind())
		}
		out = append(out, u)
	}
	if len(out) == 0 {
		return nil, errors.New("no Kubernetes objects in the YAML")
	}
	return out, nil
}

// Rendered is one service rendered for an environment.
type Rendered struct {
	Service string
	YAML    string
	Objects []*unstructured.Unstructured
}

// substitute places values into the scalars of a YAML node tree, never into
// its text, so no value can add a document, a key or an object. In the tree,
// token stands for placeholder i of names (see renderDocuments). A scalar that
// is exactly one unquoted placeholder takes the type its value reads as
// (`replicas: ${replicas}` is a number); quoted scalars and scalars with other
// text stay strings. Undefined placeholders are collected in missing.
func substitute(n *yaml3.Node, token *regexp.Regexp, names []string, vars map[string]string, missing map[string]bool) {
	if n.Kind == yaml3.ScalarNode && token.MatchString(n.Value) {
		whole := token.FindString(n.Value) == n.Value
		n.Value = token.ReplaceAllStringFunc(n.Value, func(m string) string {
			i, _ := strconv.Atoi(token.FindStringSubmatch(m)[1])
			v, ok := vars[names[i]]
			if !ok {
				missing["${"+names[i]+"}"] = true
			}
			return v
		})
		if whole && n.Style == 0 {
			n.Tag = ""
		}
	}
	// Comments are not substituted; the render is data, they go.
	n.HeadComment, n.LineComment, n.FootComment = "", "", ""
	for _, c := range n.Content {
		substitute(c, token, names, vars, missing)
	}
}

// renderDocuments parses a template's YAML documents, places the values of
// vars into their scalars and returns the rendered YAML, re-encoded. While the
// template is parsed, each placeholder is replaced by a token that is a plain
// scalar anywhere, so placeholders may sit where YAML syntax matters
// (`{app: ${service}}`); a random nonce keeps tokens from meeting template text.
func renderDocuments(tmpl string, vars map[string]string) (string, error) {
	nonce := make([]byte, 6)
	_, _ = rand.Read(nonce)
	prefix := "kiln" + hex.EncodeToString(nonce) + "p"
	var names []string
	text := placeholder.ReplaceAllStringFunc(tmpl, func(m string) string {
		names = append(names, m[2:len(m)-1])
		return prefix + strconv.Itoa(len(names)-1) + "x"
	})
	token := regexp.MustCompile(prefix + `([0-9]+)x`)
	dec := yaml3.NewDecoder(strings.NewReader(text))
	missing := map[string]bool{}
	var docs []string
	for i := 1; ; i++ {
		var doc yaml3.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return "", fmt.Errorf("YAML document %d: %w", i, err)
		}
		substitute(&doc, token, names, vars, missing)
		out, err := yaml3.Marshal(&doc)
		if err != nil {
			return "", fmt.Errorf("YAML document %d: %w", i, err)
		}
		docs = append(docs, string(out))
	}
	if len(missing) > 0 {
		return "", fmt.Errorf("undefined placeholders %s", strings.Join(sortedKeys(missing), ", "))
	}
	return strings.Join(docs, "---\n"), nil
}

// ValidImage checks an image reference's grammar (registry, repository, tag or
// digest): a reference is one token, never YAML.
func ValidImage(ref string) error {
	if _, err := name.ParseReference(ref); err != nil {
		return fmt.Errorf("%q is not a valid image reference: %w", ref, err)
	}
	return nil
}

// RenderService renders one service's template for env: the project's variables,
// the environment's over them, the built-ins, and the service's image. Every object
// is placed in the environment's namespace and labelled for kiln.
func RenderService(p Project, env Environment, version, service, image string) (Rendered, error) {
	tmpl, ok := p.Services[service]
	if !ok {
		return Rendered{}, fmt.Errorf("project %q has no service %q", p.Name, service)
	}
	vars := map[string]string{}
	for k, v := range p.Variables {
		vars[k] = v
	}
	for k, v := range env.Variables {
		vars[k] = v
	}
	vars["project"], vars["env"], vars["namespace"] = p.Name, env.Name, env.Namespace
	vars["service"], vars["version"], vars["ingress_domain"] = service, version, env.IngressDomain
	if image != "" {
		if err := ValidImage(image); err != nil {
			return Rendered{}, fmt.Errorf("render service %q: %w", service, err)
		}
		vars["image"] = image
	}
	text, err := renderDocuments(tmpl, vars)
	if err != nil {
		if image == "" && strings.Contains(err.Error(), "${image}") {
			return Rendered{}, fmt.Errorf("render service %q: it uses ${image} but the release gives it no image", service)
		}
		return Rendered{}, fmt.Errorf("render service %q: %w", service, err)
	}
	objs, err := parseDocuments(text)
	if err != nil {
		return Rendered{}, fmt.Errorf("render service %q: %w", service, err)
	}
	if err := place(objs, p.Name, env.Name, env.Namespace, service); err != nil {
		return Rendered{}, fmt.Errorf("render service %q: %w", service, err)
	}
	return Rendered{Service: service, YAML: text, Objects: objs}, nil
}

// place puts rendered objects in the environment's namespace with kiln's labels.
func place(objs []*unstructured.Unstructured, project, env, namespace, service string) error {
	for _, u := range objs {
		if ns := u.GetNamespace(); ns != "" && ns != namespace {
			return fmt.Errorf("%s %s sets namespace %q; objects go to the environment's namespace %q",
				u.GetKind(), u.GetName(), ns, namespace)
		}
		u.SetNamespace(namespace)
		l := u.GetLabels()
		if l == nil {
			l = map[string]string{}
		}
		l[label.ManagedBy], l[label.Project], l[label.Env], l[label.Service] = label.Kiln, project, env, service
		u.SetLabels(l)
	}
	return nil
}
