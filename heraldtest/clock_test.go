package heraldtest_test

import (
	"sync"
	"testing"
	"time"

	"github.com/heraldhooks/herald/heraldtest"
)

// A stopped clock moves only when told; a running one follows real time
// with what it was moved by; both are safe for concurrent use.
func TestClock(t *testing.T) {
	at := time.Date(2026, 11, 26, 17, 0, 0, 0, time.UTC)
	c := heraldtest.NewClock(at)
	time.Sleep(2 * time.Millisecond)
	if !c.Now().Equal(at) {
		t.Fatalf("a stopped clock moved by itself: %v", c.Now())
	}
	if got := c.Advance(-time.Hour); !got.Equal(at.Add(-time.Hour)) || !c.Now().Equal(got) {
		t.Fatalf("Advance(-1h) = %v, Now %v", got, c.Now())
	}

	r := heraldtest.NewRunningClock()
	if d := time.Since(r.Now()); d < 0 || d > time.Second {
		t.Fatalf("a running clock is %v from real time", d)
	}
	r.Advance(time.Hour)
	if d := time.Until(r.Now()); d < 59*time.Minute || d > time.Hour {
		t.Fatalf("after Advance(1h) the running clock is %v ahead", d)
	}
	r.Set(at)
	before := r.Now()
	time.Sleep(5 * time.Millisecond)
	if after := r.Now(); before.Sub(at) > time.Second || !after.After(before) {
		t.Fatalf("Set(%v) then %v, %v: want it running from there", at, before, after)
	}
	var zero heraldtest.Clock
	if d := time.Since(zero.Now()); d < 0 || d > time.Second {
		t.Fatalf("the zero clock is %v from real time", d)
	}

	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				c.Advance(time.Second)
				c.Now()
			}
		})
	}
	wg.Wait()
	if got := c.Now(); !got.Equal(at.Add(-time.Hour + 800*time.Second)) {
		t.Fatalf("after 800 concurrent Advance(1s): %v", got)
	}
}
