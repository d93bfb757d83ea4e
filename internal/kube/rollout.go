package kube

import (
	"context"
	"fmt"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/kilnhq/terraform-provider-kiln/internal/wait"
)

// IsWorkload reports whether kiln waits for the kind's rollout.
func IsWorkload(kind string) bool {
	switch kind {
	case "Deployment", "StatefulSet", "DaemonSet":
		return true
	}
	return false
}

// RolloutStatus says whether a Deployment, StatefulSet or DaemonSet has rolled
// out its current spec, with a short reason when it has not. Other kinds are
// done once they exist.
func RolloutStatus(u *unstructured.Unstructured) (done bool, reason string) {
	gen := u.GetGeneration()
	observed, _, _ := unstructured.NestedInt64(u.Object, "status", "observedGeneration")
	if IsWorkload(u.GetKind()) && observed < gen {
		return false, "waiting for the controller to observe the new spec"
	}
	st := func(f string) int64 { v, _, _ := unstructured.NestedInt64(u.Object, "status", f); return v }
	switch u.GetKind() {
	case "Deployment", "StatefulSet":
		want := int64(1)
		if v, ok, _ := unstructured.NestedInt64(u.Object, "spec", "replicas"); ok {
			want = v
		}
		ready := st("availableReplicas")
		if u.GetKind() == "StatefulSet" {
			ready = st("readyReplicas")
		}
		switch {
		case st("updatedReplicas") < want:
			return false, fmt.Sprintf("%d of %d replicas updated", st("updatedReplicas"), want)
		case st("replicas") > st("updatedReplicas"):
			return false, fmt.Sprintf("%d old replicas pending termination", st("replicas")-st("updatedReplicas"))
		case ready < want:
			return false, fmt.Sprintf("%d of %d updated replicas available", ready, want)
		}
		if u.GetKind() == "StatefulSet" {
			cur, _, _ := unstructured.NestedString(u.Object, "status", "currentRevision")
			upd, _, _ := unstructured.NestedString(u.Object, "status", "updateRevision")
			if upd != "" && cur != upd {
				return false, "waiting for the update revision to become current"
			}
		}
	case "DaemonSet":
		want := st("desiredNumberScheduled")
		switch {
		case st("updatedNumberScheduled") < want:
			return false, fmt.Sprintf("%d of %d pods updated", st("updatedNumberScheduled"), want)
		case st("numberAvailable") < want:
			return false, fmt.Sprintf("%d of %d updated pods available", st("numberAvailable"), want)
		}
	}
	return true, ""
}

// Images lists the container images of a workload's pod template.
func Images(u *unstructured.Unstructured) []string {
	var out []string
	for _, path := range [][]string{
		{"spec", "template", "spec", "initContainers"}, {"spec", "template", "spec", "containers"},
	} {
		cs, _, _ := unstructured.NestedSlice(u.Object, path...)
		for _, c := range cs {
			if m, ok := c.(map[string]any); ok {
				if img, ok := m["image"].(string); ok {
					out = append(out, img)
				}
			}
		}
	}
	return out
}

// WaitRollout waits until every workload in refs has rolled out. On timeout the
// error names each workload still rolling out, why, and what its pending pods
// report (an unschedulable pod says which nodes refused it).
func (c *Client) WaitRollout(ctx context.Context, refs []Ref) error {
	pending := map[Ref]string{}
	for _, r := range refs {
		if IsWorkload(r.Kind) {
			pending[r] = "not observed yet"
		}
	}
	err := wait.Until(ctx, "rollout", wait.Default, func(ctx context.Context) (bool, error) {
		for r := range pending {
			u, err := c.Get(ctx, r)
			if err != nil {
				return false, wait.Transient(err)
			}
			done, reason := RolloutStatus(u)
			if done {
				delete(pending, r)
				c.log(ctx, "rolled out", "object", r.String())
				continue
			}
			pending[r] = reason + c.podProblem(ctx, u)
		}
		return len(pending) == 0, nil
	})
	if err == nil {
		return nil
	}
	var parts []string
	for r, why := range pending {
		parts = append(parts, fmt.Sprintf("%s: %s", r, why))
	}
	return fmt.Errorf("rollout did not complete: %s: %w", strings.Join(parts, "; "), err)
}

// podProblem describes the first pending or failing pod of a workload, if any.
func (c *Client) podProblem(ctx context.Context, u *unstructured.Unstructured) string {
	match, ok, _ := unstructured.NestedStringMap(u.Object, "spec", "selector", "matchLabels")
	if !ok || len(match) == 0 {
		return ""
	}
	pods, err := c.typed.CoreV1().Pods(u.GetNamespace()).List(ctx, metav1.ListOptions{
		LabelSelector: labels.SelectorFromSet(match).String(),
	})
	if err != nil {
		return ""
	}
	for _, p := range pods.Items {
		for _, cond := range p.Status.Conditions {
			if cond.Status != "True" && cond.Message != "" {
				return fmt.Sprintf(" (pod %s %s: %s)", p.Name, cond.Reason, cond.Message)
			}
		}
	}
	return ""
}
