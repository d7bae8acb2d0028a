package heraldtest

import (
	"sync"
	"time"
)

// Clock is a time source tests move instead of sleeping: give its Now to
// Herald (dispatch.Config.Now, sqlstore.Config.Now, the API's Now) and call
// Set or Advance. It is safe for concurrent use.
//
// A Clock made by NewClock stands still at its time until moved. The zero
// Clock (or NewRunningClock) runs with real time, shifted by what Set and
// Advance add: for tests that need time to pass on its own (tokens issued
// in order, timeouts) and to jump ahead now and then.
type Clock struct {
	mu      sync.Mutex
	stopped bool
	t       time.Time     // the time, when stopped
	offset  time.Duration // added to real time, when running
}

// NewClock returns a clock stopped at t.
func NewClock(t time.Time) *Clock { return &Clock{stopped: true, t: t} }

// NewRunningClock returns a clock that runs with real time until Set or
// Advance shift it; the same as new(Clock).
func NewRunningClock() *Clock { return &Clock{} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return c.t
	}
	return time.Now().Add(c.offset)
}

// Set moves the clock to t, forward or back. A running clock goes on
// running from t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		c.t = t
		return
	}
	c.offset = time.Until(t)
}

// Advance moves the clock forward by d (back when d is negative) and
// returns the new time.
func (c *Clock) Advance(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		c.t = c.t.Add(d)
		return c.t
	}
	c.offset += d
	return time.Now().Add(c.offset)
}
