package dispatch

import (
	"context"
	"time"

	"github.com/heraldhooks/herald"
)

// Flushing knobs. Results wait a few milliseconds so that one transaction
// records many of them; at flushMax they go at once.
const (
	flushEvery   = 10 * time.Millisecond
	flushMax     = 500
	flushTimeout = 10 * time.Second
	flushBackoff = 2 * time.Second // longest wait between retries while the database is down
)

// pendingResult is an attempt result waiting to be written, with the lease
// that makes writing it safe.
type pendingResult struct {
	herald.AttemptResult
	leaseUntil time.Time
	webhookID  string
}

// flusher writes attempt results in batches. While the database is down it
// keeps them and retries, as long as their lease holds: after that another
// node may have sent the delivery again, and the result is dropped (the
// delivery is then sent again: at-least-once).
type flusher struct {
	e    *Engine
	in   <-chan pendingResult
	done chan struct{}
	// deadline bounds the last flush once in is closed; set before the close.
	deadline time.Time

	pending  []pendingResult
	failures int
}

func (f *flusher) run() {
	defer close(f.done)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	armed := false
	for {
		select {
		case r, ok := <-f.in:
			if !ok {
				f.final()
				return
			}
			f.pending = append(f.pending, r)
			switch {
			case f.failures > 0:
				// Retrying on the backoff timer; a full batch must not turn
				// every new result into another try against a down database.
			case len(f.pending) >= flushMax:
				f.flush()
			case !armed:
				timer.Reset(flushEvery)
				armed = true
			}
		case <-timer.C:
			armed = false
			f.flush()
		}
		if f.failures > 0 && !armed {
			timer.Reset(min(flushEvery<<min(f.failures, 10), flushBackoff))
			armed = true
		}
	}
}

// final writes what is left before Run returns, retrying until the drain
// deadline (at least once). What it cannot write is lost, and those
// deliveries are due again when released or when their lease runs out.
func (f *flusher) final() {
	for {
		f.flush()
		wait := min(flushEvery<<min(f.failures, 10), flushBackoff)
		if len(f.pending) == 0 || time.Until(f.deadline) < wait {
			break
		}
		time.Sleep(wait) // backing off from a database that is down
	}
	for _, r := range f.pending {
		f.e.settle(r)
	}
	if n := len(f.pending); n > 0 {
		f.e.metrics.resultsLost.Add(float64(n))
		f.e.log.Error("could not write attempt results before stopping; those deliveries will be sent again", "results", n)
	}
}

// flush writes pending results, flushMax per transaction, keeping what
// could not be written for the next try.
func (f *flusher) flush() {
	now := f.e.cfg.Now()
	kept := f.pending[:0]
	for _, r := range f.pending {
		if r.leaseUntil.After(now) {
			kept = append(kept, r)
		} else {
			f.e.settle(r)
		}
	}
	if lost := len(f.pending) - len(kept); lost > 0 {
		f.e.metrics.resultsLost.Add(float64(lost))
		f.e.log.Error("attempt results outlived their lease before they could be written; those deliveries will be sent again", "results", lost)
	}
	f.pending = kept
	for len(f.pending) > 0 {
		n := min(len(f.pending), flushMax)
		batch := make([]herald.AttemptResult, n)
		for i, r := range f.pending[:n] {
			batch[i] = r.AttemptResult
		}
		ctx, cancel := context.WithTimeout(context.Background(), flushTimeout)
		err := f.e.store.RecordAttempts(ctx, batch)
		cancel()
		if err != nil {
			f.failures++
			f.e.metrics.flushErrors.Inc()
			f.e.log.Warn("could not write attempt results; retrying", "results", len(f.pending), "err", err)
			return
		}
		f.failures = 0
		for _, r := range f.pending[:n] {
			f.e.settle(r)
		}
		f.pending = f.pending[n:]
	}
	f.pending = nil
}
