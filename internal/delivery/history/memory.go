package history

import (
	"context"
	"fmt"
	"sort"
	"strconv"
)

// Memory keeps records in memory, for tests of the delivery logic.
type Memory struct {
	records map[string]*Record
}

func memKey(project, env string, revision int) string {
	return project + "/" + env + "/" + strconv.Itoa(revision)
}

func (m *Memory) Create(_ context.Context, r *Record) error {
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

func (m *Memory) Update(_ context.Context, r *Record) error {
	k := memKey(r.Project, r.Env, r.Revision)
	if _, ok := m.records[k]; !ok {
		return errNotFound(k)
	}
	c := *r
	m.records[k] = &c
	return nil
}

func (m *Memory) Get(_ context.Context, project, env string, revision int) (*Record, error) {
	r, ok := m.records[memKey(project, env, revision)]
	if !ok {
		return nil, errNotFound(memKey(project, env, revision))
	}
	c := *r
	return &c, nil
}

func (m *Memory) List(_ context.Context, project, env string) ([]*Record, []string, error) {
	var out []*Record
	for _, r := range m.records {
		if r.Project == project && r.Env == env {
			c := *r
			out = append(out, &c)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Revision < out[j].Revision })
	return out, nil, nil
}

func (m *Memory) Delete(_ context.Context, project, env string, revision int) error {
	delete(m.records, memKey(project, env, revision))
	return nil
}
