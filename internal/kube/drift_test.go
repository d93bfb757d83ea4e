package kube

import (
	"reflect"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func deployment(replicas int64, image string, managed ...metav1.ManagedFieldsEntry) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apps/v1", "kind": "Deployment",
		"metadata": map[string]any{"name": "api", "namespace": "shop-env-dev"},
		"spec": map[string]any{
			"replicas": replicas,
			"selector": map[string]any{"matchLabels": map[string]any{"app": "api"}},
			"template": map[string]any{
				"metadata": map[string]any{"labels": map[string]any{"app": "api"}},
				"spec": map[string]any{"containers": []any{
					map[string]any{"name": "api", "image": image},
				}},
			},
		},
	}}
	u.SetManagedFields(managed)
	return u
}

func entry(manager string, op metav1.ManagedFieldsOperationType, subresource, fields string) metav1.ManagedFieldsEntry {
	return metav1.ManagedFieldsEntry{Manager: manager, Operation: op, Subresource: subresource,
		APIVersion: "apps/v1", FieldsType: "FieldsV1", FieldsV1: &metav1.FieldsV1{Raw: []byte(fields)}}
}

const (
	replicasFields = `{"f:spec":{"f:replicas":{}}}`
	imageFields    = `{"f:spec":{"f:template":{"f:spec":{"f:containers":{"k:{\"name\":\"api\"}":{"f:image":{}}}}}}}`
	imageDrift     = `Deployment shop-env-dev/api: .spec.template.spec.containers[name="api"].image changed`
	replicasDrift  = `Deployment shop-env-dev/api: .spec.replicas changed`
)

// TestDriftScaleSubresource: replicas another manager set through the scale
// subresource (an autoscaler, kubectl scale) are the scaler's; the same field
// or an image changed by a plain update of another manager is drift.
func TestDriftScaleSubresource(t *testing.T) {
	// kiln's apply entry as it is after the others took their fields away.
	kiln := entry(FieldManager, metav1.ManagedFieldsOperationApply, "",
		`{"f:spec":{"f:selector":{},"f:template":{"f:metadata":{"f:labels":{"f:app":{}}},"f:spec":{"f:containers":{"k:{\"name\":\"api\"}":{".":{},"f:name":{}}}}}}}`)
	owned, err := Owned(deployment(1, "api:1.0", entry(FieldManager, metav1.ManagedFieldsOperationApply, "",
		`{"f:spec":{"f:replicas":{},"f:selector":{},"f:template":{"f:metadata":{"f:labels":{"f:app":{}}},"f:spec":{"f:containers":{"k:{\"name\":\"api\"}":{".":{},"f:image":{},"f:name":{}}}}}}}`)))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		live *unstructured.Unstructured
		want []string
	}{
		{"unchanged", deployment(1, "api:1.0", kiln), nil},
		{"scaled through the scale subresource", deployment(3, "api:1.0", kiln,
			entry("hpa-like", metav1.ManagedFieldsOperationUpdate, "scale", replicasFields)), nil},
		{"scaled, and the image set by hand", deployment(3, "api:hotfix", kiln,
			entry("hpa-like", metav1.ManagedFieldsOperationUpdate, "scale", replicasFields),
			entry("kubectl-set", metav1.ManagedFieldsOperationUpdate, "", imageFields)), []string{imageDrift}},
		{"replicas edited by a plain update", deployment(3, "api:1.0", kiln,
			entry("kubectl-edit", metav1.ManagedFieldsOperationUpdate, "", replicasFields)), []string{replicasDrift}},
		{"kiln's own update through the scale subresource", deployment(3, "api:1.0", kiln,
			entry(FieldManager, metav1.ManagedFieldsOperationUpdate, "scale", replicasFields)), []string{replicasDrift}},
		{"replicas applied by another manager", deployment(3, "api:1.0", kiln,
			entry("autoscaler", metav1.ManagedFieldsOperationApply, "", replicasFields)), nil},
	}
	for _, c := range cases {
		got, err := Drift(owned, c.live)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: drift %q, want %q", c.name, got, c.want)
		}
	}
}

// TestWithoutScaled: kiln's apply leaves out what a scaler set through the
// scale subresource, and only that.
func TestWithoutScaled(t *testing.T) {
	manifest := deployment(1, "api:2.0")
	live := deployment(3, "api:hotfix",
		entry("hpa-like", metav1.ManagedFieldsOperationUpdate, "scale", replicasFields),
		entry("kubectl-set", metav1.ManagedFieldsOperationUpdate, "", imageFields))
	got, left, err := withoutScaled(manifest, live)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(left, []string{".spec.replicas"}) {
		t.Errorf("left out %q, want .spec.replicas", left)
	}
	if _, ok, _ := unstructured.NestedFieldNoCopy(got.Object, "spec", "replicas"); ok {
		t.Error("replicas still applied")
	}
	if img := Images(got); !reflect.DeepEqual(img, []string{"api:2.0"}) || got.GetName() != "api" {
		t.Errorf("the rest of the manifest changed: %v", got.Object)
	}
	if _, ok, _ := unstructured.NestedFieldNoCopy(manifest.Object, "spec", "replicas"); !ok {
		t.Error("the manifest itself was changed")
	}

	// Without a scaler nothing is left out.
	plain := deployment(3, "api:hotfix", entry("kubectl-edit", metav1.ManagedFieldsOperationUpdate, "", replicasFields))
	if got, left, err := withoutScaled(manifest, plain); err != nil || left != nil || got != manifest {
		t.Errorf("without a scaler: %v, %q, %v", got.Object, left, err)
	}
}
