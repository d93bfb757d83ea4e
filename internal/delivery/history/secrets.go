package history

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/kilnhq/terraform-provider-kiln/internal/delivery/label"
	"github.com/kilnhq/terraform-provider-kiln/internal/kube"
)

// SecretType is the type of the Secrets that hold release records.
const SecretType = "kiln.dev/release.v1"

// Secrets keeps each record in a Secret of type kiln.dev/release.v1 in one
// namespace, labelled owner=kiln, project, env, status, revision, version,
// holding the record as gzip-compressed JSON.
type Secrets struct {
	Client    *kube.Client
	Namespace string
}

// SecretName names the record of one revision.
func SecretName(project, env string, revision int) string {
	return fmt.Sprintf("kiln.release.v1.%s.%s.v%d", project, env, revision)
}

func (s *Secrets) secret(r *Record) (*corev1.Secret, error) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if err := json.NewEncoder(zw).Encode(r); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Name:      SecretName(r.Project, r.Env, r.Revision),
			Namespace: s.Namespace,
			Labels: map[string]string{
				"owner": label.Kiln, label.ManagedBy: label.Kiln,
				label.Project: r.Project, label.Env: r.Env,
				"status": r.Status, "revision": strconv.Itoa(r.Revision), "version": r.Version,
			},
		},
		Type: SecretType,
		Data: map[string][]byte{"release": buf.Bytes()},
	}, nil
}

func decodeRecord(sec *corev1.Secret) (*Record, error) {
	zr, err := gzip.NewReader(bytes.NewReader(sec.Data["release"]))
	if err != nil {
		return nil, fmt.Errorf("release record %s: %w", sec.Name, err)
	}
	data, err := io.ReadAll(zr)
	if err != nil {
		return nil, fmt.Errorf("release record %s: %w", sec.Name, err)
	}
	var r Record
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("release record %s: %w", sec.Name, err)
	}
	// The labels are the queryable copy; the status label wins if edited.
	if st := sec.Labels["status"]; st != "" {
		r.Status = st
	}
	return &r, nil
}

func (s *Secrets) Create(ctx context.Context, r *Record) error {
	cs, err := s.Client.Typed()
	if err != nil {
		return err
	}
	sec, err := s.secret(r)
	if err != nil {
		return fmt.Errorf("encode release record %d: %w", r.Revision, err)
	}
	if _, err := cs.CoreV1().Secrets(s.Namespace).Create(ctx, sec, metav1.CreateOptions{FieldManager: kube.FieldManager}); err != nil {
		return fmt.Errorf("store release record %s: %w", sec.Name, err)
	}
	return nil
}

func (s *Secrets) Update(ctx context.Context, r *Record) error {
	cs, err := s.Client.Typed()
	if err != nil {
		return err
	}
	sec, err := s.secret(r)
	if err != nil {
		return fmt.Errorf("encode release record %d: %w", r.Revision, err)
	}
	if _, err := cs.CoreV1().Secrets(s.Namespace).Update(ctx, sec, metav1.UpdateOptions{FieldManager: kube.FieldManager}); err != nil {
		return fmt.Errorf("update release record %s: %w", sec.Name, err)
	}
	return nil
}

func (s *Secrets) Get(ctx context.Context, project, env string, revision int) (*Record, error) {
	cs, err := s.Client.Typed()
	if err != nil {
		return nil, err
	}
	name := SecretName(project, env, revision)
	sec, err := cs.CoreV1().Secrets(s.Namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, errNotFound(name)
	}
	if err != nil {
		return nil, fmt.Errorf("read release record %s: %w", name, err)
	}
	return decodeRecord(sec)
}

func (s *Secrets) List(ctx context.Context, project, env string) ([]*Record, error) {
	return s.query(ctx, labels.Set{"owner": label.Kiln, label.Project: project, label.Env: env})
}

func (s *Secrets) Query(ctx context.Context, project, env, status string) ([]*Record, error) {
	return s.query(ctx, labels.Set{"owner": label.Kiln, label.Project: project, label.Env: env, "status": status})
}

func (s *Secrets) query(ctx context.Context, set labels.Set) ([]*Record, error) {
	project, env := set[label.Project], set[label.Env]
	cs, err := s.Client.Typed()
	if err != nil {
		return nil, err
	}
	sel := labels.SelectorFromSet(set)
	l, err := cs.CoreV1().Secrets(s.Namespace).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil {
		return nil, fmt.Errorf("list release records of %s/%s in %q: %w", project, env, s.Namespace, err)
	}
	var out []*Record
	for i := range l.Items {
		if l.Items[i].Type != SecretType {
			continue
		}
		r, err := decodeRecord(&l.Items[i])
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Revision < out[j].Revision })
	return out, nil
}

func (s *Secrets) Delete(ctx context.Context, project, env string, revision int) error {
	cs, err := s.Client.Typed()
	if err != nil {
		return err
	}
	name := SecretName(project, env, revision)
	err = cs.CoreV1().Secrets(s.Namespace).Delete(ctx, name, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete release record %s: %w", name, err)
	}
	return nil
}
