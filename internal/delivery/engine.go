package delivery

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/kilnhq/terraform-provider-kiln/internal/delivery/history"
	"github.com/kilnhq/terraform-provider-kiln/internal/delivery/label"
	"github.com/kilnhq/terraform-provider-kiln/internal/kube"
)

// ErrNotFound reports that a project, environment or release does not exist.
var ErrNotFound = kube.ErrNotFound

// Engine runs the delivery model against one cluster.
type Engine struct {
	Kube *kube.Client
	// Log receives progress messages; nil discards them.
	Log kube.Logger
	// Storage returns the release history driver of a namespace; nil means
	// Secrets in that namespace (history.Secrets).
	Storage func(namespace string) history.Driver
}

func (e *Engine) log(ctx context.Context, msg string, fields map[string]any) {
	if e.Log != nil {
		e.Log(ctx, msg, fields)
	}
}

func (e *Engine) storage(namespace string) history.Driver {
	if e.Storage != nil {
		return e.Storage(namespace)
	}
	return &history.Secrets{Client: e.Kube, Namespace: namespace}
}

// Record kinds, in the label kiln.dev/kind of the ConfigMaps in a control namespace.
const (
	kindProject     = "project"
	kindEnvironment = "environment"
)

func projectRecordName(project string) string { return "kiln-project-" + project }
func envRecordName(project, env string) string {
	return "kiln-env-" + project + "-" + env
}

func configMap(namespace, name string, lbls, data map[string]string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "ConfigMap"}}
	u.SetNamespace(namespace)
	u.SetName(name)
	u.SetLabels(lbls)
	d := map[string]any{}
	for k, v := range data {
		d[k] = v
	}
	u.Object["data"] = d
	return u
}

func recordLabels(kind, project, env string) map[string]string {
	l := map[string]string{label.ManagedBy: label.Kiln, label.Kind: kind, label.Project: project}
	if env != "" {
		l[label.Env] = env
	}
	return l
}

// ensureNamespace applies a namespace kiln needs (a control namespace); it is
// never deleted by kiln.
func (e *Engine) ensureNamespace(ctx context.Context, name string) error {
	cs, err := e.Kube.Typed()
	if err != nil {
		return err
	}
	if _, err := cs.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{}); err == nil {
		return nil
	}
	u := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Namespace"}}
	u.SetName(name)
	u.SetLabels(map[string]string{label.ManagedBy: label.Kiln})
	_, err = e.Kube.Apply(ctx, u, true)
	return err
}

// records lists the kiln records of a project (its own and its environments')
// in every namespace, with one list call.
func (e *Engine) records(ctx context.Context, project string, extra labels.Set) ([]unstructured.Unstructured, error) {
	sel := labels.Set{label.ManagedBy: label.Kiln, label.Project: project}
	for k, v := range extra {
		sel[k] = v
	}
	return e.Kube.List(ctx, "v1", "ConfigMap", "", labels.SelectorFromSet(sel).String())
}

func dataOf(u *unstructured.Unstructured) map[string]string {
	d, _, _ := unstructured.NestedStringMap(u.Object, "data")
	return d
}

// ApplyProject writes the project's record in its control namespace.
func (e *Engine) ApplyProject(ctx context.Context, p Project) error {
	if p.ControlNamespace == "" {
		p.ControlNamespace = DefaultControlNamespace
	}
	if err := e.ensureNamespace(ctx, p.ControlNamespace); err != nil {
		return fmt.Errorf("project %q: control namespace: %w", p.Name, err)
	}
	order, _ := json.Marshal(p.StartupOrder)
	vars, _ := json.Marshal(nonNil(p.Variables))
	pool, _ := json.Marshal(nonNil(p.BuildPoolLabels))
	data := map[string]string{
		"description":       p.Description,
		"image-rule":        p.ImageRule,
		"startup-order":     string(order),
		"variables":         string(vars),
		"build-pool-labels": string(pool),
	}
	for name, tmpl := range p.Services {
		data["service."+name+".yaml"] = tmpl
	}
	cm := configMap(p.ControlNamespace, projectRecordName(p.Name), recordLabels(kindProject, p.Name, ""), data)
	if _, err := e.Kube.Apply(ctx, cm, true); err != nil {
		return fmt.Errorf("project %q: write record: %w", p.Name, err)
	}
	e.log(ctx, "project recorded", map[string]any{"project": p.Name, "namespace": p.ControlNamespace})
	return nil
}

// ReadProject reads a project back from its record, wherever its control namespace is.
func (e *Engine) ReadProject(ctx context.Context, name string) (Project, error) {
	items, err := e.records(ctx, name, labels.Set{label.Kind: kindProject})
	if err != nil {
		return Project{}, fmt.Errorf("project %q: %w", name, err)
	}
	for i := range items {
		if items[i].GetName() == projectRecordName(name) {
			return projectFrom(&items[i])
		}
	}
	return Project{}, fmt.Errorf("project %q: %w", name, ErrNotFound)
}

func projectFrom(u *unstructured.Unstructured) (Project, error) {
	d := dataOf(u)
	p := Project{
		Name:             u.GetLabels()[label.Project],
		Description:      d["description"],
		ImageRule:        d["image-rule"],
		ControlNamespace: u.GetNamespace(),
		Services:         map[string]string{},
	}
	for k, v := range d {
		if name, ok := strings.CutPrefix(k, "service."); ok {
			p.Services[strings.TrimSuffix(name, ".yaml")] = v
		}
	}
	for key, into := range map[string]any{"startup-order": &p.StartupOrder, "variables": &p.Variables, "build-pool-labels": &p.BuildPoolLabels} {
		if d[key] == "" {
			continue
		}
		if err := json.Unmarshal([]byte(d[key]), into); err != nil {
			return p, fmt.Errorf("project %q: record field %s: %w", p.Name, key, err)
		}
	}
	return p, nil
}

// DeleteProject deletes the project's record; its environments' namespaces and
// releases are theirs to delete.
func (e *Engine) DeleteProject(ctx context.Context, p Project) error {
	ns := p.ControlNamespace
	if ns == "" {
		ns = DefaultControlNamespace
	}
	return e.Kube.Delete(ctx, kube.Ref{APIVersion: "v1", Kind: "ConfigMap", Namespace: ns, Name: projectRecordName(p.Name)})
}

func nonNil(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}
