// Package history keeps release records, one per revision, shaped like Helm's
// pkg/storage: a small Driver interface with interchangeable backends (Secrets,
// memory) under History, which adds the rules every backend shares: a deployed
// revision supersedes the earlier ones, and the history is trimmed to a limit.
package history

import (
	"context"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/kilnhq/terraform-provider-kiln/internal/kube"
)

// Release statuses, as in Helm's storage.
const (
	StatusDeployed   = "deployed"
	StatusSuperseded = "superseded"
	StatusFailed     = "failed"
)

// ErrNotFound reports that a record does not exist.
var ErrNotFound = kube.ErrNotFound

// Record is one revision of a release: what was rendered and applied, with
// which images, when, and how it ended. Records are plain data; a Driver keeps them.
type Record struct {
	Project     string            `json:"project"`
	Env         string            `json:"env"`
	Namespace   string            `json:"namespace"`
	Version     string            `json:"version"`
	FromVersion bool              `json:"fromVersion,omitempty"` // Version is the project's kiln_version, whose images were deployed
	Revision    int               `json:"revision"`
	Status      string            `json:"status"`
	Description string            `json:"description,omitempty"`
	RollbackOf  int               `json:"rollbackOf,omitempty"` // the revision a rollback copied
	Images      map[string]string `json:"images"`
	Services    []string          `json:"services"` // every service the revision holds
	Render      map[string]string `json:"render"`   // service -> rendered YAML
	Objects     []Object          `json:"objects"`
	Started     time.Time         `json:"started"`
	Finished    time.Time         `json:"finished"`
}

// Object is one applied object, its UID, and the fields kiln owned right after
// the apply. The UID tells the object Kiln applied from one created since
// under the same name, which Kiln never deletes.
type Object struct {
	Service string         `json:"service"`
	Ref     kube.Ref       `json:"ref"`
	UID     types.UID      `json:"uid,omitempty"`
	Owned   map[string]any `json:"owned,omitempty"`
}

// Driver stores the records of releases; the interface follows Helm's storage driver.
type Driver interface {
	Create(ctx context.Context, r *Record) error
	Update(ctx context.Context, r *Record) error
	Get(ctx context.Context, project, env string, revision int) (*Record, error)
	// List returns the records of one project environment, oldest first, and
	// a warning for each stored record it could not read and skipped.
	List(ctx context.Context, project, env string) ([]*Record, []string, error)
	Delete(ctx context.Context, project, env string, revision int) error
}

// History is the release history of environments, kept by a Driver.
type History struct {
	Driver
	// Limit is how many records Create keeps per environment.
	Limit int
}

// Create records a revision. A deployed one supersedes the deployed revision
// before it. Then the environment's history is trimmed to Limit records,
// keeping r and the newest deployed revision whatever their age.
func (h History) Create(ctx context.Context, r *Record) error {
	var previous *Record
	if r.Status == StatusDeployed {
		all, _, err := h.List(ctx, r.Project, r.Env)
		if err != nil {
			return err
		}
		previous, _ = Latest(all, StatusDeployed)
	}
	if err := h.Driver.Create(ctx, r); err != nil {
		return err
	}
	if previous != nil {
		previous.Status = StatusSuperseded
		if err := h.Update(ctx, previous); err != nil {
			return err
		}
	}
	return h.trim(ctx, r)
}

// trim deletes the oldest records of r's environment beyond Limit (none
// without a limit).
func (h History) trim(ctx context.Context, r *Record) error {
	if h.Limit <= 0 {
		return nil
	}
	all, _, err := h.List(ctx, r.Project, r.Env)
	if err != nil {
		return err
	}
	keep := map[int]bool{r.Revision: true}
	if cur, err := Latest(all, StatusDeployed); err == nil {
		keep[cur.Revision] = true
	}
	excess := len(all) - h.Limit
	for i := 0; i < len(all) && excess > 0; i++ {
		if keep[all[i].Revision] {
			continue
		}
		if err := h.Delete(ctx, r.Project, r.Env, all[i].Revision); err != nil {
			return err
		}
		excess--
	}
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

// errNotFound wraps ErrNotFound with the record's key.
func errNotFound(key string) error { return fmt.Errorf("release record %s: %w", key, ErrNotFound) }
