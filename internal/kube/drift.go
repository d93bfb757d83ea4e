package kube

import (
	"bytes"
	"fmt"
	"sort"
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/managedfields"
	"k8s.io/client-go/applyconfigurations"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/structured-merge-diff/v6/fieldpath"
	"sigs.k8s.io/structured-merge-diff/v6/typed"
)

// The schema of the built-in kinds (what client-go's applyconfigurations extract
// with), parsed once; kinds it does not know (custom resources) fall back to a
// deduced schema where lists are atomic.
var (
	builtinTypes = sync.OnceValue(func() managedfields.TypeConverter {
		return applyconfigurations.NewTypeConverter(scheme.Scheme)
	})
	deducedTypes = managedfields.NewDeducedTypeConverter()
)

func toTyped(u *unstructured.Unstructured) (*typed.TypedValue, error) {
	tv, err := builtinTypes().ObjectToTyped(u, typed.AllowDuplicates)
	if err == nil {
		return tv, nil
	}
	return deducedTypes.ObjectToTyped(u, typed.AllowDuplicates)
}

// managerSet returns the fields manager owns on obj through the given operation.
func managerSet(obj *unstructured.Unstructured, manager string, op metav1.ManagedFieldsOperationType) (*fieldpath.Set, bool, error) {
	for _, mf := range obj.GetManagedFields() {
		if mf.Manager != manager || mf.Operation != op || mf.Subresource != "" || mf.FieldsV1 == nil {
			continue
		}
		set := &fieldpath.Set{}
		if err := set.FromJSON(bytes.NewReader(mf.FieldsV1.Raw)); err != nil {
			return nil, false, fmt.Errorf("managed fields of %s for %s: %w", RefOf(obj), manager, err)
		}
		return set, true, nil
	}
	return nil, false, nil
}

// Owned extracts the part of obj that kiln's field manager owns (as client-go's
// applyconfigurations Extract functions do), as an object of the same kind. This
// is what kiln records after an apply, and later compares the live object with.
func Owned(obj *unstructured.Unstructured) (map[string]any, error) {
	set, ok, err := managerSet(obj, FieldManager, metav1.ManagedFieldsOperationApply)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("%s has no fields applied by %q", RefOf(obj), FieldManager)
	}
	tv, err := toTyped(obj)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", RefOf(obj), err)
	}
	m, ok := tv.ExtractItems(set.Leaves(), typed.WithAppendKeyFields()).AsValue().Unstructured().(map[string]any)
	if !ok {
		return nil, fmt.Errorf("extract fields of %s: not an object", RefOf(obj))
	}
	m["apiVersion"], m["kind"] = obj.GetAPIVersion(), obj.GetKind()
	meta, _ := m["metadata"].(map[string]any)
	if meta == nil {
		meta = map[string]any{}
		m["metadata"] = meta
	}
	meta["name"] = obj.GetName()
	if obj.GetNamespace() != "" {
		meta["namespace"] = obj.GetNamespace()
	}
	return m, nil
}

// Drift compares the fields kiln owned after its last apply (owned, from Owned)
// with the live object, and describes each field that changed or disappeared.
// Fields another manager has since claimed by server-side apply are that
// manager's and never drift; fields other actors added are not looked at at all.
func Drift(owned map[string]any, live *unstructured.Unstructured) ([]string, error) {
	want := &unstructured.Unstructured{Object: owned}
	ref := RefOf(want)
	tvWant, err := toTyped(want)
	if err != nil {
		return nil, fmt.Errorf("parse recorded fields of %s: %w", ref, err)
	}
	wantSet, err := tvWant.ToFieldSet()
	if err != nil {
		return nil, fmt.Errorf("fields of %s: %w", ref, err)
	}
	tvLive, err := toTyped(live)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", ref, err)
	}
	liveOwned := tvLive.ExtractItems(wantSet.Leaves(), typed.WithAppendKeyFields())
	cmp, err := tvWant.Compare(liveOwned)
	if err != nil {
		return nil, fmt.Errorf("compare %s: %w", ref, err)
	}
	// Identity fields are not in kiln's field set, only in the record.
	skip := fieldpath.NewSet(
		fieldpath.MakePathOrDie("apiVersion"), fieldpath.MakePathOrDie("kind"),
		fieldpath.MakePathOrDie("metadata", "name"), fieldpath.MakePathOrDie("metadata", "namespace"),
	)
	for _, mf := range live.GetManagedFields() {
		if mf.Manager == FieldManager || mf.Operation != metav1.ManagedFieldsOperationApply {
			continue
		}
		claimed, ok, err := managerSet(live, mf.Manager, mf.Operation)
		if err != nil {
			return nil, err
		}
		if ok {
			skip = skip.Union(claimed)
		}
	}
	cmp = cmp.ExcludeFields(skip)
	var out []string
	cmp.Modified.Leaves().Iterate(func(p fieldpath.Path) {
		out = append(out, fmt.Sprintf("%s: %s changed", ref, p))
	})
	cmp.Removed.Leaves().Iterate(func(p fieldpath.Path) {
		out = append(out, fmt.Sprintf("%s: %s removed", ref, p))
	})
	sort.Strings(out)
	return out, nil
}

// fieldPaths lists the leaf paths of an object from Owned, as strings in the form
// the API server uses in conflict messages.
func fieldPaths(owned map[string]any) (map[string]bool, error) {
	tv, err := toTyped(&unstructured.Unstructured{Object: owned})
	if err != nil {
		return nil, err
	}
	set, err := tv.ToFieldSet()
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	set.Leaves().Iterate(func(p fieldpath.Path) { out[p.String()] = true })
	return out, nil
}
