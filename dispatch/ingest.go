package dispatch

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/heraldhooks/herald"
)

// ingestTimeout bounds one group commit; it does not depend on any one
// caller, whose request may end while others wait on the same commit.
const ingestTimeout = 30 * time.Second

// ingester gathers concurrent CreateEvents calls into group commits.
type ingester struct {
	mu   sync.Mutex
	open *ingestBatch // the batch new calls join; nil when none is open
	// commit is held while a batch is being stored. One commit at a time
	// per node: while it runs, the next batch grows, so batches get larger
	// exactly when the database is the bottleneck.
	commit chan struct{}
}

// ingestBatch is one group commit: the events of every call that joined it.
type ingestBatch struct {
	events  []*herald.Event
	full    chan struct{} // closed when sealed: no call joins any more
	done    chan struct{} // closed when stored or failed
	sealed  bool
	results []herald.EventResult
	err     error
}

// CreateEvents stores events, each with its deliveries, and returns their
// results in order; it implements herald.EventIngester. Concurrent calls
// are stored together in one Store.CreateEvents call (group commit): a
// batch closes when it holds IngestMaxBatch events or IngestMaxWait after
// it opened, and waits while the previous batch is being stored. Every call
// of a batch gets the store's error when the batch fails. When ctx ends
// first, CreateEvents returns ctx.Err() while the batch may still be
// stored. Once stored, the engine is woken to send the new deliveries.
func (e *Engine) CreateEvents(ctx context.Context, events []*herald.Event) ([]herald.EventResult, error) {
	if len(events) == 0 {
		return nil, nil
	}
	ing := &e.ing
	ing.mu.Lock()
	b := ing.open
	if b != nil && len(b.events)+len(events) > e.cfg.IngestMaxBatch {
		ing.seal(b) // these would overfill it: it goes now, these open the next
		b = nil
	}
	if b == nil {
		b = &ingestBatch{full: make(chan struct{}), done: make(chan struct{})}
		ing.open = b
		// The batch is stored by its own goroutine, not by the call that
		// opened it: that call's request may be cancelled, the others not.
		go e.commitBatch(context.WithoutCancel(ctx), b)
	}
	off := len(b.events)
	b.events = append(b.events, events...)
	if len(b.events) >= e.cfg.IngestMaxBatch {
		ing.seal(b)
	}
	ing.mu.Unlock()

	select {
	case <-b.done:
		if b.err != nil {
			return nil, b.err
		}
		end := off + len(events)
		return b.results[off:end:end], nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// seal closes b to new calls. Called with mu held.
func (ing *ingester) seal(b *ingestBatch) {
	if b.sealed {
		return
	}
	b.sealed = true
	close(b.full)
	if ing.open == b {
		ing.open = nil
	}
}

// commitBatch waits for b to fill or for IngestMaxWait, then for its turn,
// and stores it.
func (e *Engine) commitBatch(ctx context.Context, b *ingestBatch) {
	t := time.NewTimer(e.cfg.IngestMaxWait)
	select {
	case <-b.full:
	case <-t.C:
	}
	t.Stop()
	e.ing.commit <- struct{}{}
	e.ing.mu.Lock()
	e.ing.seal(b)
	events := b.events
	e.ing.mu.Unlock()

	ctx, cancel := context.WithTimeout(ctx, ingestTimeout)
	start := time.Now()
	res, err := e.store.CreateEvents(ctx, events)
	cancel()
	<-e.ing.commit
	e.metrics.ingestCommit.Observe(time.Since(start).Seconds())
	e.metrics.ingestBatch.Observe(float64(len(events)))

	if err == nil && len(res) != len(events) {
		err = fmt.Errorf("the store returned %d results for %d events", len(res), len(events))
	}
	if err != nil {
		e.log.Error("could not store events", "events", len(events), "err", err)
		b.err = fmt.Errorf("create events: %w", err)
		close(b.done)
		return
	}
	b.results = res
	close(b.done)
	for _, r := range res {
		if r.Deliveries > 0 && r.Err == nil && !r.Duplicate {
			e.Wake()
			break
		}
	}
}
