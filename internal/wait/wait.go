// Package wait is Kiln's one waiter: it polls a condition with backoff until the
// condition holds, fails, or the context ends.
package wait

import (
	"context"
	"errors"
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

// transientError marks an error the condition may recover from.
type transientError struct{ err error }

func (e transientError) Error() string { return e.err.Error() }
func (e transientError) Unwrap() error { return e.err }

// Transient marks err as one worth polling through (a refused connection, a
// daemon restarting): Until keeps polling and reports the last one if time runs
// out. Transient(nil) is nil.
func Transient(err error) error {
	if err == nil {
		return nil
	}
	return transientError{err}
}

// Until calls check until it reports done or returns an error that is not
// Transient. When ctx ends first, the error names what was awaited and carries
// the last transient error seen.
func Until(ctx context.Context, what string, b Backoff, check func(context.Context) (done bool, err error)) error {
	delay := b.Initial
	var last error
	for {
		done, err := check(ctx)
		var transient transientError
		switch {
		case errors.As(err, &transient):
			last = transient.err
		case err != nil:
			return err
		case done:
			return nil
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
