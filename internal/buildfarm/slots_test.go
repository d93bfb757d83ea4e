package buildfarm

import (
	"testing"
	"time"
)

func TestSlotBookLimitsEachHost(t *testing.T) {
	b := newSlotBook()
	for i := range 2 {
		if !b.take("a", 2) {
			t.Fatalf("slot %d of two was not free", i+1)
		}
	}
	if b.take("a", 2) {
		t.Fatal("a third build took a slot on a host of two")
	}
	if !b.take("b", 1) {
		t.Fatal("another host's slot was not free")
	}
	b.give("a")
	if !b.take("a", 2) {
		t.Fatal("a slot given back was not free again")
	}
}

func TestSlotBookWakesWaiters(t *testing.T) {
	b := newSlotBook()
	b.take("a", 1)
	freed := b.changed()
	select {
	case <-freed:
		t.Fatal("woken before any slot was given back")
	default:
	}
	b.give("a")
	select {
	case <-freed:
	case <-time.After(time.Second):
		t.Fatal("not woken when a slot was given back")
	}
	select {
	case <-b.changed():
		t.Fatal("the next wait ended before another slot was given back")
	default:
	}
}
