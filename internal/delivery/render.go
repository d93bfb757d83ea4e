package delivery

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

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

// Substitute replaces each ${name} in tmpl with vars[name]; an undefined
// placeholder is an error naming it.
func Substitute(tmpl string, vars map[string]string) (string, error) {
	var missing []string
	out := placeholder.ReplaceAllStringFunc(tmpl, func(m string) string {
		name := m[2 : len(m)-1]
		v, ok := vars[name]
		if !ok {
			missing = append(missing, "${"+name+"}")
			return m
		}
		return v
	})
	if len(missing) > 0 {
		return "", fmt.Errorf("undefined placeholders %s", strings.Join(missing, ", "))
	}
	return out, nil
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
		vars["image"] = image
	}
	text, err := Substitute(tmpl, vars)
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
