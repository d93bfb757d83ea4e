package kube

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"

	"fmt"
	"io"
	"sort"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// Release statuses, as in Helm's storage.
const (
	StatusDeployed   = "deployed"
	StatusSuperseded = "superseded"
	StatusFailed     = "failed"
)

// Record is one revision of a release: what was rendered and applied, with
// which images, when, and how it ended. Records are plain data; Storage keeps them.
type Record struct {
	Project     string            `json:"project"`
	Env         string            `json:"env"`
	Namespace   string            `json:"namespace"`
	Version     string            `json:"version"`
	Revision    int               `json:"revision"`
	Status      string            `json:"status"`
	Description string            `json:"description,omitempty"`
	RollbackOf  int               `json:"rollbackOf,omitempty"` // the revision a rollback copied
	Images      map[string]string `json:"images"`
	Services    []string          `json:"services"` // every service the revision holds
	Render      map[string]string `json:"render"`   // service -> rendered YAML
	Objects     []ObjectRecord    `json:"objects"`
	Started     time.Time         `json:"started"`
	Finished    time.Time         `json:"finished"`
}

// ObjectRecord is one applied object and the fields kiln owned right after the apply.
type ObjectRecord struct {
	Service string         `json:"service"`
	Ref     Ref            `json:"ref"`
	Owned   map[string]any `json:"owned,omitempty"`
}

// Storage keeps the records of releases, one per revision; the interface follows
// Helm's pkg/storage driver.
type Storage interface {
	Create(ctx context.Context, r *Record) error
	Update(ctx context.Context, r *Record) error
	Get(ctx context.Context, project, env string, revision int) (*Record, error)
	// List returns the records of one project environment, oldest first.
	List(ctx context.Context, project, env string) ([]*Record, error)
	// Query returns the records with a status (deployed, superseded, failed), oldest first.
	Query(ctx context.Context, project, env, status string) ([]*Record, error)
	Delete(ctx context.Context, project, env string, revision int) error
}

// SecretStorage keeps each record in a Secret of type kiln.dev/release.v1 in the
// environment's namespace, labelled owner=kiln, project, env, status, revision,
// version, holding the record as gzip-compressed JSON.
type SecretStorage struct {
	Client    *Client
	Namespace string
}

// SecretType is the type of the Secrets that hold release records.
const SecretType = "kiln.dev/release.v1"

// SecretName names the record of one revision.
func SecretName(project, env string, revision int) string {
	return fmt.Sprintf("kiln.release.v1.%s.%s.v%d", project, env, revision)
}

func (s *SecretStorage) secret(r *Record) (*corev1.Secret, error) {
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
				"owner": ManagedByKiln, LabelManagedBy: ManagedByKiln,
				LabelProject: r.Project, LabelEnv: r.Env,
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

func (s *SecretStorage) Create(ctx context.Context, r *Record) error {
	cs, err := s.Client.Typed()
	if err != nil {
		return err
	}
	sec, err := s.secret(r)
	if err != nil {
		return fmt.Errorf("encode release record %d: %w", r.Revision, err)
	}
	if _, err := cs.CoreV1().Secrets(s.Namespace).Create(ctx, sec, metav1.CreateOptions{FieldManager: FieldManager}); err != nil {
		return fmt.Errorf("store release record %s: %w", sec.Name, err)
	}
	return nil
}

func (s *SecretStorage) Update(ctx context.Context, r *Record) error {
	cs, err := s.Client.Typed()
	if err != nil {
		return err
	}
	sec, err := s.secret(r)
	if err != nil {
		return fmt.Errorf("encode release record %d: %w", r.Revision, err)
	}
	if _, err := cs.CoreV1().Secrets(s.Namespace).Update(ctx, sec, metav1.UpdateOptions{FieldManager: FieldManager}); err != nil {
		return fmt.Errorf("update release record %s: %w", sec.Name, err)
	}
	return nil
}

func (s *SecretStorage) Get(ctx context.Context, project, env string, revision int) (*Record, error) {
	cs, err := s.Client.Typed()
	if err != nil {
		return nil, err
	}
	name := SecretName(project, env, revision)
	sec, err := cs.CoreV1().Secrets(s.Namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("release record %s: %w", name, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read release record %s: %w", name, err)
	}
	return decodeRecord(sec)
}

func (s *SecretStorage) List(ctx context.Context, project, env string) ([]*Record, error) {
	return s.query(ctx, labels.Set{"owner": ManagedByKiln, LabelProject: project, LabelEnv: env})
}

func (s *SecretStorage) Query(ctx context.Context, project, env, status string) ([]*Record, error) {
	return s.query(ctx, labels.Set{"owner": ManagedByKiln, LabelProject: project, LabelEnv: env, "status": status})
}

func (s *SecretStorage) query(ctx context.Context, set labels.Set) ([]*Record, error) {
	project, env := set[LabelProject], set[LabelEnv]
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

func (s *SecretStorage) Delete(ctx context.Context, project, env string, revision int) error {
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

// MemoryStorage keeps records in memory, for tests of the delivery logic.
type MemoryStorage struct {
	records map[string]*Record
}

func memKey(project, env string, revision int) string {
	return project + "/" + env + "/" + strconv.Itoa(revision)
}

func (m *MemoryStorage) Create(_ context.Context, r *Record) error {
	if m.records == nil {
		m.records = map[string]*Record{}
	}
	k := memKey(r.Project, r.Env, r.Revision)
	if _, ok := m.records[k]; ok {
		return fmt.Errorf("release record %s exists", k)
	}
	c := *r
	m.records[k] = &c
	return nil
}

func (m *MemoryStorage) Update(_ context.Context, r *Record) error {
	k := memKey(r.Project, r.Env, r.Revision)
	if _, ok := m.records[k]; !ok {
		return fmt.Errorf("release record %s: %w", k, ErrNotFound)
	}
	c := *r
	m.records[k] = &c
	return nil
}

func (m *MemoryStorage) Get(_ context.Context, project, env string, revision int) (*Record, error) {
	r, ok := m.records[memKey(project, env, revision)]
	if !ok {
		return nil, fmt.Errorf("release record %s: %w", memKey(project, env, revision), ErrNotFound)
	}
	c := *r
	return &c, nil
}

func (m *MemoryStorage) List(_ context.Context, project, env string) ([]*Record, error) {
	var out []*Record
	for _, r := range m.records {
		if r.Project == project && r.Env == env {
			c := *r
			out = append(out, &c)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Revision < out[j].Revision })
	return out, nil
}

func (m *MemoryStorage) Query(ctx context.Context, project, env, status string) ([]*Record, error) {
	all, _ := m.List(ctx, project, env)
	var out []*Record
	for _, r := range all {
		if r.Status == status {
			out = append(out, r)
		}
	}
	return out, nil
}

func (m *MemoryStorage) Delete(_ context.Context, project, env string, revision int) error {
	delete(m.records, memKey(project, env, revision))
	return nil
}

// Latest returns the newest record with one of the statuses (any when none given).
func Latest(records []*Record, statuses ...string) (*Record, error) {
	for i := len(records) - 1; i >= 0; i-- {
		if len(statuses) == 0 {
			return records[i], nil
		}
		for _, s := range statuses {
			if records[i].Status == s {
				return records[i], nil
			}
		}
	}
	return nil, ErrNotFound
}
