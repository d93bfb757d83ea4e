package delivery

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/kilnhq/terraform-provider-kiln/internal/delivery/history"
	"github.com/kilnhq/terraform-provider-kiln/internal/delivery/label"
	"github.com/kilnhq/terraform-provider-kiln/internal/kube"
)

// DefaultHistoryLimit is how many release records are kept per environment.
const DefaultHistoryLimit = 10

// minRollbackTimeout is the least time a rollback waits for each group's rollout.
const minRollbackTimeout = time.Minute

// ReleaseSpec asks for one version of a project in an environment.
type ReleaseSpec struct {
	Project, Env, Version string
	// Images maps a service to its image.
	Images map[string]string
	// Only restricts the release to these services; the others keep what the
	// last deployed revision gave them. Empty means every service.
	Only              []string
	ForceConflicts    bool
	RollbackOnFailure bool
	HistoryLimit      int
	// RolloutTimeout bounds the wait for each startup group.
	RolloutTimeout time.Duration
}

// ReleaseState is a release as read back: its last deployed record and what
// differs in the cluster from the fields kiln owned after applying it.
type ReleaseState struct {
	Record *history.Record
	Drift  []string
}

type target struct {
	project Project
	env     Environment
	store   history.History
	records []*history.Record
	current *history.Record // the last deployed revision, nil for none
}

// plainTarget reads the project and environment, not the history.
func (e *Engine) plainTarget(ctx context.Context, project, env string) (target, error) {
	p, err := e.ReadProject(ctx, project)
	if err != nil {
		return target{}, err
	}
	en, err := e.ReadEnvironment(ctx, project, env)
	if err != nil {
		return target{}, err
	}
	return target{project: p, env: en, store: history.History{Driver: e.storage(en.Namespace)}}, nil
}

func (e *Engine) target(ctx context.Context, project, env string) (target, error) {
	t, err := e.plainTarget(ctx, project, env)
	if err != nil {
		return t, err
	}
	t.records, err = t.store.List(ctx, project, env)
	if err != nil {
		return t, err
	}
	t.current, _ = history.Latest(t.records, history.StatusDeployed)
	return t, nil
}

func nextRevision(records []*history.Record) int {
	if len(records) == 0 {
		return 1
	}
	return records[len(records)-1].Revision + 1
}

// Plan renders a release without touching the cluster, to find bad input early:
// unknown services, missing images or variables, invalid YAML.
func (e *Engine) Plan(ctx context.Context, spec ReleaseSpec) error {
	t, err := e.plainTarget(ctx, spec.Project, spec.Env)
	if err != nil {
		return err
	}
	if len(spec.Only) > 0 {
		deployed, err := t.store.Query(ctx, spec.Project, spec.Env, history.StatusDeployed)
		if err != nil {
			return err
		}
		t.current, _ = history.Latest(deployed)
	}
	_, _, err = t.render(spec)
	return err
}

// render renders the services a spec selects, with the images it gives (over the
// current revision's for a subset release).
func (t target) render(spec ReleaseSpec) (map[string]Rendered, map[string]string, error) {
	images := map[string]string{}
	if len(spec.Only) > 0 && t.current != nil {
		for k, v := range t.current.Images {
			images[k] = v
		}
	}
	for k, v := range spec.Images {
		if _, ok := t.project.Services[k]; !ok {
			return nil, nil, fmt.Errorf("release of %s/%s: project has no service %q (it has %s)",
				spec.Project, spec.Env, k, strings.Join(sortedKeys(t.project.Services), ", "))
		}
		images[k] = v
	}
	selected := spec.Only
	if len(selected) == 0 {
		selected = sortedKeys(t.project.Services)
	}
	out := map[string]Rendered{}
	var errs []error
	for _, s := range selected {
		r, err := RenderService(t.project, t.env, spec.Version, s, images[s])
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out[s] = r
	}
	return out, images, errors.Join(errs...)
}

// apply applies rendered services group by group in the project's startup order,
// waiting for each group's rollout; it returns what it applied.
func (e *Engine) apply(ctx context.Context, t target, rendered map[string]Rendered, force bool, timeout time.Duration) ([]history.Object, error) {
	// What kiln owned after the current revision's apply: fields of it that an
	// out-of-band edit took over are drift, and kiln takes them back.
	owned := map[kube.Ref]map[string]any{}
	if t.current != nil {
		for _, o := range t.current.Objects {
			owned[o.Ref] = o.Owned
		}
	}
	var applied []history.Object
	for gi, group := range t.project.Order(sortedKeys(rendered)) {
		e.log(ctx, "applying startup group", map[string]any{"group": gi + 1, "services": group})
		var refs []kube.Ref
		for _, s := range group {
			for _, obj := range rendered[s].Objects {
				live, err := e.Kube.ApplyReclaiming(ctx, obj, force, owned[kube.RefOf(obj)])
				if err != nil {
					return applied, fmt.Errorf("startup group %d, service %q: %w", gi+1, s, err)
				}
				owned, err := kube.Owned(live)
				if err != nil {
					return applied, fmt.Errorf("startup group %d, service %q: %w", gi+1, s, err)
				}
				applied = append(applied, history.Object{Service: s, Ref: kube.RefOf(live), Owned: owned})
				refs = append(refs, kube.RefOf(live))
			}
		}
		wctx, cancel := context.WithTimeout(ctx, timeout)
		err := e.Kube.WaitRollout(wctx, refs)
		cancel()
		if err != nil {
			return applied, fmt.Errorf("startup group %d (%s): %w", gi+1, strings.Join(group, ", "), err)
		}
	}
	return applied, nil
}

// prune deletes the objects of before that are not in after.
func (e *Engine) prune(ctx context.Context, before, after []history.Object) error {
	keep := map[kube.Ref]bool{}
	for _, o := range after {
		keep[o.Ref] = true
	}
	for _, o := range before {
		if !keep[o.Ref] {
			if err := e.Kube.Delete(ctx, o.Ref); err != nil {
				return fmt.Errorf("prune: %w", err)
			}
		}
	}
	return nil
}

// Deploy releases a version: it renders the selected services, applies them in
// startup order waiting for each group's rollout, prunes objects that left the
// render, and records the revision (the previous deployed one becomes
// superseded). When the rollout fails, the revision is recorded as failed and,
// with RollbackOnFailure, the last deployed revision is restored as a new one.
func (e *Engine) Deploy(ctx context.Context, spec ReleaseSpec) (*history.Record, error) {
	where := fmt.Sprintf("release %s of %s/%s", spec.Version, spec.Project, spec.Env)
	if spec.RolloutTimeout <= 0 {
		spec.RolloutTimeout = 5 * time.Minute
	}
	if spec.HistoryLimit <= 0 {
		spec.HistoryLimit = DefaultHistoryLimit
	}
	t, err := e.target(ctx, spec.Project, spec.Env)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	t.store.Limit = spec.HistoryLimit
	rendered, images, err := t.render(spec)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	rec := &history.Record{
		Project: spec.Project, Env: spec.Env, Namespace: t.env.Namespace, Version: spec.Version,
		Revision: nextRevision(t.records), Images: images, Render: map[string]string{}, Started: time.Now().UTC(),
	}
	// Services outside a subset release keep the current revision's objects.
	var before []history.Object
	if t.current != nil {
		before = t.current.Objects
		for s, y := range t.current.Render {
			if _, ok := rendered[s]; !ok {
				if _, still := t.project.Services[s]; still {
					rec.Render[s] = y
				}
			}
		}
		for _, o := range t.current.Objects {
			if _, ok := rendered[o.Service]; !ok {
				if _, still := t.project.Services[o.Service]; still {
					rec.Objects = append(rec.Objects, o)
				}
			}
		}
	}
	for s, r := range rendered {
		rec.Render[s] = r.YAML
	}
	rec.Services = sortedKeys(rec.Render)
	e.log(ctx, "deploying release", map[string]any{"project": spec.Project, "env": spec.Env, "version": spec.Version, "revision": rec.Revision})
	applied, err := e.apply(ctx, t, rendered, spec.ForceConflicts, spec.RolloutTimeout)
	rec.Objects = append(rec.Objects, applied...)
	if err == nil {
		err = e.prune(ctx, before, rec.Objects)
	}
	rec.Finished = time.Now().UTC()
	if err != nil {
		rec.Status, rec.Description = history.StatusFailed, err.Error()
		if serr := t.store.Create(ctx, rec); serr != nil {
			return nil, fmt.Errorf("%s: %w (and recording the failure: %v)", where, err, serr)
		}
		failure := fmt.Errorf("%s (revision %d) failed: %w", where, rec.Revision, err)
		if !spec.RollbackOnFailure || t.current == nil {
			return rec, failure
		}
		rb, rerr := e.restore(ctx, t, t.current, rec, spec)
		if rerr != nil {
			return rec, fmt.Errorf("%w; rollback to revision %d also failed: %v", failure, t.current.Revision, rerr)
		}
		return rb, fmt.Errorf("%w; rolled back to revision %d (version %s) as revision %d",
			failure, t.current.Revision, t.current.Version, rb.Revision)
	}
	rec.Status, rec.Description = history.StatusDeployed, "release "+spec.Version
	if err := t.store.Create(ctx, rec); err != nil {
		return rec, fmt.Errorf("%s: %w", where, err)
	}
	return rec, nil
}

// restore re-applies an earlier revision's render as a new revision.
func (e *Engine) restore(ctx context.Context, t target, from, failed *history.Record, spec ReleaseSpec) (*history.Record, error) {
	rendered := map[string]Rendered{}
	for s, y := range from.Render {
		objs, err := parseDocuments(y)
		if err == nil {
			err = place(objs, from.Project, from.Env, from.Namespace, s)
		}
		if err != nil {
			return nil, fmt.Errorf("revision %d, service %q: %w", from.Revision, s, err)
		}
		rendered[s] = Rendered{Service: s, YAML: y, Objects: objs}
	}
	rec := &history.Record{
		Project: from.Project, Env: from.Env, Namespace: from.Namespace, Version: from.Version,
		Revision: failed.Revision + 1, Images: from.Images, Render: from.Render, Services: from.Services,
		RollbackOf: from.Revision, Started: time.Now().UTC(),
		Description: fmt.Sprintf("rollback to revision %d after revision %d failed", from.Revision, failed.Revision),
	}
	e.log(ctx, "rolling back", map[string]any{"to": from.Revision, "revision": rec.Revision})
	// A rollback returns to a revision that rolled out before; it gets at least
	// a minute per group, whatever the failed release's rollout timeout was.
	applied, err := e.apply(ctx, t, rendered, true, max(spec.RolloutTimeout, minRollbackTimeout))
	rec.Objects = applied
	if err == nil {
		err = e.prune(ctx, failed.Objects, rec.Objects)
	}
	rec.Finished = time.Now().UTC()
	if err != nil {
		rec.Status, rec.Description = history.StatusFailed, rec.Description+": "+err.Error()
		_ = t.store.Create(ctx, rec)
		return nil, err
	}
	rec.Status = history.StatusDeployed
	return rec, t.store.Create(ctx, rec)
}

// ReadRelease reads the last deployed revision and compares the fields kiln
// owned after applying it with the live objects: one list call per kind in the
// environment's namespace, not one request per object.
func (e *Engine) ReadRelease(ctx context.Context, project, env string) (*ReleaseState, error) {
	where := fmt.Sprintf("release of %s/%s", project, env)
	en, err := e.ReadEnvironment(ctx, project, env)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	deployed, err := e.storage(en.Namespace).Query(ctx, project, env, history.StatusDeployed)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	rec, err := history.Latest(deployed)
	if err != nil {
		return nil, fmt.Errorf("%s: no deployed revision: %w", where, err)
	}
	live, err := e.liveObjects(ctx, project, env, en.Namespace, rec.Objects)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	st := &ReleaseState{Record: rec}
	for _, o := range rec.Objects {
		u, ok := live[o.Ref]
		if !ok {
			st.Drift = append(st.Drift, fmt.Sprintf("%s: deleted", o.Ref))
			continue
		}
		if o.Owned == nil {
			continue
		}
		d, err := kube.Drift(o.Owned, u)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		st.Drift = append(st.Drift, d...)
	}
	sort.Strings(st.Drift)
	return st, nil
}

// liveObjects lists the kinds of objs in namespace, selecting kiln's labels.
func (e *Engine) liveObjects(ctx context.Context, project, env, namespace string, objs []history.Object) (map[kube.Ref]*unstructured.Unstructured, error) {
	type kind struct{ apiVersion, kind string }
	kinds := map[kind]bool{}
	for _, o := range objs {
		kinds[kind{o.Ref.APIVersion, o.Ref.Kind}] = true
	}
	sel := labels.SelectorFromSet(labels.Set{label.ManagedBy: label.Kiln, label.Project: project, label.Env: env}).String()
	out := map[kube.Ref]*unstructured.Unstructured{}
	for k := range kinds {
		items, err := e.Kube.List(ctx, k.apiVersion, k.kind, namespace, sel)
		if err != nil {
			return nil, err
		}
		for i := range items {
			u := &items[i]
			// List responses carry no kind on items through some paths.
			u.SetAPIVersion(k.apiVersion)
			u.SetKind(k.kind)
			out[kube.RefOf(u)] = u
		}
	}
	return out, nil
}

// History returns an environment's release records, oldest first.
func (e *Engine) History(ctx context.Context, project, env string) ([]*history.Record, error) {
	en, err := e.ReadEnvironment(ctx, project, env)
	if err != nil {
		return nil, fmt.Errorf("release history of %s/%s: %w", project, env, err)
	}
	return e.storage(en.Namespace).List(ctx, project, env)
}

// DeleteRelease deletes the objects of the last deployed revision and every record.
func (e *Engine) DeleteRelease(ctx context.Context, project, env string) error {
	where := fmt.Sprintf("release of %s/%s", project, env)
	en, err := e.ReadEnvironment(ctx, project, env)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	store := e.storage(en.Namespace)
	records, err := store.List(ctx, project, env)
	if err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	if cur, err := history.Latest(records, history.StatusDeployed); err == nil {
		if err := e.prune(ctx, cur.Objects, nil); err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
	}
	for _, r := range records {
		if err := store.Delete(ctx, project, env, r.Revision); err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
	}
	return nil
}

// ServiceStatus is the live state of one service's workloads.
type ServiceStatus struct {
	Service   string
	Kind      string
	Name      string
	Images    []string
	RolledOut bool
	Message   string
}

// Status lists the live workloads of an environment with their images and rollout state.
func (e *Engine) Status(ctx context.Context, project, env string) (Environment, []ServiceStatus, error) {
	en, err := e.ReadEnvironment(ctx, project, env)
	if err != nil {
		return en, nil, err
	}
	sel := labels.SelectorFromSet(labels.Set{label.ManagedBy: label.Kiln, label.Project: project, label.Env: env}).String()
	var out []ServiceStatus
	for _, k := range []string{"Deployment", "StatefulSet", "DaemonSet"} {
		items, err := e.Kube.List(ctx, "apps/v1", k, en.Namespace, sel)
		if err != nil {
			return en, nil, fmt.Errorf("status of %s/%s: %w", project, env, err)
		}
		for i := range items {
			u := &items[i]
			u.SetKind(k)
			done, msg := kube.RolloutStatus(u)
			out = append(out, ServiceStatus{Service: u.GetLabels()[label.Service], Kind: k, Name: u.GetName(),
				Images: kube.Images(u), RolledOut: done, Message: msg})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Service != out[j].Service {
			return out[i].Service < out[j].Service
		}
		return out[i].Name < out[j].Name
	})
	return en, out, nil
}
