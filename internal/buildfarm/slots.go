package buildfarm

import "sync"

// slotBook counts the builds this process runs on each build host. Builds of
// one apply queue here for a host's slots instead of asking the host over SSH
// again and again: on a slow host, a login per waiting build every few
// seconds costs more than the builds. The host's own slot locks still guard
// against builds from other processes.
type slotBook struct {
	mu    sync.Mutex
	used  map[string]int
	freed chan struct{} // closed, and replaced, whenever a slot is given back
}

func newSlotBook() *slotBook {
	return &slotBook{used: map[string]int{}, freed: make(chan struct{})}
}

// localSlots is the process's book: one provider process serves every
// build and test suite of an apply.
var localSlots = newSlotBook()

// take claims one of the host's limit slots, if one is free in this process.
func (b *slotBook) take(host string, limit int) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.used[host] >= limit {
		return false
	}
	b.used[host]++
	return true
}

// give returns a slot taken on host and wakes the builds waiting for one.
func (b *slotBook) give(host string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.used[host]--; b.used[host] <= 0 {
		delete(b.used, host)
	}
	close(b.freed)
	b.freed = make(chan struct{})
}

// changed is closed when a slot is next given back. Take it before trying
// the hosts, so a slot freed meanwhile is not missed.
func (b *slotBook) changed() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.freed
}
