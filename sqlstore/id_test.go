package sqlstore

import (
	"strings"
	"testing"
	"time"

	"github.com/heraldhooks/herald"
)

// TestIDSeq checks the IDs the store makes for events and deliveries: in
// herald.NewID's form, carrying their millisecond (so idFloor bounds them
// as it bounds NewID's), and increasing in the order they are made, within
// a millisecond too, where NewID's are random.
func TestIDSeq(t *testing.T) {
	var s idSeq
	t0 := time.Date(2026, 12, 1, 9, 30, 0, 0, time.UTC)
	var prev string
	for i := range 3000 {
		at := t0.Add(time.Duration(i/1000) * time.Millisecond) // 1,000 per millisecond
		id := s.next("dlv", at)
		if len(id) != len(herald.NewID("dlv", at)) || !strings.HasPrefix(id, "dlv_") {
			t.Fatalf("%q is not in herald.NewID's form", id)
		}
		if id < idFloor("dlv", at) || id >= idFloor("dlv", at.Add(time.Millisecond)) {
			t.Fatalf("%q made at %s is outside [idFloor(%s), idFloor(+1ms))", id, at.Format(time.RFC3339Nano), at.Format(time.RFC3339Nano))
		}
		if id <= prev {
			t.Fatalf("ID %d, %q, does not sort after the one made before it, %q", i, id, prev)
		}
		prev = id
	}
	// A clock that goes back: the ID still carries its own time.
	back := t0.Add(-time.Second)
	if id := s.next("dlv", back); id < idFloor("dlv", back) || id >= idFloor("dlv", back.Add(time.Millisecond)) {
		t.Errorf("after the clock went back, %q does not carry its time", id)
	}
}
