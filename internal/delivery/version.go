package delivery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kilnhq/terraform-provider-kiln/internal/kube"
)

// Version is a delivery version (ZadigX's 版本): a named, immutable set of
// images pinned by digest, with the project's startup order as it was when
// the version was made. Its record lives in the project's control namespace.
type Version struct {
	Project          string
	Name             string
	ControlNamespace string
	Description      string
	Labels           map[string]string
	// Services maps a service to its image as given (a tag or a digest).
	Services map[string]string
	// Images maps a service to its image pinned by digest, in DistributeTo
	// when that is set: what a release of the version deploys.
	Images map[string]string
	// DistributeTo is a repository ("registry/path") the images were copied
	// to, each as <DistributeTo>/<service>; empty for none.
	DistributeTo string
	// StartupOrder is the project's startup order when the version was made,
	// every service of the project in it.
	StartupOrder [][]string
}

const kindVersion = "version"

var versionName = regexp.MustCompile(`^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`)

// CheckVersionName checks that s can name a version: lower-case letters,
// digits, '-' and '.', at most 63 characters, starting and ending with a
// letter or digit, so that it is a label value, an image tag and part of a
// record's name.
func CheckVersionName(s string) error {
	if len(s) > 63 || !versionName.MatchString(s) {
		return fmt.Errorf("%q is not a version name: lower-case letters, digits, '-' and '.', at most 63, starting and ending with a letter or digit", s)
	}
	return nil
}

// versionRecordName names a version's record; the project is a DNS label (no
// dots), so the first dot ends it.
func versionRecordName(project, name string) string { return "kiln-version-" + project + "." + name }

// ErrVersionExists reports a version name the project already has.
var ErrVersionExists = errors.New("the project already has a version of this name; version names are unique per project")

// DistributedRepository is where a service's image is copied to for a
// version distributed to repo.
func DistributedRepository(repo, service string) string { return repo + "/" + service }

// PrepareVersion checks a version before its images are distributed: its
// project exists and has every service, and no version of its name exists.
// It returns v with the project's startup order snapshotted.
func (e *Engine) PrepareVersion(ctx context.Context, v Version) (Version, error) {
	v.ControlNamespace = controlOrDefault(v.ControlNamespace)
	where := fmt.Sprintf("version %q of project %q", v.Name, v.Project)
	p, err := e.ReadProject(ctx, v.ControlNamespace, v.Project)
	if err != nil {
		return v, fmt.Errorf("%s: %w", where, err)
	}
	if err := v.checkServices(p); err != nil {
		return v, fmt.Errorf("%s: %w", where, err)
	}
	for _, s := range sortedKeys(v.Services) {
		if v.Images[s] == "" {
			return v, fmt.Errorf("%s: service %q has no image pinned by digest", where, s)
		}
	}
	switch _, err := e.ReadVersion(ctx, v.ControlNamespace, v.Project, v.Name); {
	case err == nil:
		return v, fmt.Errorf("%s: %w", where, ErrVersionExists)
	case !errors.Is(err, ErrNotFound):
		return v, err
	}
	v.StartupOrder = p.Order(sortedKeys(p.Services))
	return v, nil
}

// CheckServices checks, when the project exists, that it has every service
// of v; a missing project is not an error (a plan may create it).
func (e *Engine) CheckServices(ctx context.Context, v Version) error {
	p, err := e.ReadProject(ctx, v.ControlNamespace, v.Project)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	return v.checkServices(p)
}

func (v Version) checkServices(p Project) error {
	for _, s := range sortedKeys(v.Services) {
		if _, ok := p.Services[s]; !ok {
			return fmt.Errorf("project %q has no service %q (it has %s)", p.Name, s, strings.Join(sortedKeys(p.Services), ", "))
		}
	}
	return nil
}

func (v Version) recordData() map[string]string {
	labels, _ := json.Marshal(nonNil(v.Labels))
	services, _ := json.Marshal(nonNil(v.Services))
	images, _ := json.Marshal(nonNil(v.Images))
	order, _ := json.Marshal(v.StartupOrder)
	return map[string]string{
		"description":   v.Description,
		"labels":        string(labels),
		"services":      string(services),
		"images":        string(images),
		"distribute-to": v.DistributeTo,
		"startup-order": string(order),
	}
}

// RecordVersion creates the version's record. It never overwrites one: a
// version of the same name is refused with ErrVersionExists.
func (e *Engine) RecordVersion(ctx context.Context, v Version) error {
	v.ControlNamespace = controlOrDefault(v.ControlNamespace)
	cs, err := e.Kube.Typed()
	if err != nil {
		return err
	}
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: v.ControlNamespace,
			Name:      versionRecordName(v.Project, v.Name),
			Labels:    recordLabels(kindVersion, v.Project, ""),
		},
		Data: v.recordData(),
	}
	_, err = cs.CoreV1().ConfigMaps(v.ControlNamespace).Create(ctx, cm, metav1.CreateOptions{FieldManager: kube.FieldManager})
	switch {
	case apierrors.IsAlreadyExists(err):
		return fmt.Errorf("version %q of project %q: %w", v.Name, v.Project, ErrVersionExists)
	case err != nil:
		return fmt.Errorf("version %q of project %q: write record: %w", v.Name, v.Project, err)
	}
	e.log(ctx, "version recorded", "project", v.Project, "version", v.Name, "namespace", v.ControlNamespace)
	return nil
}

// RestoreVersion writes v over its record, which someone edited out of band.
func (e *Engine) RestoreVersion(ctx context.Context, v Version) error {
	v.ControlNamespace = controlOrDefault(v.ControlNamespace)
	cm := configMap(v.ControlNamespace, versionRecordName(v.Project, v.Name), recordLabels(kindVersion, v.Project, ""), v.recordData())
	if _, err := e.Kube.Apply(ctx, cm, true); err != nil {
		return fmt.Errorf("version %q of project %q: restore record: %w", v.Name, v.Project, err)
	}
	return nil
}

// ReadVersion reads a version from its record in the control namespace.
func (e *Engine) ReadVersion(ctx context.Context, control, project, name string) (Version, error) {
	control = controlOrDefault(control)
	where := fmt.Sprintf("version %q of project %q", name, project)
	d, err := e.readRecord(ctx, control, versionRecordName(project, name), kindVersion, project, "")
	if err != nil {
		return Version{}, fmt.Errorf("%s: %w", where, err)
	}
	v := Version{Project: project, Name: name, ControlNamespace: control, Description: d["description"], DistributeTo: d["distribute-to"]}
	for key, into := range map[string]any{"labels": &v.Labels, "services": &v.Services, "images": &v.Images, "startup-order": &v.StartupOrder} {
		if d[key] == "" {
			continue
		}
		if err := json.Unmarshal([]byte(d[key]), into); err != nil {
			return v, fmt.Errorf("%s: record field %s: %w", where, key, err)
		}
	}
	return v, nil
}

// DeleteVersion deletes the version's record. Images it distributed stay in
// their registry: releases may still run them.
func (e *Engine) DeleteVersion(ctx context.Context, v Version) error {
	err := e.Kube.Delete(ctx, kube.Ref{APIVersion: "v1", Kind: "ConfigMap", Namespace: controlOrDefault(v.ControlNamespace), Name: versionRecordName(v.Project, v.Name)})
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	return err
}

// Drift lists how a record read back (recorded) differs from the version
// Kiln wrote (v), one line per field or map entry.
func (v Version) Drift(recorded Version) []string {
	var out []string
	field := func(name, wrote, holds string) {
		if wrote != holds {
			out = append(out, fmt.Sprintf("%s: Kiln wrote %q, the record holds %q", name, wrote, holds))
		}
	}
	field("description", v.Description, recorded.Description)
	field("distribute_to", v.DistributeTo, recorded.DistributeTo)
	for _, m := range []struct {
		name         string
		wrote, holds map[string]string
	}{{"labels", v.Labels, recorded.Labels}, {"services", v.Services, recorded.Services}, {"images", v.Images, recorded.Images}} {
		keys := maps.Clone(nonNil(m.wrote))
		maps.Copy(keys, m.holds)
		for _, k := range sortedKeys(keys) {
			w, inWrote := m.wrote[k]
			h, inHolds := m.holds[k]
			switch {
			case !inHolds:
				out = append(out, fmt.Sprintf("%s[%q]: Kiln wrote %q, the record has none", m.name, k, w))
			case !inWrote:
				out = append(out, fmt.Sprintf("%s[%q]: Kiln wrote none, the record holds %q", m.name, k, h))
			default:
				field(fmt.Sprintf("%s[%q]", m.name, k), w, h)
			}
		}
	}
	if !slices.EqualFunc(v.StartupOrder, recorded.StartupOrder, slices.Equal) {
		field("startup_order", fmt.Sprint(v.StartupOrder), fmt.Sprint(recorded.StartupOrder))
	}
	return out
}

// releaseOrder is the startup order a release of v applies in: v's snapshot
// (restricted to the services p still has), then services p gained since,
// in p's order.
func (v Version) releaseOrder(p Project) [][]string {
	seen := map[string]bool{}
	var out [][]string
	for _, g := range v.StartupOrder {
		var group []string
		for _, s := range g {
			if _, ok := p.Services[s]; ok && !seen[s] {
				seen[s] = true
				group = append(group, s)
			}
		}
		if len(group) > 0 {
			out = append(out, group)
		}
	}
	var added []string
	for _, s := range sortedKeys(p.Services) {
		if !seen[s] {
			added = append(added, s)
		}
	}
	return append(out, p.Order(added)...)
}

// releasedVersion reads the version a FromVersion spec releases and puts its
// images in spec.Images; it returns nil for a spec that gives its images.
func (e *Engine) releasedVersion(ctx context.Context, spec *ReleaseSpec) (*Version, error) {
	if !spec.FromVersion {
		return nil, nil
	}
	if len(spec.Images) > 0 {
		return nil, errors.New("a release of a version deploys the version's images; it is given no images of its own")
	}
	v, err := e.ReadVersion(ctx, spec.ControlNamespace, spec.Project, spec.Version)
	if err != nil {
		return nil, fmt.Errorf("a release given no images (services) deploys the version its version names: %w", err)
	}
	spec.Images = v.Images
	return &v, nil
}
