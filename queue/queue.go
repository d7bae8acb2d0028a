// Package queue is the contract between the delivery engine and the
// store: what package dispatch calls, and what package sqlstore
// implements, to store events with their deliveries, claim due
// deliveries, record the results of attempts and give claims back. It
// holds the transport of that conversation (Write and Written, Handoff,
// ClaimRequest, Job) and the Store interface, nothing else: the rules a
// delivery lives by (which webhooks an event makes deliveries for, how
// many are handed off, leases, what a result does) are the domain's, in
// package herald (lifecycle.go), and the store applies them.
//
// There is one write path: the engine writes events and results only
// through Store.Write, in group commits, so every event accepted by a
// node is handed to that node's engine in the transaction that stores
// it. The API and the web UI do not see this package; they take a
// herald.Store for what they read and manage, and a herald.EventIngester
// (the engine) to accept events.
//
// The package imports only the domain, so that the engine and the store
// need not import each other, as docs/decisions/0016-queue-contract.md
// explains.
package queue

import (
	"context"
	"time"

	"github.com/heraldhooks/herald"
)

// Store is what the engine needs from the database: one write path
// (Write) and the claims. sqlstore.DB implements it; dispatch.Engine is
// its only caller outside tests, with the binary's ReleaseAll at start.
type Store interface {
	// Write stores events with their deliveries (handing some to the
	// caller when w.Handoff is set) and records attempt results, all in one
	// transaction. The error is for the whole write; per-event refusals
	// are in Written.Events.
	//
	// Events are stored as herald.EventIngester.CreateEvents promises. A
	// result is recorded with its attempt and the delivery's new state; a
	// result for a delivery that is no longer SENT (cancelled meanwhile)
	// keeps its attempt but not its status; a result for a delivery that
	// no longer exists (purged meanwhile) is dropped, and neither fails the
	// others nor brings the delivery back.
	Write(ctx context.Context, w *Write) (*Written, error)
	// ClaimDeliveries marks up to r.Limit due deliveries of active webhooks
	// as SENT, owned by r.Owner until r.LeaseUntil, oldest due first and at
	// most r.PerWebhook per webhook, and returns them. Deliveries claimed by
	// another node whose lease has not run out are never returned; on
	// PostgreSQL concurrent claimers skip each other's rows.
	ClaimDeliveries(ctx context.Context, r ClaimRequest) ([]*Job, error)
	// ReleaseDeliveries makes the owner's SENT deliveries due again at once:
	// on graceful shutdown, and at start for the single SQLite node, which
	// takes back its predecessor's leases.
	ReleaseDeliveries(ctx context.Context, owner string) (int, error)
	// ReleaseUnheld makes the owner's SENT deliveries that are not in held
	// due again at once, as ReleaseDeliveries does, and returns how many it
	// released. The engine calls it once the database answers after a
	// claim whose outcome it does not know: a claim can commit and its
	// answer be lost with the connection, and the deliveries it took would
	// otherwise wait out the lease. held lists every delivery the owner is
	// still working on (sending, queued, or with a result not yet
	// recorded); those keep their claim. held may be long and may name
	// deliveries that are no longer SENT.
	ReleaseUnheld(ctx context.Context, owner string, held []string) (int, error)
	// ReleaseAll makes every SENT delivery due at once, whatever its owner.
	// Only for a single-node store (SQLite) at start.
	ReleaseAll(ctx context.Context) (int, error)
	// NextDue returns when the earliest delivery becomes due (nil if none):
	// the engine sleeps until then or until woken.
	NextDue(ctx context.Context) (*time.Time, error)
	// TakeSlots takes request slots of a webhook with a rate limit, for
	// the engine to start that many requests at the slots' times. Every
	// node takes from the same windows: no two takes get the same slot,
	// whatever node asks. It returns the first slot taken and how many
	// (from r.From on, at most r.Want; none when the window's slots from
	// r.From are all taken, or when a node already took slots of a later
	// window: this node's clock is behind).
	TakeSlots(ctx context.Context, r SlotRequest) (first, n int, err error)
}

// SlotRequest asks for request slots of a webhook's one-second window:
// with a rate limit of Limit per second, the window has slots 0 to
// Limit-1, slot i starting Window + i/Limit seconds.
type SlotRequest struct {
	Webhook string // its ID
	Limit   int
	// Window is the start of the one-second window, a whole second.
	Window time.Time
	// From is the first slot wanted: the slots before it have passed.
	From int
	// Want is the most slots to take.
	Want int
}

// Signer signs a request with a webhook's keys, decoded once
// (*signature.Signer): the webhook-signature header value for a message.
type Signer interface {
	Sign(msgID string, ts time.Time, body []byte) (string, error)
}

// Job is a claimed delivery with everything needed to send it.
type Job struct {
	Delivery *herald.Delivery
	Event    *herald.Event
	Webhook  *herald.Webhook
	// Secrets sign the request: the current secret first, then rotated-out
	// secrets within their grace period.
	Secrets []string
	// Signer signs with Secrets, decoded once for every job of the
	// webhook in the batch; nil when the job was built without one (the
	// sender then decodes Secrets itself).
	Signer Signer
	// LeaseUntil is when the claim runs out and another node may take it.
	LeaseUntil time.Time
	// ClaimedAt is when the delivery was claimed (or created claimed).
	ClaimedAt time.Time
}

// ClaimRequest asks for due deliveries.
type ClaimRequest struct {
	// Owner identifies the claiming node, recorded on claimed deliveries.
	Owner string
	// Now is the current time: deliveries due at or before it are claimed.
	Now time.Time
	// LeaseUntil is how long the claim lasts before the webhook's own
	// timeout: the claim time plus the node's margin (herald.LeaseMargin by
	// default). Each delivery is leased until herald.LeaseEnd(LeaseUntil,
	// its webhook's timeout), so a claim lasts as long as its request may,
	// and a dead node's claims come back sooner for webhooks with short
	// timeouts. The delivery is due again then unless a result is recorded
	// first.
	LeaseUntil time.Time
	// Limit is the most deliveries to claim in all.
	Limit int
	// PerWebhook is the most deliveries to claim for any one webhook, so a
	// webhook with a large backlog cannot take every slot.
	PerWebhook int
	// ExcludeWebhooks lists webhook IDs not to claim for (they have no
	// free in-flight slot on this node).
	ExcludeWebhooks []string
}

// Write is one transaction of the dispatch engine: new events with their
// deliveries, and the results of attempts, committed together so that a
// node under load pays for one commit (one fsync) where it would pay for
// two.
type Write struct {
	// Events are stored as herald.EventIngester.CreateEvents promises.
	Events []*herald.Event
	// Handoff, when not nil, claims new deliveries as they are created.
	Handoff *Handoff
	// Results are recorded as Store.Write says.
	Results []herald.AttemptResult
}

// Handoff asks Write to create some of the new deliveries already claimed
// (SENT, owned by Owner until herald.LeaseEnd(LeaseUntil, the webhook's
// timeout), as for ClaimRequest; see herald.HandoffRoom) and return them
// as jobs: the node that stored an event sends its deliveries at once,
// without a claim. Deliveries beyond the room stay PENDING and due now,
// for any node's claim.
type Handoff struct {
	Owner      string
	LeaseUntil time.Time
	// Room is how many new deliveries of each webhook (by ID) may be
	// claimed; a webhook not in it may have Default.
	Room    map[string]int
	Default int
	// Limit is the most deliveries claimed in all.
	Limit int
}

// HandoffRoom returns the room h offers, counted on a copy of h.Room, for
// the store to place a write's new deliveries with. A nil h offers none:
// every new delivery is PENDING.
func (h *Handoff) HandoffRoom() *herald.HandoffRoom {
	if h == nil {
		return &herald.HandoffRoom{}
	}
	return herald.NewHandoffRoom(h.Owner, h.LeaseUntil, h.Room, h.Default, h.Limit)
}

// Written is what a Write stored.
type Written struct {
	// Events holds the result of each of Write.Events, in order.
	Events []herald.EventResult
	// Jobs are the deliveries claimed at creation, in the order of their
	// events.
	Jobs []*Job
}
