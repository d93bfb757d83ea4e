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
	"github.com/kilnhq/terraform-provider-kiln/internal/redact"
)

// DefaultHistoryLimit is how many release records are kept per environment.
const DefaultHistoryLimit = 10

// minRollbackTimeout is the least time a rollback waits for each group's rollout.
const minRollbackTimeout = time.Minute

// recordTimeout bounds writing a revision's record once its objects were
// applied; the write has a context of its own, so that what was applied is
// recorded even when the caller's deadline has passed.
const recordTimeout = time.Minute

// ReleaseSpec asks for one version of a project in an environment.
type ReleaseSpec struct {
	// ControlNamespace holds the project's and environment's records and the
	// release history; empty means DefaultControlNamespace.
	ControlNamespace      string
	Project, Env, Version string
	// Images maps a service to its image.
	Images map[string]string
	// FromVersion releases the project's version named Version (its record,
	// written by kiln_version): its images, in its startup order. Images must
	// be empty.
	FromVersion bool
	// Only restricts the release to these services; the others keep what the
	// last deployed revision gave them. Empty means every service.
	Only              []string
	ForceConflicts    bool
	RollbackOnFailure bool
	HistoryLimit      int
	// RolloutTimeout bounds the wait for each startup group.
	RolloutTimeout time.Duration
}

// ReleaseState is a release as read back: its last deployed record, what
// differs in the cluster from the fields kiln owned after applying it, and
// warnings about records that were ignored.
type ReleaseState struct {
	Record   *history.Record
	Drift    []string
	Warnings []string
}

type target struct {
	project Project
	env     Environment
	store   history.History
	// records are the environment's readable records for its namespace, oldest first.
	records []*history.Record
	current *history.Record // the last deployed revision, nil for none
	// next is the revision the next record gets.
	next     int
	warnings []string
	secrets  redact.Secrets
}

// plainTarget reads the project and environment, not the history.
func (e *Engine) plainTarget(ctx context.Context, control, project, env string, limit int) (target, error) {
	p, err := e.ReadProject(ctx, control, project)
	if err != nil {
		return target{}, err
	}
	en, err := e.ReadEnvironment(ctx, control, project, env)
	if err != nil {
		return target{}, err
	}
	store, err := e.history(p.ControlNamespace, limit)
	if err != nil {
		return target{}, err
	}
	return target{project: p, env: en, store: store, secrets: secretsOf(p, en), next: 1}, nil
}

// target reads the project, the environment and its history. A record made
// for another namespace than the environment's is ignored with a warning, as
// the history driver ignores records it cannot read.
func (e *Engine) target(ctx context.Context, control, project, env string, limit int) (target, error) {
	t, err := e.plainTarget(ctx, control, project, env, limit)
	if err != nil {
		return t, err
	}
	all, warnings, err := t.store.List(ctx, project, env)
	if err != nil {
		return t, err
	}
	t.warnings = warnings
	for _, r := range all {
		t.next = max(t.next, r.Revision+1)
		if r.Namespace != t.env.Namespace {
			t.warnings = append(t.warnings, fmt.Sprintf("ignoring the release record of revision %d of %s/%s: it is for namespace %q, the environment's is %q",
				r.Revision, project, env, r.Namespace, t.env.Namespace))
			continue
		}
		t.records = append(t.records, r)
	}
	t.current, _ = history.Latest(t.records, history.StatusDeployed)
	return t, nil
}

// baseline is what the cluster may hold of the environment's releases: the
// objects of the deployed revision and of every revision that failed since
// (a failed rollout leaves what it applied). Newer records come first, so the
// UID of an object's latest apply is the one kept.
func (t target) baseline() []history.Object {
	var out []history.Object
	seen := map[kube.Ref]bool{}
	for i := len(t.records) - 1; i >= 0; i-- {
		r := t.records[i]
		if t.current != nil && r.Revision < t.current.Revision {
			break
		}
		if r != t.current && r.Status != history.StatusFailed {
			continue
		}
		for _, o := range r.Objects {
			if !seen[o.Ref] {
				seen[o.Ref] = true
				out = append(out, o)
			}
		}
	}
	return out
}

// Plan renders a release without touching the cluster, to find bad input early:
// unknown services, missing images or variables, invalid YAML or image references.
func (e *Engine) Plan(ctx context.Context, spec ReleaseSpec) error {
	// A subset release renders over the deployed revision's images: only it
	// needs the history.
	load := e.plainTarget
	if len(spec.Only) > 0 {
		load = e.target
	}
	t, err := load(ctx, spec.ControlNamespace, spec.Project, spec.Env, 0)
	if err != nil {
		return err
	}
	if _, err := e.releasedVersion(ctx, &spec); err != nil {
		return err
	}
	_, _, err = t.render(spec)
	return t.secrets.Error(err)
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

// scope refuses cluster-scoped kinds unless the project allows them; those it
// allows are applied without a namespace.
func (e *Engine) scope(p Project, service string, objs []*unstructured.Unstructured) error {
	for _, u := range objs {
		namespaced, err := e.Kube.Namespaced(kube.RefOf(u))
		if err != nil {
			return fmt.Errorf("service %q: %w", service, err)
		}
		if namespaced {
			continue
		}
		if !p.AllowClusterScoped {
			return fmt.Errorf("service %q: %s %s is cluster-scoped; a project's services hold cluster-scoped kinds only "+
				"when the project allows them (allow_cluster_scoped)", service, u.GetKind(), u.GetName())
		}
		u.SetNamespace("")
	}
	return nil
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
		e.log(ctx, "applying startup group", "group", gi+1, "services", group)
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
				applied = append(applied, history.Object{Service: s, Ref: kube.RefOf(live), UID: live.GetUID(), Owned: owned})
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

// prune deletes the objects of before that are not in after, and only objects
// Kiln applied for this environment; any other is left alone with a warning.
func (e *Engine) prune(ctx context.Context, t *target, before, after []history.Object) error {
	keep := map[kube.Ref]bool{}
	for _, o := range after {
		keep[o.Ref] = true
	}
	for _, o := range before {
		if keep[o.Ref] {
			continue
		}
		ok, why, err := e.prunable(ctx, *t, o)
		if err != nil {
			return fmt.Errorf("prune: %w", err)
		}
		if why != "" {
			t.warnings = append(t.warnings, fmt.Sprintf("not pruning %s: %s", o.Ref, why))
		}
		if !ok {
			continue
		}
		if err := e.Kube.DeleteUID(ctx, o.Ref, o.UID); err != nil {
			return fmt.Errorf("prune: %w", err)
		}
	}
	return nil
}

// prunable reports whether o is still the object Kiln applied for t's
// environment: in its namespace (or cluster-scoped, where the project allows
// that), with Kiln's labels for the environment and the UID recorded. why
// says why not, unless the object is simply gone.
func (e *Engine) prunable(ctx context.Context, t target, o history.Object) (ok bool, why string, err error) {
	switch {
	case o.UID == "":
		return false, "its record holds no UID", nil
	case o.Ref.Namespace == "" && !t.project.AllowClusterScoped:
		return false, "it is cluster-scoped and the project does not allow cluster-scoped kinds", nil
	case o.Ref.Namespace != "" && o.Ref.Namespace != t.env.Namespace:
		return false, fmt.Sprintf("it is outside the environment's namespace %s", t.env.Namespace), nil
	}
	live, err := e.Kube.Get(ctx, o.Ref)
	if isNotFound(err) {
		return false, "", nil
	}
	if err != nil {
		return false, "", err
	}
	l := live.GetLabels()
	if l[label.ManagedBy] != label.Kiln || l[label.Project] != t.project.Name || l[label.Env] != t.env.Name {
		return false, "it does not carry Kiln's labels for this environment", nil
	}
	if live.GetUID() != o.UID {
		return false, "it is another object than the one Kiln applied (its UID differs)", nil
	}
	return true, "", nil
}

// checkSize refuses, before anything is applied, a revision whose record
// could not be stored: the record with every rendered object standing for the
// fields kiln will own of it (never more than the object).
func checkSize(rec *history.Record, rendered map[string]Rendered) error {
	est := *rec
	est.Objects = append([]history.Object(nil), rec.Objects...)
	for s, r := range rendered {
		for _, obj := range r.Objects {
			est.Objects = append(est.Objects, history.Object{Service: s, Ref: kube.RefOf(obj), Owned: obj.Object})
		}
	}
	return history.Check(&est)
}

// Deploy releases a version: it renders the selected services, applies them in
// startup order waiting for each group's rollout, prunes objects that left the
// render, and records the revision (the previous deployed one becomes
// superseded). When the rollout fails, the revision is recorded as failed and,
// with RollbackOnFailure, the last deployed revision is restored as a new one.
// It returns the revision recorded and warnings: records ignored, objects not
// pruned because Kiln did not apply them.
func (e *Engine) Deploy(ctx context.Context, spec ReleaseSpec) (*history.Record, []string, error) {
	if spec.RolloutTimeout <= 0 {
		spec.RolloutTimeout = 5 * time.Minute
	}
	if spec.HistoryLimit <= 0 {
		spec.HistoryLimit = DefaultHistoryLimit
	}
	where := fmt.Sprintf("release %s of %s/%s", spec.Version, spec.Project, spec.Env)
	t, err := e.target(ctx, spec.ControlNamespace, spec.Project, spec.Env, spec.HistoryLimit)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", where, err)
	}
	v, err := e.releasedVersion(ctx, &spec)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", where, err)
	}
	if v != nil {
		t.project.StartupOrder = v.releaseOrder(t.project)
	}
	rec, err := e.deploy(ctx, &t, spec, where)
	return rec, t.warnings, t.secrets.Error(err)
}

func (e *Engine) deploy(ctx context.Context, t *target, spec ReleaseSpec, where string) (*history.Record, error) {
	rendered, images, err := t.render(spec)
	for _, s := range sortedKeys(rendered) {
		if err == nil {
			err = e.scope(t.project, s, rendered[s].Objects)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	rec := &history.Record{
		Project: spec.Project, Env: spec.Env, Namespace: t.env.Namespace, Version: spec.Version, FromVersion: spec.FromVersion,
		Revision: t.next, Images: images, Render: map[string]string{}, Started: time.Now().UTC(),
	}
	// Services outside a subset release keep the current revision's objects.
	if t.current != nil {
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
	if err := checkSize(rec, rendered); err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	before := t.baseline()
	e.log(ctx, "deploying release", "project", spec.Project, "env", spec.Env, "version", spec.Version, "revision", rec.Revision)
	applied, err := e.apply(ctx, *t, rendered, spec.ForceConflicts, spec.RolloutTimeout)
	rec.Objects = append(rec.Objects, applied...)
	if err == nil {
		err = e.prune(ctx, t, before, rec.Objects)
	}
	rec.Finished = time.Now().UTC()
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	if err == nil {
		rec.Status, rec.Description = history.StatusDeployed, "release "+spec.Version
		if err := t.store.Create(rctx, rec); err != nil {
			return rec, fmt.Errorf("%s: %w", where, err)
		}
		return rec, nil
	}
	rec.Status, rec.Description = history.StatusFailed, t.secrets.Text(err.Error())
	if serr := t.store.Create(rctx, rec); serr != nil {
		return nil, fmt.Errorf("%s: %w (and recording the failure: %v)", where, err, serr)
	}
	failure := fmt.Errorf("%s (revision %d) failed: %w", where, rec.Revision, err)
	if !spec.RollbackOnFailure || t.current == nil {
		return rec, failure
	}
	rb, rerr := e.restore(ctx, t, t.current, rec, append(before, rec.Objects...), spec)
	if rerr != nil {
		return rec, fmt.Errorf("%w; rollback to revision %d also failed: %v", failure, t.current.Revision, rerr)
	}
	return rb, fmt.Errorf("%w; rolled back to revision %d (version %s) as revision %d",
		failure, t.current.Revision, t.current.Version, rb.Revision)
}

// restore re-applies an earlier revision's render as a new revision, pruning
// what before (the failed revision's baseline and objects) holds beyond it. It
// runs with a context of its own, bounded by the rollouts it waits for, so a
// caller's passed deadline does not leave the environment half rolled back.
func (e *Engine) restore(ctx context.Context, t *target, from, failed *history.Record, before []history.Object, spec ReleaseSpec) (*history.Record, error) {
	rendered := map[string]Rendered{}
	for s, y := range from.Render {
		objs, err := parseDocuments(y)
		if err == nil {
			err = place(objs, t.project.Name, t.env.Name, t.env.Namespace, s)
		}
		if err == nil {
			err = e.scope(t.project, s, objs)
		}
		if err != nil {
			return nil, fmt.Errorf("revision %d, service %q: %w", from.Revision, s, err)
		}
		rendered[s] = Rendered{Service: s, YAML: y, Objects: objs}
	}
	// A rollback returns to a revision that rolled out before; it gets at least
	// a minute per group, whatever the failed release's rollout timeout was.
	timeout := max(spec.RolloutTimeout, minRollbackTimeout)
	groups := len(t.project.Order(sortedKeys(rendered)))
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Duration(groups)*timeout+recordTimeout)
	defer cancel()
	rec := &history.Record{
		Project: from.Project, Env: from.Env, Namespace: t.env.Namespace, Version: from.Version, FromVersion: from.FromVersion,
		Revision: failed.Revision + 1, Images: from.Images, Render: from.Render, Services: from.Services,
		RollbackOf: from.Revision, Started: time.Now().UTC(),
		Description: fmt.Sprintf("rollback to revision %d after revision %d failed", from.Revision, failed.Revision),
	}
	e.log(ctx, "rolling back", "to", from.Revision, "revision", rec.Revision)
	applied, err := e.apply(ctx, *t, rendered, true, timeout)
	rec.Objects = applied
	if err == nil {
		err = e.prune(ctx, t, before, rec.Objects)
	}
	rec.Finished = time.Now().UTC()
	if err != nil {
		rec.Status, rec.Description = history.StatusFailed, rec.Description+": "+t.secrets.Text(err.Error())
		if serr := t.store.Create(ctx, rec); serr != nil {
			err = fmt.Errorf("%w (and recording it: %v)", err, serr)
		}
		return nil, err
	}
	rec.Status = history.StatusDeployed
	return rec, t.store.Create(ctx, rec)
}

// ReadRelease reads the last deployed revision and compares the fields kiln
// owned after applying it with the live objects: one list call per kind in the
// environment's namespace, not one request per object.
func (e *Engine) ReadRelease(ctx context.Context, control, project, env string) (*ReleaseState, error) {
	where := fmt.Sprintf("release of %s/%s", project, env)
	t, err := e.target(ctx, control, project, env, 0)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	rec := t.current
	if rec == nil {
		return nil, fmt.Errorf("%s: no deployed revision: %w", where, ErrNotFound)
	}
	live, err := e.liveObjects(ctx, project, env, t.env.Namespace, rec.Objects)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	st := &ReleaseState{Record: rec, Warnings: t.warnings}
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
			return nil, t.secrets.Error(fmt.Errorf("%s: %w", where, err))
		}
		// Field paths may name list items by value; drift reaches the state.
		for _, line := range d {
			st.Drift = append(st.Drift, t.secrets.Text(line))
		}
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

// History returns an environment's release records, oldest first, and
// warnings about records it ignored.
func (e *Engine) History(ctx context.Context, control, project, env string) ([]*history.Record, []string, error) {
	t, err := e.target(ctx, control, project, env, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("release history of %s/%s: %w", project, env, err)
	}
	return t.records, t.warnings, nil
}

// DeleteRelease deletes the objects of the last deployed revision (and of the
// revisions that failed since) and every record; it returns warnings about
// objects it left because Kiln did not apply them.
func (e *Engine) DeleteRelease(ctx context.Context, control, project, env string) ([]string, error) {
	where := fmt.Sprintf("release of %s/%s", project, env)
	t, err := e.target(ctx, control, project, env, 0)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	if err := e.prune(ctx, &t, t.baseline(), nil); err != nil {
		return t.warnings, fmt.Errorf("%s: %w", where, err)
	}
	for _, r := range t.records {
		if err := t.store.Delete(ctx, project, env, r.Revision); err != nil {
			return t.warnings, fmt.Errorf("%s: %w", where, err)
		}
	}
	return t.warnings, nil
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
func (e *Engine) Status(ctx context.Context, control, project, env string) (Environment, []ServiceStatus, error) {
	en, err := e.ReadEnvironment(ctx, control, project, env)
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
