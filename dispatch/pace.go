package dispatch

import (
	"time"

	"github.com/heraldhooks/herald"
)

// pace is one webhook's adaptive in-flight window on this node: additive
// increase, multiplicative decrease (AIMD), as TCP paces a connection. It
// is pure data, kept by the scheduler in the webhook's hookQueue (and in
// took while the webhook is idle); docs/decisions/0021-adaptive-pace.md
// says why it is cut this way.
//
// The window starts at the webhook's maximum (the scheduler's in-flight
// cap: PerWebhookInFlight, or FastWebhookInFlight for a fast receiver), so
// a receiver that keeps up never notices it. A sign of overload (a timeout,
// a 429 or 503 answer, or answers taking more than twice as long as the
// best recent average, and at least slowerBy longer) halves it, at most
// once per round: the requests still in flight when it was cut were sent
// before the cut, so their answers do not cut it again, and one burst of
// failures counts once. It never goes below 1. Each answer without those
// signs adds 1/window, one per round trip of a full window, back up to the
// maximum.
type pace struct {
	// window is the number of requests the webhook may have in flight;
	// 0 means it is not paced: the maximum, whatever that is now.
	window float64
	// sinceCut counts the requests ended since the window was last cut,
	// and sentBefore how many were in flight then: a new sign cuts it
	// again only once those have ended (a round).
	sinceCut, sentBefore int
	// best is the best recent average request time: the lowest average
	// seen, drifting up towards the average by 1/bestDrift per answer, so
	// a receiver that got slower for good becomes the new normal.
	best time.Duration
	// counted is the scheduler's: whether the webhook is counted in
	// scheduler.paced, as paced was when a request last ended.
	counted bool
}

// bestDrift is how many answers it takes best to catch up with a lasting
// change of the average by about 63%.
const bestDrift = 64

// slowerBy is the least an average request time must exceed twice the
// best to count as a sign of overload, so a receiver whose answers go from
// 2ms to 5ms is not paced for it.
const slowerBy = 50 * time.Millisecond

// limit returns how many requests may be in flight with the maximum max.
func (p *pace) limit(max int) int {
	if p.window == 0 || int(p.window) >= max {
		return max
	}
	return int(p.window)
}

// paced reports whether the window is below max.
func (p *pace) paced(max int) bool { return p.limit(max) < max }

// ended records a request that ended: ok says it was answered 2xx,
// overloaded that it timed out or was answered 429 or 503 (any other
// failure is neither: it neither cuts nor grows the window); avg is the
// webhook's average request time with this one; max is the webhook's
// in-flight maximum now, and inFlight how many of its requests are still
// in flight.
func (p *pace) ended(ok, overloaded bool, avg time.Duration, max, inFlight int) {
	p.sinceCut++
	if ok && avg > 0 {
		if p.best == 0 || avg < p.best {
			p.best = avg
		} else {
			p.best += (avg - p.best) / bestDrift
		}
	}
	slow := ok && avg > 0 && p.best > 0 && avg > 2*p.best && avg-2*p.best >= slowerBy
	cur := p.limit(max)
	switch {
	case overloaded || slow:
		if p.window != 0 && p.sinceCut <= p.sentBefore {
			return // sent before the last cut: that round was cut already
		}
		p.window = float64(cur) / 2
		if p.window < 1 {
			p.window = 1
		}
		p.sinceCut, p.sentBefore = 0, inFlight
		if slow {
			// The cut is for this slowness: measure the next from here.
			p.best = avg / 2
		}
	case ok && p.window != 0:
		p.window += 1 / p.window
		if int(p.window) >= max {
			p.window, p.sinceCut, p.sentBefore = 0, 0, 0
		}
	}
}

// paceOf returns how webhook id is paced on this node now.
func (s *scheduler) paceOf(id string) herald.WebhookPace {
	h := s.hooks[id]
	if h == nil {
		t := s.took[id]
		h = &hookQueue{took: t.took, fails: t.fails, pace: t.pace}
	}
	return herald.WebhookPace{InFlightLimit: s.inFlightCap(h), Max: s.maxInFlight(h), InFlight: h.inFlight}
}
