package kube

import (
	"context"
	"errors"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func TestMemoryStorage(t *testing.T) {
	ctx := context.Background()
	var s Storage = &MemoryStorage{}
	for rev, status := range []string{StatusSuperseded, StatusDeployed, StatusFailed} {
		if err := s.Create(ctx, &Record{Project: "p", Env: "dev", Revision: rev + 1, Status: status}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Create(ctx, &Record{Project: "p", Env: "dev", Revision: 1}); err == nil {
		t.Fatal("creating an existing revision succeeded")
	}
	all, _ := s.List(ctx, "p", "dev")
	if len(all) != 3 || all[0].Revision != 1 || all[2].Revision != 3 {
		t.Fatalf("List = %v", all)
	}
	cur, err := Latest(all, StatusDeployed)
	if err != nil || cur.Revision != 2 {
		t.Fatalf("Latest deployed = %v, %v", cur, err)
	}
	deployed, _ := s.Query(ctx, "p", "dev", StatusDeployed)
	if len(deployed) != 1 || deployed[0].Revision != 2 {
		t.Fatalf("Query deployed = %v", deployed)
	}
	if _, err := s.Get(ctx, "p", "qa", 1); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get of another environment: %v", err)
	}
	if _, err := Latest(nil); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Latest of nothing: %v", err)
	}
}

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
