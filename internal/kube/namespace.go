package kube

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// CreateNamespace creates a namespace unless it exists. created is true only
// when this call created it: an existing namespace, or one Kiln may not create
// but can see, is someone else's.
func CreateNamespace(ctx context.Context, cs kubernetes.Interface, meta metav1.ObjectMeta) (created bool, err error) {
	_, err = cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: meta}, metav1.CreateOptions{FieldManager: FieldManager})
	switch {
	case err == nil:
		return true, nil
	case apierrors.IsAlreadyExists(err):
		return false, nil
	case apierrors.IsForbidden(err):
		if _, gerr := cs.CoreV1().Namespaces().Get(ctx, meta.Name, metav1.GetOptions{}); gerr == nil {
			return false, nil
		}
	}
	return false, fmt.Errorf("create namespace %s: %w", meta.Name, err)
}
