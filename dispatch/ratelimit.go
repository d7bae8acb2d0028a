package dispatch

import "time"

// A webhook's rate limit (rateLimitPerSecond) is kept with request slots:
// each one-second window of the clock has limit slots, slot i starting
// i/limit seconds into it, and a request starts only on a slot of its own,
// at or after the slot's time. Every node takes the slots it uses from the
// store (queue.Store.TakeSlots), a few at a time (a quarter of a second's
// worth), so no two nodes use the same slot and the webhook gets at most
// limit requests per window across all nodes, spread evenly over it. The
// scheduler does the bookkeeping below as pure data; the pacer
// (slots.go) makes the takes and keeps the timer. A webhook without a
// limit costs nothing: it never gets here.

// slotShare is the part of a window's slots a node takes at once: a
// quarter of a second's worth.
const slotShare = 4

// slots are the request slots a webhook holds on this node: of window,
// from next up to end.
type slots struct {
	window    time.Time
	next, end int
	// asking is set while a take is on its way for window.
	asking bool
	// full is a window whose slots are all taken (or whose take failed):
	// the webhook waits for the next one.
	full time.Time
}

// slotAsk is a take of slots the caller is to make for a webhook.
type slotAsk struct {
	webhook string
	limit   int
	window  time.Time
	from    int // the first slot whose time has not passed
	want    int
}

// slotTime is when slot i of a window starting at window begins, with
// limit slots a second.
func slotTime(window time.Time, i, limit int) time.Time {
	return window.Add(time.Duration(i) * time.Second / time.Duration(limit))
}

// takeSlot reports whether h, which has a rate limit, may start a job
// now, and uses up its slot if so. Otherwise h waits in slotWait: for its
// next slot's time, for a take (asked for here unless one is on its way),
// or for the next window when this one's slots are all taken.
func (s *scheduler) takeSlot(h *hookQueue, now time.Time) bool {
	window := now.Truncate(time.Second)
	sl := &h.slots
	if !sl.window.Equal(window) {
		sl.window, sl.next, sl.end, sl.asking = window, 0, 0, false
	}
	switch {
	case sl.next < sl.end:
		at := slotTime(window, sl.next, h.limit)
		if !now.Before(at) {
			sl.next++
			return true
		}
		s.waitSlot(h, at)
	case sl.full.Equal(window):
		s.waitSlot(h, window.Add(time.Second))
	case sl.asking:
		s.waitSlot(h, time.Time{})
	default:
		// The slots whose time has passed are not asked for (the one whose
		// time began and whose successor's has not is still good): a slot
		// is used at its time or soon after, never saved up for a burst.
		from := int(now.Sub(window) * time.Duration(h.limit) / time.Second)
		if from >= h.limit {
			s.waitSlot(h, window.Add(time.Second))
			break
		}
		sl.asking = true
		want := min(max(len(h.jobs), 1), max(1, (h.limit+slotShare-1)/slotShare))
		s.slotAsks = append(s.slotAsks, slotAsk{webhook: h.id, limit: h.limit, window: window, from: from, want: want})
		s.waitSlot(h, time.Time{})
	}
	return false
}

// waitSlot puts h in slotWait until at (zero: until a take answers).
func (s *scheduler) waitSlot(h *hookQueue, at time.Time) {
	if s.slotWait[h.id] == nil {
		s.rateWaits++
	}
	s.slotWait[h.id] = h
	if !at.IsZero() && (s.slotWake.IsZero() || at.Before(s.slotWake)) {
		s.slotWake = at
	}
}

// gotSlots records the answer to take a: n slots from first (n is 0 when
// the window had none left, or the take failed), and lets webhook a
// start again.
func (s *scheduler) gotSlots(a slotAsk, first, n int) {
	h := s.hooks[a.webhook]
	if h == nil || !h.slots.window.Equal(a.window) {
		return // gone, or a new window began meanwhile: these slots passed
	}
	h.slots.asking = false
	if n > 0 {
		h.slots.next, h.slots.end = first, first+n
	} else {
		h.slots.full = a.window
	}
	delete(s.slotWait, h.id)
	s.markReady(h)
}

// tick lets the webhooks waiting for a slot's time or the next window try
// again at now.
func (s *scheduler) tick() {
	for id, h := range s.slotWait {
		if !h.slots.asking {
			delete(s.slotWait, id)
			s.markReady(h)
		}
	}
}
