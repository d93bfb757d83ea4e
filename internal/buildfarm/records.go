package buildfarm

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sort"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"

	"github.com/kilnhq/terraform-provider-kiln/internal/delivery/label"
	"github.com/kilnhq/terraform-provider-kiln/internal/kube"
)

// ErrNotFound is a record that does not exist.
var ErrNotFound = errors.New("not found")

// errExists is a record created under a name that is taken.
var errExists = errors.New("exists")

// SecretType is the type of the Secrets that hold pool, build and test run
// records.
const SecretType = "kiln.dev/buildfarm.v1"

// Record kinds, in the label kiln.dev/kind.
const (
	kindPool    = "build-pool"
	kindBuild   = "build"
	kindTestRun = "test-run"
)

// Further labels of the records.
const (
	labelPool      = "kiln.dev/pool"
	labelBuildName = "kiln.dev/build-name"
	labelStatus    = "kiln.dev/status"
	labelSuite     = "kiln.dev/test-suite"
)

// record is one record of a control namespace: labels that select it, and
// its content (JSON).
type record struct {
	Name   string
	Labels map[string]string
	Data   []byte
}

// Store keeps records in one control namespace, where only Kiln's identity
// writes: Secrets (a pool record holds the pool's key).
type Store interface {
	Get(ctx context.Context, name string) (record, error)
	// Create fails with an error wrapping errExists when name is taken.
	Create(ctx context.Context, r record) error
	Put(ctx context.Context, r record) error
	Delete(ctx context.Context, name string) error
	// List returns the records whose labels include match, sorted by name.
	List(ctx context.Context, match map[string]string) ([]record, error)
}

// Secrets keeps records as Secrets of type SecretType in Namespace.
type Secrets struct {
	Client    kubernetes.Interface
	Namespace string
}

const dataKey = "record"

func (s *Secrets) secret(r record) *corev1.Secret {
	l := maps.Clone(r.Labels)
	l[label.ManagedBy] = label.Kiln
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: r.Name, Namespace: s.Namespace, Labels: l},
		Type:       SecretType,
		Data:       map[string][]byte{dataKey: r.Data},
	}
}

func (s *Secrets) fromSecret(sec *corev1.Secret) (record, error) {
	if sec.Type != SecretType || sec.Labels[label.ManagedBy] != label.Kiln {
		return record{}, fmt.Errorf("secret %s/%s is not a Kiln build farm record", s.Namespace, sec.Name)
	}
	return record{Name: sec.Name, Labels: sec.Labels, Data: sec.Data[dataKey]}, nil
}

func (s *Secrets) Get(ctx context.Context, name string) (record, error) {
	sec, err := s.Client.CoreV1().Secrets(s.Namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return record{}, fmt.Errorf("record %s/%s: %w", s.Namespace, name, ErrNotFound)
	}
	if err != nil {
		return record{}, fmt.Errorf("read record %s/%s: %w", s.Namespace, name, err)
	}
	return s.fromSecret(sec)
}

// create creates the record's Secret, and the namespace first when it is
// missing (a fresh cluster): Kiln's control namespace, never deleted by Kiln.
func (s *Secrets) create(ctx context.Context, r record) error {
	api := s.Client.CoreV1().Secrets(s.Namespace)
	_, err := api.Create(ctx, s.secret(r), metav1.CreateOptions{FieldManager: kube.FieldManager})
	if !apierrors.IsNotFound(err) {
		return err
	}
	meta := metav1.ObjectMeta{Name: s.Namespace, Labels: map[string]string{label.ManagedBy: label.Kiln}}
	if _, nerr := kube.CreateNamespace(ctx, s.Client, meta); nerr != nil {
		return nerr
	}
	_, err = api.Create(ctx, s.secret(r), metav1.CreateOptions{FieldManager: kube.FieldManager})
	return err
}

func (s *Secrets) Create(ctx context.Context, r record) error {
	err := s.create(ctx, r)
	if apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("record %s/%s: %w", s.Namespace, r.Name, errExists)
	}
	if err != nil {
		return fmt.Errorf("store record %s/%s: %w", s.Namespace, r.Name, err)
	}
	return nil
}

func (s *Secrets) Put(ctx context.Context, r record) error {
	api := s.Client.CoreV1().Secrets(s.Namespace)
	_, err := api.Update(ctx, s.secret(r), metav1.UpdateOptions{FieldManager: kube.FieldManager})
	if apierrors.IsNotFound(err) {
		err = s.create(ctx, r)
	}
	if err != nil {
		return fmt.Errorf("store record %s/%s: %w", s.Namespace, r.Name, err)
	}
	return nil
}

func (s *Secrets) Delete(ctx context.Context, name string) error {
	err := s.Client.CoreV1().Secrets(s.Namespace).Delete(ctx, name, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete record %s/%s: %w", s.Namespace, name, err)
	}
	return nil
}

func (s *Secrets) List(ctx context.Context, match map[string]string) ([]record, error) {
	sel := labels.SelectorFromSet(labels.Set(match))
	l, err := s.Client.CoreV1().Secrets(s.Namespace).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil {
		return nil, fmt.Errorf("list records in %s: %w", s.Namespace, err)
	}
	var out []record
	for i := range l.Items {
		if r, err := s.fromSecret(&l.Items[i]); err == nil {
			out = append(out, r)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Memory keeps records in memory, for tests.
type Memory struct {
	mu      sync.Mutex
	records map[string]record
}

func (m *Memory) Get(_ context.Context, name string) (record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.records[name]
	if !ok {
		return record{}, fmt.Errorf("record %s: %w", name, ErrNotFound)
	}
	return r, nil
}

func (m *Memory) Create(_ context.Context, r record) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.records[r.Name]; ok {
		return fmt.Errorf("record %s: %w", r.Name, errExists)
	}
	m.put(r)
	return nil
}

func (m *Memory) Put(_ context.Context, r record) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.put(r)
	return nil
}

func (m *Memory) put(r record) {
	if m.records == nil {
		m.records = map[string]record{}
	}
	r.Labels = maps.Clone(r.Labels)
	m.records[r.Name] = r
}

func (m *Memory) Delete(_ context.Context, name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.records, name)
	return nil
}

func (m *Memory) List(_ context.Context, match map[string]string) ([]record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []record
	for _, r := range m.records {
		if labels.SelectorFromSet(labels.Set(match)).Matches(labels.Set(r.Labels)) {
			out = append(out, r)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}
