// Package storetest is the conformance suite every herald.Store must pass,
// against real databases only. It opens no store itself: the caller gives
// Run a factory (NewStoreFunc) that opens a new, empty store for each
// behaviour; sqlstore's tests give it one per dialect, built on
// heraldtest/storekit. storetest does not import sqlstore, so what the
// suite checks is the herald.Store and queue.Store contracts and the
// capabilities the factory hands over (Store.Rewrap), nothing of one
// implementation.
//
// It also holds Proxy, a TCP proxy that cuts a database's connections, for
// outage tests.
package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/heraldhooks/herald"
	"github.com/heraldhooks/herald/heraldtest"
	"github.com/heraldhooks/herald/queue"
)

// Epoch is where every suite clock starts.
var Epoch = time.Date(2026, 11, 26, 17, 0, 0, 0, time.UTC)

// UnderTest is the store the suite checks: both contracts a store
// implements (herald.Store for the front doors and tools, queue.Store for
// the engine), and the two conveniences over the one write path that the
// suite uses to set up and check state (sqlstore.DB has them): CreateEvents
// (a Write of events alone, without handoff) and RecordAttempts (a Write of
// results alone).
type UnderTest interface {
	herald.Store
	queue.Store
	herald.EventIngester
	// RecordAttempts records results as queue.Store.Write does.
	RecordAttempts(ctx context.Context, results []herald.AttemptResult) error
}

// Store is what a NewStoreFunc returns: the store under test and the
// capabilities beyond its contracts that the suite checks when they are
// given.
type Store struct {
	UnderTest
	// Rewrap, when set, seals every secret and audit diff again under the
	// store's current master key (herald keys rewrap); the suite checks
	// that the audit chain still verifies after it. Nil skips that check.
	Rewrap func(context.Context) error
}

// NewStoreFunc returns a new, empty store whose Config.Now is clock.Now.
// The store must be closed when t ends.
type NewStoreFunc func(t *testing.T, clock *heraldtest.Clock) Store

// Run runs the conformance suite: one subtest per behaviour, each on its own
// new store and its own clock, stopped at Epoch.
func Run(t *testing.T, newStore NewStoreFunc) {
	for _, tc := range suite {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			clock := heraldtest.NewClock(Epoch)
			s := newStore(t, clock)
			e := &env{T: t, S: s.UnderTest, rewrap: s.Rewrap, Clock: clock, Ctx: context.Background()}
			tc.fn(e)
		})
	}
}
