package kube

import (
	"context"
	"errors"
	"fmt"
	"slices"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
)

// Ref names one object.
type Ref struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Namespace  string `json:"namespace,omitempty"`
	Name       string `json:"name"`
}

// RefOf returns the reference of u.
func RefOf(u *unstructured.Unstructured) Ref {
	return Ref{APIVersion: u.GetAPIVersion(), Kind: u.GetKind(), Namespace: u.GetNamespace(), Name: u.GetName()}
}

func (r Ref) String() string {
	if r.Namespace != "" {
		return r.Kind + " " + r.Namespace + "/" + r.Name
	}
	return r.Kind + " " + r.Name
}

// GroupKind is the object's API group and kind, the unit kiln lists by.
func (r Ref) GroupVersionKind() schema.GroupVersionKind {
	return schema.FromAPIVersionAndKind(r.APIVersion, r.Kind)
}

// ConflictError reports fields another field manager owns with a different value.
type ConflictError struct {
	Ref    Ref
	Detail string
	// Fields are the conflicting field paths, as the API server names them.
	Fields []string
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("apply %s: another field manager owns fields kiln sets: %s", e.Ref, e.Detail)
}

// mapping resolves ref's kind to its resource, refreshing discovery once when
// the kind is unknown (a CRD installed since the last lookup).
func (c *Client) mapping(ref Ref) (*meta.RESTMapping, error) {
	if err := c.connect(); err != nil {
		return nil, err
	}
	gvk := ref.GroupVersionKind()
	m, err := c.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if meta.IsNoMatchError(err) {
		c.reset()
		m, err = c.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	}
	if err != nil {
		return nil, fmt.Errorf("resolve kind %s: %w", gvk, err)
	}
	return m, nil
}

// resource resolves the dynamic interface for ref.
func (c *Client) resource(ref Ref) (dynamic.ResourceInterface, error) {
	m, err := c.mapping(ref)
	if err != nil {
		return nil, err
	}
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		return c.dynamic.Resource(m.Resource).Namespace(ref.Namespace), nil
	}
	return c.dynamic.Resource(m.Resource), nil
}

// Apply server-side applies obj with field manager kiln. force takes over fields
// other managers own; without it such conflicts return a *ConflictError.
func (c *Client) Apply(ctx context.Context, obj *unstructured.Unstructured, force bool) (*unstructured.Unstructured, error) {
	ref := RefOf(obj)
	ri, err := c.resource(ref)
	if err != nil {
		return nil, fmt.Errorf("apply %s: %w", ref, err)
	}
	data, err := obj.MarshalJSON()
	if err != nil {
		return nil, fmt.Errorf("apply %s: encode: %w", ref, err)
	}
	out, err := ri.Patch(ctx, ref.Name, types.ApplyPatchType, data, metav1.PatchOptions{FieldManager: FieldManager, Force: &force})
	if apierrors.IsConflict(err) {
		ce := &ConflictError{Ref: ref, Detail: err.Error()}
		var status apierrors.APIStatus
		if errors.As(err, &status) && status.Status().Details != nil {
			for _, cause := range status.Status().Details.Causes {
				if cause.Field != "" {
					ce.Fields = append(ce.Fields, cause.Field)
				}
			}
		}
		return nil, ce
	}
	if err != nil {
		return nil, fmt.Errorf("apply %s: %w", ref, err)
	}
	c.log(ctx, "applied", "object", ref.String())
	return out, nil
}

// ApplyReclaiming applies obj like Apply; when the apply conflicts only on fields
// kiln owned before (previous, from Owned) and another manager has since taken
// by editing them out of band, it takes them back by forcing. A conflict on any
// other field is returned as a *ConflictError.
//
// Fields another manager set through the scale subresource (replicas an
// autoscaler or `kubectl scale` set) are left out of the apply, even with force
// and even when the manifest sets them: they are the scaler's (Drift ignores
// them too), and taking them back would scale the workload back and fight the
// scaler on every release. Only a conflict can reveal such a field (an equal
// value is no conflict), so the live object is read only then.
func (c *Client) ApplyReclaiming(ctx context.Context, obj *unstructured.Unstructured, force bool, previous map[string]any) (*unstructured.Unstructured, error) {
	out, err := c.Apply(ctx, obj, false)
	var conflict *ConflictError
	if !errors.As(err, &conflict) {
		return out, err
	}
	live, gerr := c.Get(ctx, conflict.Ref)
	if gerr != nil {
		return nil, fmt.Errorf("%w (and reading it for the scaler's fields: %v)", err, gerr)
	}
	obj, left, serr := withoutScaled(obj, live)
	if serr != nil {
		return nil, serr
	}
	if len(left) > 0 {
		c.log(ctx, "leaving fields set through the scale subresource to the scaler", "object", conflict.Ref.String(), "fields", left)
	}
	if force {
		return c.Apply(ctx, obj, true)
	}
	var paths map[string]bool
	if previous != nil {
		if paths, err = fieldPaths(previous); err != nil {
			return nil, conflict
		}
	}
	var taken []string
	for _, f := range conflict.Fields {
		switch {
		case slices.Contains(left, f):
		case paths[f]:
			taken = append(taken, f)
		default:
			return nil, conflict
		}
	}
	if len(taken) > 0 {
		c.log(ctx, "taking back fields edited out of band", "object", conflict.Ref.String(), "fields", taken)
	}
	return c.Apply(ctx, obj, len(taken) > 0)
}

// Get reads one object; ErrNotFound when it does not exist.
func (c *Client) Get(ctx context.Context, ref Ref) (*unstructured.Unstructured, error) {
	ri, err := c.resource(ref)
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", ref, err)
	}
	u, err := ri.Get(ctx, ref.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("get %s: %w", ref, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", ref, err)
	}
	return u, nil
}

// List returns the objects of one kind in namespace that match the label selector.
func (c *Client) List(ctx context.Context, apiVersion, kind, namespace, selector string) ([]unstructured.Unstructured, error) {
	ref := Ref{APIVersion: apiVersion, Kind: kind, Namespace: namespace}
	ri, err := c.resource(ref)
	if err != nil {
		return nil, fmt.Errorf("list %s in %q: %w", kind, namespace, err)
	}
	l, err := ri.List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return nil, fmt.Errorf("list %s in %q: %w", kind, namespace, err)
	}
	return l.Items, nil
}

// Delete deletes one object; an object already gone is not an error.
func (c *Client) Delete(ctx context.Context, ref Ref) error {
	return c.DeleteUID(ctx, ref, "")
}

// DeleteUID deletes one object if its UID is still uid (any UID when empty):
// an object deleted and created again under the same name since it was read is
// another object, and is left alone. An object already gone is not an error.
func (c *Client) DeleteUID(ctx context.Context, ref Ref, uid types.UID) error {
	ri, err := c.resource(ref)
	if err != nil {
		var noMatch *meta.NoKindMatchError
		if errors.As(err, &noMatch) {
			return nil // the kind itself is gone
		}
		return fmt.Errorf("delete %s: %w", ref, err)
	}
	bg := metav1.DeletePropagationBackground
	opts := metav1.DeleteOptions{PropagationPolicy: &bg}
	if uid != "" {
		opts.Preconditions = &metav1.Preconditions{UID: &uid}
	}
	err = ri.Delete(ctx, ref.Name, opts)
	if apierrors.IsConflict(err) && uid != "" {
		return fmt.Errorf("delete %s: it was replaced by another object since kiln applied it: %w", ref, err)
	}
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete %s: %w", ref, err)
	}
	c.log(ctx, "deleted", "object", ref.String())
	return nil
}

// Namespaced reports whether ref's kind lives in namespaces.
func (c *Client) Namespaced(ref Ref) (bool, error) {
	m, err := c.mapping(ref)
	if err != nil {
		return false, err
	}
	return m.Scope.Name() == meta.RESTScopeNameNamespace, nil
}
