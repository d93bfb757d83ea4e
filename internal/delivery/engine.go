package delivery

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kilnhq/terraform-provider-kiln/internal/delivery/history"
	"github.com/kilnhq/terraform-provider-kiln/internal/delivery/label"
	"github.com/kilnhq/terraform-provider-kiln/internal/kube"
)

// ErrNotFound reports that a project, environment or release does not exist.
var ErrNotFound = kube.ErrNotFound

// Engine runs the delivery model against one cluster.
//
// Trust: Kiln reads its records (projects, environments, release history)
// only from a project's control namespace, by name, and acts on nothing it did
// not record itself there. Only Kiln's identity (and cluster administrators)
// may write in a control namespace; the environments' namespaces may be
// writable by developers.
type Engine struct {
	Kube *kube.Client
	// Log receives progress messages; nil discards them.
	Log *slog.Logger
	// Storage returns the release history driver of a control namespace; nil
	// means Secrets in that namespace (history.Secrets).
	Storage func(namespace string) history.Driver
}

func (e *Engine) log(ctx context.Context, msg string, args ...any) {
	if e.Log != nil {
		e.Log.InfoContext(ctx, msg, args...)
	}
}

// history returns the release history kept in a control namespace.
func (e *Engine) history(control string, limit int) (history.History, error) {
	if e.Storage != nil {
		return history.History{Driver: e.Storage(control), Limit: limit}, nil
	}
	cs, err := e.Kube.Typed()
	if err != nil {
		return history.History{}, err
	}
	return history.History{Driver: &history.Secrets{Client: cs, Namespace: control}, Limit: limit}, nil
}

// Record kinds, in the label kiln.dev/kind of the ConfigMaps in a control namespace.
const (
	kindProject     = "project"
	kindEnvironment = "environment"
)

func projectRecordName(project string) string { return "kiln-project-" + project }

// envRecordName names an environment's record. A dot separates the project
// from the environment: both are DNS labels, which hold no dots, so shop/eu-prod
// and shop-eu/prod get different records.
func envRecordName(project, env string) string { return "kiln-env-" + project + "." + env }

func controlOrDefault(control string) string {
	if control == "" {
		return DefaultControlNamespace
	}
	return control
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

// readRecord reads a record ConfigMap of a control namespace by name and checks
// that it is the record of kind for project (and env).
func (e *Engine) readRecord(ctx context.Context, control, name, kind, project, env string) (map[string]string, error) {
	u, err := e.Kube.Get(ctx, kube.Ref{APIVersion: "v1", Kind: "ConfigMap", Namespace: control, Name: name})
	if err != nil {
		return nil, err
	}
	want := recordLabels(kind, project, env)
	for k, v := range want {
		if u.GetLabels()[k] != v {
			return nil, fmt.Errorf("record %s/%s is not the %s record of %s (label %s = %q)", control, name, kind, project, k, u.GetLabels()[k])
		}
	}
	d, _, _ := unstructured.NestedStringMap(u.Object, "data")
	return d, nil
}

// createNamespace creates a namespace unless it exists (kube.CreateNamespace).
func (e *Engine) createNamespace(ctx context.Context, meta metav1.ObjectMeta) (created bool, err error) {
	cs, err := e.Kube.Typed()
	if err != nil {
		return false, err
	}
	return kube.CreateNamespace(ctx, cs, meta)
}

// ApplyProject writes the project's record in its control namespace, which is
// created when missing and never deleted by kiln.
func (e *Engine) ApplyProject(ctx context.Context, p Project) error {
	p.ControlNamespace = controlOrDefault(p.ControlNamespace)
	meta := metav1.ObjectMeta{Name: p.ControlNamespace, Labels: map[string]string{label.ManagedBy: label.Kiln}}
	if _, err := e.createNamespace(ctx, meta); err != nil {
		return fmt.Errorf("project %q: control namespace: %w", p.Name, err)
	}
	order, _ := json.Marshal(p.StartupOrder)
	vars, _ := json.Marshal(nonNil(p.Variables))
	pool, _ := json.Marshal(nonNil(p.BuildPoolLabels))
	data := map[string]string{
		"description":          p.Description,
		"image-rule":           p.ImageRule,
		"startup-order":        string(order),
		"variables":            string(vars),
		"build-pool-labels":    string(pool),
		"allow-cluster-scoped": strconv.FormatBool(p.AllowClusterScoped),
	}
	for name, tmpl := range p.Services {
		data["service."+name+".yaml"] = tmpl
	}
	cm := configMap(p.ControlNamespace, projectRecordName(p.Name), recordLabels(kindProject, p.Name, ""), data)
	if _, err := e.Kube.Apply(ctx, cm, true); err != nil {
		return secretsOf(p, Environment{}).Error(fmt.Errorf("project %q: write record: %w", p.Name, err))
	}
	e.log(ctx, "project recorded", "project", p.Name, "namespace", p.ControlNamespace)
	return nil
}

// ReadProject reads a project back from its record in the control namespace.
func (e *Engine) ReadProject(ctx context.Context, control, name string) (Project, error) {
	control = controlOrDefault(control)
	d, err := e.readRecord(ctx, control, projectRecordName(name), kindProject, name, "")
	if err != nil {
		return Project{}, fmt.Errorf("project %q: %w", name, err)
	}
	p := Project{
		Name:               name,
		Description:        d["description"],
		ImageRule:          d["image-rule"],
		ControlNamespace:   control,
		AllowClusterScoped: d["allow-cluster-scoped"] == "true",
		Services:           map[string]string{},
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
	return e.Kube.Delete(ctx, kube.Ref{APIVersion: "v1", Kind: "ConfigMap", Namespace: controlOrDefault(p.ControlNamespace), Name: projectRecordName(p.Name)})
}

func nonNil(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}
