package history

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"

	"github.com/kilnhq/terraform-provider-kiln/internal/delivery/label"
	"github.com/kilnhq/terraform-provider-kiln/internal/kube"
)

// SecretType is the type of the Secrets that hold release records.
const SecretType = "kiln.dev/release.v1"

// What one record may take. A Secret's data is limited to 1 MiB by the API
// server, so a record's compressed form is split into parts of partBytes, one
// Secret each; maxRecordBytes bounds the JSON a reader inflates (a gzip bomb
// stops there).
const (
	partBytes      = 768 << 10
	maxParts       = 16
	maxRecordBytes = 64 << 20
)

// Annotations of a record's first Secret: how many Secrets hold it, and the
// SHA-256 of the whole compressed record, which a reader checks.
const (
	annotationParts  = "kiln.dev/parts"
	annotationSHA256 = "kiln.dev/sha256"
	labelPart        = "kiln.dev/part"
)

// Secrets keeps each record in Secrets of type kiln.dev/release.v1 in one
// namespace, Kiln's control namespace, where only Kiln's identity writes. The
// first Secret is labelled owner=kiln, project, env, status, revision and
// version; a record too large for one Secret continues in Secrets named
// <name>.part<i>. Records are gzip-compressed JSON.
type Secrets struct {
	Client    kubernetes.Interface
	Namespace string
}

// SecretName names the (first) Secret of one revision's record. Project and
// environment names are DNS labels, which hold no dots, so names never collide.
func SecretName(project, env string, revision int) string {
	return fmt.Sprintf("kiln.release.v1.%s.%s.v%d", project, env, revision)
}

func partName(name string, i int) string {
	if i == 0 {
		return name
	}
	return fmt.Sprintf("%s.part%d", name, i)
}

// encode compresses r, refusing a record over the limits.
func encode(r *Record) ([]byte, error) {
	js, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	if len(js) > maxRecordBytes {
		return nil, fmt.Errorf("release record of revision %d is %d MiB, over the %d MiB Kiln keeps per revision", r.Revision, len(js)>>20, maxRecordBytes>>20)
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(js); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	if buf.Len() > maxParts*partBytes {
		return nil, fmt.Errorf("release record of revision %d is %d MiB compressed, over the %d MiB Kiln keeps per revision",
			r.Revision, buf.Len()>>20, maxParts*partBytes>>20)
	}
	return buf.Bytes(), nil
}

// Check reports whether r is within what a record may take, before anything
// is applied on its behalf.
func Check(r *Record) error {
	_, err := encode(r)
	return err
}

// decode inflates and parses a compressed record, reading at most maxRecordBytes.
func decode(data []byte) (*Record, error) {
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	js, err := io.ReadAll(io.LimitReader(zr, maxRecordBytes+1))
	if err != nil {
		return nil, err
	}
	if len(js) > maxRecordBytes {
		return nil, fmt.Errorf("inflates past %d MiB", maxRecordBytes>>20)
	}
	var r Record
	if err := json.Unmarshal(js, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

func (s *Secrets) secrets(r *Record) ([]*corev1.Secret, error) {
	data, err := encode(r)
	if err != nil {
		return nil, err
	}
	name := SecretName(r.Project, r.Env, r.Revision)
	sum := sha256.Sum256(data)
	var out []*corev1.Secret
	for i := 0; i == 0 || i*partBytes < len(data); i++ {
		part := data[i*partBytes : min((i+1)*partBytes, len(data))]
		sec := &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{
				Name:      partName(name, i),
				Namespace: s.Namespace,
				Labels: map[string]string{label.ManagedBy: label.Kiln, label.Project: r.Project, label.Env: r.Env,
					"revision": strconv.Itoa(r.Revision)},
			},
			Type: SecretType,
			Data: map[string][]byte{"release": part},
		}
		if i == 0 {
			sec.Labels["owner"], sec.Labels["status"], sec.Labels["version"] = label.Kiln, r.Status, r.Version
			sec.Annotations = map[string]string{annotationSHA256: hex.EncodeToString(sum[:])}
		} else {
			sec.Labels[labelPart] = strconv.Itoa(i)
		}
		out = append(out, sec)
	}
	out[0].Annotations[annotationParts] = strconv.Itoa(len(out))
	return out, nil
}

// read assembles the record whose first Secret is first, and checks that it is
// whole and is the record its name and labels say.
func (s *Secrets) read(ctx context.Context, first *corev1.Secret) (*Record, error) {
	parts, err := strconv.Atoi(first.Annotations[annotationParts])
	if err != nil || parts < 1 || parts > maxParts {
		return nil, fmt.Errorf("release record %s: bad %s annotation %q", first.Name, annotationParts, first.Annotations[annotationParts])
	}
	data := append([]byte(nil), first.Data["release"]...)
	for i := 1; i < parts; i++ {
		sec, err := s.Client.CoreV1().Secrets(s.Namespace).Get(ctx, partName(first.Name, i), metav1.GetOptions{})
		if err != nil {
			return nil, fmt.Errorf("release record %s: part %d: %w", first.Name, i, err)
		}
		data = append(data, sec.Data["release"]...)
	}
	sum := sha256.Sum256(data)
	if hex.EncodeToString(sum[:]) != first.Annotations[annotationSHA256] {
		return nil, fmt.Errorf("release record %s: its parts do not match its checksum", first.Name)
	}
	r, err := decode(data)
	if err != nil {
		return nil, fmt.Errorf("release record %s: %w", first.Name, err)
	}
	if first.Name != SecretName(r.Project, r.Env, r.Revision) || first.Labels[label.Project] != r.Project || first.Labels[label.Env] != r.Env {
		return nil, fmt.Errorf("release record %s holds revision %d of %s/%s", first.Name, r.Revision, r.Project, r.Env)
	}
	return r, nil
}

// write creates or updates the Secrets of r, the parts before the first so a
// reader never sees a first Secret whose parts are not there yet; parts a
// smaller version no longer needs are deleted.
func (s *Secrets) write(ctx context.Context, r *Record, create bool) error {
	secs, err := s.secrets(r)
	if err != nil {
		return err
	}
	api := s.Client.CoreV1().Secrets(s.Namespace)
	previous := 1
	if !create {
		if old, err := api.Get(ctx, secs[0].Name, metav1.GetOptions{}); err == nil {
			previous, _ = strconv.Atoi(old.Annotations[annotationParts])
		}
	}
	for i := len(secs) - 1; i >= 0; i-- {
		// A revision is created once; parts a failed write left are overwritten.
		sec := secs[i]
		var err error
		if !create || i > 0 {
			_, err = api.Update(ctx, sec, metav1.UpdateOptions{FieldManager: kube.FieldManager})
		}
		if (create && i == 0) || apierrors.IsNotFound(err) {
			_, err = api.Create(ctx, sec, metav1.CreateOptions{FieldManager: kube.FieldManager})
		}
		if err != nil {
			return fmt.Errorf("store release record %s: %w", sec.Name, err)
		}
	}
	for i := len(secs); i < min(previous, maxParts); i++ {
		if err := s.deleteSecret(ctx, partName(secs[0].Name, i)); err != nil {
			return err
		}
	}
	return nil
}

func (s *Secrets) Create(ctx context.Context, r *Record) error { return s.write(ctx, r, true) }

func (s *Secrets) Update(ctx context.Context, r *Record) error { return s.write(ctx, r, false) }

func (s *Secrets) Get(ctx context.Context, project, env string, revision int) (*Record, error) {
	name := SecretName(project, env, revision)
	sec, err := s.Client.CoreV1().Secrets(s.Namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, errNotFound(name)
	}
	if err != nil {
		return nil, fmt.Errorf("read release record %s: %w", name, err)
	}
	return s.read(ctx, sec)
}

// List reads the records of one environment; one it cannot read is skipped
// with a warning, so that it does not break every plan.
func (s *Secrets) List(ctx context.Context, project, env string) ([]*Record, []string, error) {
	sel := labels.SelectorFromSet(labels.Set{"owner": label.Kiln, label.Project: project, label.Env: env})
	l, err := s.Client.CoreV1().Secrets(s.Namespace).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil {
		return nil, nil, fmt.Errorf("list release records of %s/%s in %q: %w", project, env, s.Namespace, err)
	}
	var out []*Record
	var warnings []string
	for i := range l.Items {
		if l.Items[i].Type != SecretType {
			continue
		}
		r, err := s.read(ctx, &l.Items[i])
		if err != nil {
			warnings = append(warnings, "ignoring "+err.Error())
			continue
		}
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Revision < out[j].Revision })
	return out, warnings, nil
}

func (s *Secrets) Delete(ctx context.Context, project, env string, revision int) error {
	name := SecretName(project, env, revision)
	first, err := s.Client.CoreV1().Secrets(s.Namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("delete release record %s: %w", name, err)
	}
	parts, _ := strconv.Atoi(first.Annotations[annotationParts])
	for i := 0; i < min(max(parts, 1), maxParts); i++ {
		if err := s.deleteSecret(ctx, partName(name, i)); err != nil {
			return err
		}
	}
	return nil
}

func (s *Secrets) deleteSecret(ctx context.Context, name string) error {
	err := s.Client.CoreV1().Secrets(s.Namespace).Delete(ctx, name, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete release record %s: %w", name, err)
	}
	return nil
}
