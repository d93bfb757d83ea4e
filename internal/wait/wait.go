// Package wait is Kiln's one waiter: it polls a condition with backoff until the
// condition holds, fails, or the context ends.
package wait

import (
	"context"
	"fmt"
	"time"
)

// Backoff bounds the delay between polls: it starts at Initial and doubles up to Max.
type Backoff struct {
	Initial time.Duration
	Max     time.Duration
}

// Default suits operations that take seconds to minutes (a guest booting, a task).
var Default = Backoff{Initial: 250 * time.Millisecond, Max: 3 * time.Second}

// Until calls check until it reports done or returns an error. When ctx ends first,
// the error names what was awaited and carries the last transient error seen.
// check returns (false, nil) to poll again; a returned error stops the wait.
func Until(ctx context.Context, what string, b Backoff, check func(context.Context) (done bool, transient error, err error)) error {
	delay := b.Initial
	var last error
	for {
		done, transient, err := check(ctx)
		if err != nil {
			return err
		}
		if done {
			return nil
		}
		if transient != nil {
			last = transient
		}
		timer := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			timer.Stop()
			if last != nil {
				return fmt.Errorf("timed out waiting for %s: %w (last error: %v)", what, ctx.Err(), last)
			}
			return fmt.Errorf("timed out waiting for %s: %w", what, ctx.Err())
		case <-timer.C:
		}
		delay = min(delay*2, b.Max)
	}
}
