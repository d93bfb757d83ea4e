package wait

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestUntilReturnsWhenDone(t *testing.T) {
	calls := 0
	err := Until(context.Background(), "three calls", Backoff{Initial: time.Millisecond, Max: time.Millisecond},
		func(context.Context) (bool, error) {
			calls++
			return calls == 3, nil
		})
	if err != nil || calls != 3 {
		t.Fatalf("Until = %v after %d calls, want nil after 3", err, calls)
	}
}

func TestUntilStopsOnError(t *testing.T) {
	boom := errors.New("boom")
	err := Until(context.Background(), "x", Default, func(context.Context) (bool, error) {
		return false, boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Until = %v, want boom", err)
	}
}

func TestUntilTimeoutNamesWhatAndLastError(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	err := Until(ctx, "the guest", Backoff{Initial: time.Millisecond, Max: 5 * time.Millisecond},
		func(context.Context) (bool, error) {
			return false, Transient(errors.New("connection refused"))
		})
	if err == nil || !strings.Contains(err.Error(), "the guest") || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("Until = %v, want a timeout naming the guest and the last error", err)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Until = %v, want it to wrap DeadlineExceeded", err)
	}
}
