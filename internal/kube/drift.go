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

// scaleSubresource is the subresource autoscalers and `kubectl scale` write
// replicas through.
const scaleSubresource = "scale"

// entryFields parses the fields one managedFields entry of obj holds.
func entryFields(obj *unstructured.Unstructured, mf metav1.ManagedFieldsEntry) (*fieldpath.Set, error) {
	set := &fieldpath.Set{}
	if mf.FieldsV1 == nil {
		return set, nil
	}
	if err := set.FromJSON(bytes.NewReader(mf.FieldsV1.Raw)); err != nil {
		return nil, fmt.Errorf("managed fields of %s for %s: %w", RefOf(obj), mf.Manager, err)
	}
	return set, nil
}

// managerSet returns the fields manager owns on obj through the given operation.
func managerSet(obj *unstructured.Unstructured, manager string, op metav1.ManagedFieldsOperationType) (*fieldpath.Set, bool, error) {
	for _, mf := range obj.GetManagedFields() {
		if mf.Manager != manager || mf.Operation != op || mf.Subresource != "" || mf.FieldsV1 == nil {
			continue
		}
		set, err := entryFields(obj, mf)
		return set, err == nil, err
	}
	return nil, false, nil
}

// othersFields returns the fields managers other than kiln hold on obj through
// the managedFields entries that match.
func othersFields(obj *unstructured.Unstructured, match func(metav1.ManagedFieldsEntry) bool) (*fieldpath.Set, error) {
	out := &fieldpath.Set{}
	for _, mf := range obj.GetManagedFields() {
		if mf.Manager == FieldManager || !match(mf) {
			continue
		}
		set, err := entryFields(obj, mf)
		if err != nil {
			return nil, err
		}
		out = out.Union(set)
	}
	return out, nil
}

// theirs selects the entries whose fields are another manager's for good:
// fields it applied, and fields it set through the scale subresource (replicas
// an autoscaler or `kubectl scale` set). A plain update without a subresource
// (`kubectl edit`, `kubectl set image`) is an out-of-band edit, not a claim.
func theirs(mf metav1.ManagedFieldsEntry) bool {
	return mf.Operation == metav1.ManagedFieldsOperationApply && mf.Subresource == "" || scaled(mf)
}

func scaled(mf metav1.ManagedFieldsEntry) bool { return mf.Subresource == scaleSubresource }

// withoutScaled returns obj without the fields another manager holds on live
// through the scale subresource, and the paths it left out (as the API server
// names them in conflicts).
func withoutScaled(obj, live *unstructured.Unstructured) (*unstructured.Unstructured, []string, error) {
	held, err := othersFields(live, scaled)
	if err != nil || held.Empty() {
		return obj, nil, err
	}
	tv, err := toTyped(obj)
	if err != nil {
		return nil, nil, fmt.Errorf("parse %s: %w", RefOf(obj), err)
	}
	set, err := tv.ToFieldSet()
	if err != nil {
		return nil, nil, fmt.Errorf("fields of %s: %w", RefOf(obj), err)
	}
	drop := set.Intersection(held)
	if drop.Empty() {
		return obj, nil, nil
	}
	m, ok := tv.RemoveItems(drop).AsValue().Unstructured().(map[string]any)
	if !ok {
		return nil, nil, fmt.Errorf("remove scaled fields of %s: not an object", RefOf(obj))
	}
	var paths []string
	drop.Iterate(func(p fieldpath.Path) { paths = append(paths, p.String()) })
	return &unstructured.Unstructured{Object: m}, paths, nil
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
// Fields another manager has since claimed by server-side apply or set through
// the scale subresource are that manager's and never drift; a plain update by
// another manager (an image set by hand) is drift. Fields other actors added
// are not looked at at all.
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
	claimed, err := othersFields(live, theirs)
	if err != nil {
		return nil, err
	}
	skip = skip.Union(claimed)
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
