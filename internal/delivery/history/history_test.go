package history

import (
	"context"
	"errors"
	"testing"
)

func TestMemory(t *testing.T) {
	ctx := context.Background()
	var s Driver = &Memory{}
	for rev, status := range []string{StatusSuperseded, StatusDeployed, StatusFailed} {
		if err := s.Create(ctx, &Record{Project: "p", Env: "dev", Revision: rev + 1, Status: status}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Create(ctx, &Record{Project: "p", Env: "dev", Revision: 1}); err == nil {
		t.Fatal("creating an existing revision succeeded")
	}
	all, _, _ := s.List(ctx, "p", "dev")
	if len(all) != 3 || all[0].Revision != 1 || all[2].Revision != 3 {
		t.Fatalf("List = %v", all)
	}
	cur, err := Latest(all, StatusDeployed)
	if err != nil || cur.Revision != 2 {
		t.Fatalf("Latest deployed = %v, %v", cur, err)
	}
	if _, err := s.Get(ctx, "p", "qa", 1); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get of another environment: %v", err)
	}
	if _, err := Latest(nil); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Latest of nothing: %v", err)
	}
}

// TestHistoryCreate: a deployed revision supersedes the one before, and Create
// trims to the limit but keeps the newest deployed revision, even when newer
// failed revisions would push it out.
func TestHistoryCreate(t *testing.T) {
	ctx := context.Background()
	h := History{Driver: &Memory{}, Limit: 2}
	statuses := map[int]string{}
	for rev, status := range []string{StatusDeployed, StatusDeployed, StatusFailed, StatusFailed} {
		if err := h.Create(ctx, &Record{Project: "p", Env: "dev", Revision: rev + 1, Status: status}); err != nil {
			t.Fatal(err)
		}
	}
	all, _, _ := h.List(ctx, "p", "dev")
	for _, r := range all {
		statuses[r.Revision] = r.Status
	}
	want := map[int]string{2: StatusDeployed, 4: StatusFailed}
	if len(statuses) != len(want) || statuses[2] != want[2] || statuses[4] != want[4] {
		t.Fatalf("history after trim = %v, want %v", statuses, want)
	}
	if err := h.Create(ctx, &Record{Project: "p", Env: "dev", Revision: 5, Status: StatusDeployed}); err != nil {
		t.Fatal(err)
	}
	if r, _ := h.Get(ctx, "p", "dev", 2); r != nil {
		t.Fatalf("revision 2 kept past the limit as %s", r.Status)
	}
	all, _, _ = h.List(ctx, "p", "dev")
	if len(all) != 2 || all[1].Status != StatusDeployed {
		t.Fatalf("history = %v", all)
	}
}
