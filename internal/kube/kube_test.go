package kube

import (
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func TestRolloutStatus(t *testing.T) {
	dep := func(gen, observed, replicas, updated, total, available int64) *unstructured.Unstructured {
		u := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "apps/v1", "kind": "Deployment",
			"metadata": map[string]any{"name": "api", "generation": gen},
			"spec":     map[string]any{"replicas": replicas},
			"status": map[string]any{"observedGeneration": observed, "updatedReplicas": updated,
				"replicas": total, "availableReplicas": available},
		}}
		return u
	}
	cases := []struct {
		u    *unstructured.Unstructured
		done bool
	}{
		{dep(2, 1, 1, 1, 1, 1), false}, // spec not observed yet
		{dep(2, 2, 2, 1, 2, 2), false}, // one replica not updated
		{dep(2, 2, 1, 1, 2, 1), false}, // an old replica still there
		{dep(2, 2, 1, 1, 1, 0), false}, // not available
		{dep(2, 2, 1, 1, 1, 1), true},
	}
	for i, c := range cases {
		if done, reason := RolloutStatus(c.u); done != c.done {
			t.Errorf("case %d: done = %v (%s), want %v", i, done, reason, c.done)
		}
	}
	cm := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "ConfigMap"}}
	if done, _ := RolloutStatus(cm); !done {
		t.Error("a ConfigMap has nothing to roll out")
	}
}
