package delivery

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kilnhq/terraform-provider-kiln/internal/delivery/label"
	"github.com/kilnhq/terraform-provider-kiln/internal/kube"
	"github.com/kilnhq/terraform-provider-kiln/internal/wait"
)

// Names of the objects an environment owns in its namespace.
const (
	DefaultPullSecretName = "kiln-registry"
	QuotaName             = "kiln-quota"
	LimitRangeName        = "kiln-limits"
)

// Environment is a namespace a project deploys into, with variables and the
// objects kiln keeps there (a registry pull secret, a quota, a limit range).
type Environment struct {
	Project       string
	Name          string
	Namespace     string // default <project>-env-<name>
	Labels        map[string]string
	Annotations   map[string]string
	Variables     map[string]string
	IngressDomain string
	PullSecret    *PullSecret
	// Quota is a ResourceQuota's spec.hard; nil for none.
	Quota map[string]string
	// LimitDefaults and LimitDefaultRequests are a LimitRange's container
	// defaults; both nil for none.
	LimitDefaults        map[string]string
	LimitDefaultRequests map[string]string
	Production           bool
	// ControlNamespace is the project's control namespace, where the
	// environment's record and release history are kept.
	ControlNamespace string
	// NamespaceCreated is true when kiln created the namespace (and so deletes
	// it); the namespace carries AnnotationCreatedFor too, checked before deletion.
	NamespaceCreated bool
}

// AnnotationCreatedFor marks a namespace Kiln created, naming the environment
// (<control namespace>/<project>/<environment>) it was created for.
const AnnotationCreatedFor = "kiln.dev/created-for"

func (env Environment) createdFor() string {
	return controlOrDefault(env.ControlNamespace) + "/" + env.Project + "/" + env.Name
}

// createdByKiln reports whether a live namespace carries Kiln's mark of
// creation for env.
func (env Environment) createdByKiln(ns *unstructured.Unstructured) bool {
	return ns.GetAnnotations()[AnnotationCreatedFor] == env.createdFor()
}

// PullSecret is an image pull secret for one registry.
type PullSecret struct {
	Name     string
	Registry string
	Username string
	Password string
}

// DefaultNamespace is an environment's namespace when none is given.
func DefaultNamespace(project, env string) string { return project + "-env-" + env }

func (env Environment) namespaceObject() *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Namespace"}}
	u.SetName(env.Namespace)
	l := map[string]string{}
	for k, v := range env.Labels {
		l[k] = v
	}
	l[label.ManagedBy], l[label.Project], l[label.Env] = label.Kiln, env.Project, env.Name
	u.SetLabels(l)
	a := map[string]string{}
	for k, v := range env.Annotations {
		a[k] = v
	}
	if env.NamespaceCreated {
		a[AnnotationCreatedFor] = env.createdFor()
	}
	if len(a) > 0 {
		u.SetAnnotations(a)
	}
	return u
}

func dockerConfig(ps PullSecret) string {
	auth := base64.StdEncoding.EncodeToString([]byte(ps.Username + ":" + ps.Password))
	b, _ := json.Marshal(map[string]any{"auths": map[string]any{ps.Registry: map[string]string{
		"username": ps.Username, "password": ps.Password, "auth": auth,
	}}})
	return string(b)
}

func envObject(apiVersion, kind, namespace, name string, env Environment) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{"apiVersion": apiVersion, "kind": kind}}
	u.SetNamespace(namespace)
	u.SetName(name)
	u.SetLabels(map[string]string{label.ManagedBy: label.Kiln, label.Project: env.Project, label.Env: env.Name})
	return u
}

func anyMap(m map[string]string) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		out[k] = v
	}
	return out
}

// ApplyEnvironment creates or updates an environment: its namespace (created when
// missing, else only kiln's labels and annotations applied), pull secret, quota,
// limit range, and its record in the project's control namespace.
// prev is the environment as last applied (nil on create).
func (e *Engine) ApplyEnvironment(ctx context.Context, env Environment, prev *Environment) (Environment, error) {
	p, err := e.ReadProject(ctx, env.ControlNamespace, env.Project)
	if err != nil {
		return env, fmt.Errorf("environment %s/%s: %w", env.Project, env.Name, err)
	}
	got, err := e.applyEnvironment(ctx, env, prev)
	return got, secretsOf(p, env).Error(err)
}

func (e *Engine) applyEnvironment(ctx context.Context, env Environment, prev *Environment) (Environment, error) {
	if env.Namespace == "" {
		env.Namespace = DefaultNamespace(env.Project, env.Name)
	}
	env.ControlNamespace = controlOrDefault(env.ControlNamespace)
	where := fmt.Sprintf("environment %s/%s", env.Project, env.Name)
	if prev != nil {
		env.NamespaceCreated = prev.NamespaceCreated
	} else {
		created, err := e.createNamespace(ctx, metav1.ObjectMeta{Name: env.Namespace,
			Annotations: map[string]string{AnnotationCreatedFor: env.createdFor()}})
		if err != nil {
			return env, fmt.Errorf("%s: %w", where, err)
		}
		env.NamespaceCreated = created
	}
	// Kiln takes fields over only on a namespace it created: on another, a
	// label another manager set (a Pod Security level) stays theirs.
	if _, err := e.Kube.Apply(ctx, env.namespaceObject(), env.NamespaceCreated); err != nil {
		var conflict *kube.ConflictError
		if errors.As(err, &conflict) {
			return env, fmt.Errorf("%s: namespace %s, which Kiln did not create: %w; leave those labels and "+
				"annotations to their manager", where, env.Namespace, err)
		}
		return env, fmt.Errorf("%s: namespace: %w", where, err)
	}
	ns := env.Namespace
	del := func(kind, apiVersion, name string) error {
		return e.Kube.Delete(ctx, kube.Ref{APIVersion: apiVersion, Kind: kind, Namespace: ns, Name: name})
	}
	if prev != nil && prev.PullSecret != nil && (env.PullSecret == nil || env.PullSecret.Name != prev.PullSecret.Name) {
		if err := del("Secret", "v1", prev.PullSecret.Name); err != nil {
			return env, fmt.Errorf("%s: %w", where, err)
		}
	}
	if ps := env.PullSecret; ps != nil {
		if ps.Name == "" {
			ps.Name = DefaultPullSecretName
		}
		u := envObject("v1", "Secret", ns, ps.Name, env)
		u.Object["type"] = "kubernetes.io/dockerconfigjson"
		u.Object["stringData"] = map[string]any{".dockerconfigjson": dockerConfig(*ps)}
		if _, err := e.Kube.Apply(ctx, u, true); err != nil {
			return env, fmt.Errorf("%s: pull secret: %w", where, err)
		}
	}
	if env.Quota != nil {
		u := envObject("v1", "ResourceQuota", ns, QuotaName, env)
		u.Object["spec"] = map[string]any{"hard": anyMap(env.Quota)}
		if _, err := e.Kube.Apply(ctx, u, true); err != nil {
			return env, fmt.Errorf("%s: quota: %w", where, err)
		}
	} else if prev != nil && prev.Quota != nil {
		if err := del("ResourceQuota", "v1", QuotaName); err != nil {
			return env, fmt.Errorf("%s: %w", where, err)
		}
	}
	if env.LimitDefaults != nil || env.LimitDefaultRequests != nil {
		u := envObject("v1", "LimitRange", ns, LimitRangeName, env)
		limit := map[string]any{"type": "Container"}
		if env.LimitDefaults != nil {
			limit["default"] = anyMap(env.LimitDefaults)
		}
		if env.LimitDefaultRequests != nil {
			limit["defaultRequest"] = anyMap(env.LimitDefaultRequests)
		}
		u.Object["spec"] = map[string]any{"limits": []any{limit}}
		if _, err := e.Kube.Apply(ctx, u, true); err != nil {
			return env, fmt.Errorf("%s: limit range: %w", where, err)
		}
	} else if prev != nil && (prev.LimitDefaults != nil || prev.LimitDefaultRequests != nil) {
		if err := del("LimitRange", "v1", LimitRangeName); err != nil {
			return env, fmt.Errorf("%s: %w", where, err)
		}
	}
	if err := e.writeEnvRecord(ctx, env); err != nil {
		return env, fmt.Errorf("%s: %w", where, err)
	}
	e.log(ctx, "environment applied", "project", env.Project, "env", env.Name, "namespace", ns)
	return e.ReadEnvironment(ctx, env.ControlNamespace, env.Project, env.Name)
}

func keysOf(m map[string]string) []string {
	if m == nil {
		return nil
	}
	return sortedKeys(m)
}

func (e *Engine) writeEnvRecord(ctx context.Context, env Environment) error {
	js := func(v any) string { b, _ := json.Marshal(v); return string(b) }
	data := map[string]string{
		"namespace":         env.Namespace,
		"namespace-created": strconv.FormatBool(env.NamespaceCreated),
		"production":        strconv.FormatBool(env.Production),
		"variables":         js(nonNil(env.Variables)),
		"ingress-domain":    env.IngressDomain,
		"label-keys":        js(keysOf(env.Labels)),
		"annotation-keys":   js(keysOf(env.Annotations)),
		"quota":             js(env.Quota != nil),
		"limit-range":       js(env.LimitDefaults != nil || env.LimitDefaultRequests != nil),
		"limit-keys":        js(keysOf(env.LimitDefaults)),
		"request-keys":      js(keysOf(env.LimitDefaultRequests)),
	}
	if env.PullSecret != nil {
		data["pull-secret"] = env.PullSecret.Name
	}
	cm := configMap(env.ControlNamespace, envRecordName(env.Project, env.Name), recordLabels(kindEnvironment, env.Project, env.Name), data)
	if _, err := e.Kube.Apply(ctx, cm, true); err != nil {
		return fmt.Errorf("write record: %w", err)
	}
	return nil
}

// ReadEnvironment reads an environment back from its record in the control
// namespace and the live objects kiln owns: the namespace's kiln labels and
// annotations, the pull secret, the quota and the limit range. Keys other
// actors add are not reported.
func (e *Engine) ReadEnvironment(ctx context.Context, control, project, name string) (Environment, error) {
	where := fmt.Sprintf("environment %s/%s", project, name)
	control = controlOrDefault(control)
	rec, err := e.readRecord(ctx, control, envRecordName(project, name), kindEnvironment, project, name)
	if err != nil {
		return Environment{}, fmt.Errorf("%s: %w", where, err)
	}
	env := Environment{
		Project: project, Name: name, Namespace: rec["namespace"], IngressDomain: rec["ingress-domain"],
		Production: rec["production"] == "true", ControlNamespace: control,
	}
	var labelKeys, annotationKeys, limitKeys, requestKeys []string
	var hasQuota, hasLimits bool
	for key, into := range map[string]any{"variables": &env.Variables, "label-keys": &labelKeys,
		"annotation-keys": &annotationKeys, "quota": &hasQuota, "limit-range": &hasLimits,
		"limit-keys": &limitKeys, "request-keys": &requestKeys} {
		if rec[key] != "" {
			if err := json.Unmarshal([]byte(rec[key]), into); err != nil {
				return env, fmt.Errorf("%s: record field %s: %w", where, key, err)
			}
		}
	}
	nsObj, err := e.Kube.Get(ctx, kube.Ref{APIVersion: "v1", Kind: "Namespace", Name: env.Namespace})
	if err != nil {
		return env, fmt.Errorf("%s: %w", where, err)
	}
	pick := func(live map[string]string, keys []string) map[string]string {
		if keys == nil {
			return nil
		}
		out := map[string]string{}
		for _, k := range keys {
			if v, ok := live[k]; ok {
				out[k] = v
			}
		}
		return out
	}
	env.Labels = pick(nsObj.GetLabels(), labelKeys)
	env.Annotations = pick(nsObj.GetAnnotations(), annotationKeys)
	env.NamespaceCreated = rec["namespace-created"] == "true" && env.createdByKiln(nsObj)

	if psName := rec["pull-secret"]; psName != "" {
		env.PullSecret = &PullSecret{Name: psName}
		sec, err := e.Kube.Get(ctx, kube.Ref{APIVersion: "v1", Kind: "Secret", Namespace: env.Namespace, Name: psName})
		if err == nil {
			raw, _, _ := unstructured.NestedString(sec.Object, "data", ".dockerconfigjson")
			dec, _ := base64.StdEncoding.DecodeString(raw)
			var cfg struct {
				Auths map[string]struct{ Username, Password string } `json:"auths"`
			}
			if json.Unmarshal(dec, &cfg) == nil {
				for reg, a := range cfg.Auths {
					env.PullSecret.Registry, env.PullSecret.Username, env.PullSecret.Password = reg, a.Username, a.Password
				}
			}
		} else if !isNotFound(err) {
			return env, fmt.Errorf("%s: %w", where, err)
		}
	}
	if hasQuota {
		env.Quota = map[string]string{}
		q, err := e.Kube.Get(ctx, kube.Ref{APIVersion: "v1", Kind: "ResourceQuota", Namespace: env.Namespace, Name: QuotaName})
		if err == nil {
			hard, _, _ := unstructured.NestedStringMap(q.Object, "spec", "hard")
			env.Quota = hard
		} else if !isNotFound(err) {
			return env, fmt.Errorf("%s: %w", where, err)
		}
	}
	if hasLimits {
		lr, err := e.Kube.Get(ctx, kube.Ref{APIVersion: "v1", Kind: "LimitRange", Namespace: env.Namespace, Name: LimitRangeName})
		if err == nil {
			limits, _, _ := unstructured.NestedSlice(lr.Object, "spec", "limits")
			for _, l := range limits {
				m, _ := l.(map[string]any)
				if m["type"] != "Container" {
					continue
				}
				// The API server fills defaults from each other: report kiln's keys only.
				def, _, _ := unstructured.NestedStringMap(m, "default")
				req, _, _ := unstructured.NestedStringMap(m, "defaultRequest")
				env.LimitDefaults, env.LimitDefaultRequests = pick(def, limitKeys), pick(req, requestKeys)
			}
		} else if !isNotFound(err) {
			return env, fmt.Errorf("%s: %w", where, err)
		}
	}
	return env, nil
}

func isNotFound(err error) bool { return err != nil && errors.Is(err, ErrNotFound) }

// DeleteEnvironment deletes what kiln made: the namespace when kiln created it
// (waiting until it is gone), else only kiln's objects and labels in it; then
// the record. A production environment is refused unless force is set.
func (e *Engine) DeleteEnvironment(ctx context.Context, env Environment, force bool) error {
	where := fmt.Sprintf("environment %s/%s", env.Project, env.Name)
	if env.Production && !force {
		return fmt.Errorf("%s is a production environment: set force_destroy = true to delete it", where)
	}
	nsRef := kube.Ref{APIVersion: "v1", Kind: "Namespace", Name: env.Namespace}
	if env.NamespaceCreated {
		// Deleted only when it still carries Kiln's mark of creation for env.
		ns, err := e.Kube.Get(ctx, nsRef)
		switch {
		case isNotFound(err):
			env.NamespaceCreated = false
		case err != nil:
			return fmt.Errorf("%s: %w", where, err)
		case !env.createdByKiln(ns):
			e.log(ctx, "namespace lacks kiln's mark of creation: releasing it instead of deleting it", "namespace", env.Namespace, "annotation", AnnotationCreatedFor)
			env.NamespaceCreated = false
		}
	}
	if env.NamespaceCreated {
		if err := e.Kube.Delete(ctx, nsRef); err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
		err := wait.Until(ctx, "namespace "+env.Namespace+" to be deleted", wait.Backoff{Initial: 200 * time.Millisecond, Max: 2 * time.Second},
			func(ctx context.Context) (bool, error) {
				_, err := e.Kube.Get(ctx, nsRef)
				if isNotFound(err) {
					return true, nil
				}
				return false, wait.Transient(err)
			})
		if err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
	} else {
		for _, r := range []kube.Ref{
			{APIVersion: "v1", Kind: "ResourceQuota", Namespace: env.Namespace, Name: QuotaName},
			{APIVersion: "v1", Kind: "LimitRange", Namespace: env.Namespace, Name: LimitRangeName},
		} {
			if err := e.Kube.Delete(ctx, r); err != nil {
				return fmt.Errorf("%s: %w", where, err)
			}
		}
		if env.PullSecret != nil {
			if err := e.Kube.Delete(ctx, kube.Ref{APIVersion: "v1", Kind: "Secret", Namespace: env.Namespace, Name: env.PullSecret.Name}); err != nil {
				return fmt.Errorf("%s: %w", where, err)
			}
		}
		// Applying the namespace with no fields drops the labels kiln alone
		// owned; labels another manager also owns stay.
		bare := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Namespace"}}
		bare.SetName(env.Namespace)
		if _, err := e.Kube.Apply(ctx, bare, false); err != nil && !isNotFound(err) {
			return fmt.Errorf("%s: release the namespace: %w", where, err)
		}
	}
	record := kube.Ref{APIVersion: "v1", Kind: "ConfigMap", Namespace: controlOrDefault(env.ControlNamespace), Name: envRecordName(env.Project, env.Name)}
	if err := e.Kube.Delete(ctx, record); err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	return nil
}
