package buildfarm

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/kilnhq/terraform-provider-kiln/internal/delivery/label"
)

// On a fresh cluster the control namespace does not exist yet: the first
// record written, by Create or Put, creates it, as Kiln's.
func TestSecretsCreateTheirNamespace(t *testing.T) {
	ctx := context.Background()
	cs := fake.NewClientset()
	// The fake clientset stores objects in any namespace; an API server
	// refuses them in one that does not exist.
	cs.PrependReactor("create", "secrets", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if _, err := cs.Tracker().Get(corev1.SchemeGroupVersion.WithResource("namespaces"), "", a.GetNamespace()); err != nil {
			return true, nil, apierrors.NewNotFound(corev1.Resource("namespaces"), a.GetNamespace())
		}
		return false, nil, nil
	})
	for _, c := range []struct {
		namespace string
		write     func(*Secrets, record) error
	}{
		{"kiln-system", func(s *Secrets, r record) error { return s.Create(ctx, r) }},
		{"farm-records", func(s *Secrets, r record) error { return s.Put(ctx, r) }},
	} {
		s := &Secrets{Client: cs, Namespace: c.namespace}
		if err := c.write(s, record{Name: "kiln-pool-go", Labels: map[string]string{"kiln.dev/kind": "pool"}, Data: []byte("{}")}); err != nil {
			t.Fatalf("%s: write a record: %v", c.namespace, err)
		}
		ns, err := cs.CoreV1().Namespaces().Get(ctx, c.namespace, metav1.GetOptions{})
		if err != nil || ns.Labels[label.ManagedBy] != label.Kiln {
			t.Fatalf("%s: namespace %v (%v), want one created as Kiln's", c.namespace, ns, err)
		}
		if got, err := s.Get(ctx, "kiln-pool-go"); err != nil || string(got.Data) != "{}" {
			t.Fatalf("%s: the record reads back as %+v (%v)", c.namespace, got, err)
		}
	}
}
