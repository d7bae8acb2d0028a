package herald

import (
	"context"
	"time"
)

// Delivery is one event for one webhook of an instance.
type Delivery struct {
	ID           string `json:"id"`
	EventID      string `json:"eventId"`
	Tenant       string `json:"tenant"`
	Instance     string `json:"instance"`
	Webhook      string `json:"webhook"`
	EventEntity  string `json:"eventEntity"`
	EventSubtype string `json:"eventSubtype"`
	Status       string `json:"status"`
	// AttemptCount is how many attempts are on record.
	AttemptCount int `json:"attemptCount"`
	// WindowAttempts is how many of those were made in the current retry
	// window: fewer than AttemptCount after a resend or recover, which
	// start a fresh window. The retry schedule counts from it. Not part of
	// the API.
	WindowAttempts int `json:"-"`
	// NextAttemptAt is when it is next due (PENDING, RETRYING), or when the
	// lease of the node sending it runs out (SENT); nil when it is final.
	NextAttemptAt *time.Time `json:"nextAttemptAt"`
	// WaitReason says, for a person, why it has not been delivered yet or
	// why it stopped ("receiver answered 503; retry 3 of ...").
	WaitReason string `json:"waitReason,omitempty"`
	// FirstAttemptAt starts the retry window (24 h by default); reset by
	// resend and recover.
	FirstAttemptAt *time.Time `json:"firstAttemptAt,omitempty"`
	LastStatusCode int        `json:"lastStatusCode,omitempty"`
	CreatedAt      time.Time  `json:"createdAt"`
	UpdatedAt      time.Time  `json:"updatedAt"`
	Attempts       []Attempt  `json:"attempts,omitempty"`
}

// Attempt is one HTTP request of a delivery.
type Attempt struct {
	N          int       `json:"n"`
	StartedAt  time.Time `json:"startedAt"`
	DurationMs int64     `json:"durationMs"`
	StatusCode int       `json:"statusCode,omitempty"`
	// ResponseBody is the first 4 KiB of the receiver's answer.
	ResponseBody string `json:"responseBody"`
	// Error says what went wrong when there was no 2xx answer ("connection
	// refused", "timeout after 30s", "redirect to ... not followed").
	Error string `json:"error,omitempty"`
}

// MaxResponseBody is how much of a receiver's answer is kept per attempt.
const MaxResponseBody = 4 << 10

// DeliveryFilter selects deliveries of one instance. Empty fields match all.
type DeliveryFilter struct {
	Tenant       string
	Instance     string
	Webhook      string
	Status       string
	EventSubtype string
	EventEntity  string
	EventID      string
	From, To     time.Time // created at, From inclusive, To exclusive; zero: unbounded
	// Cursor is the nextCursor of the previous page ("" for the first).
	Cursor string
	// Limit is the page size. Defaults to 50, at most 500.
	Limit int
}

// DeliveryService reads and re-queues deliveries.
type DeliveryService interface {
	// ListDeliveries returns deliveries newest first, without attempts, and
	// the cursor of the next page ("" on the last page). EINVALID for a
	// cursor it did not make.
	ListDeliveries(ctx context.Context, f DeliveryFilter) ([]*Delivery, string, error)
	// GetDelivery returns one delivery with its attempts, oldest first.
	GetDelivery(ctx context.Context, tenant, instance, id string) (*Delivery, error)
	// ResendDelivery makes any delivery PENDING and due now, with a fresh
	// retry window; earlier attempts stay on record. EUNPROCESSABLE if its
	// webhook is inactive, ECONFLICT if it is SENT right now.
	ResendDelivery(ctx context.Context, tenant, instance, id string) (*Delivery, error)
}

// Job is a claimed delivery with everything needed to send it.
type Job struct {
	Delivery *Delivery
	Event    *Event
	Webhook  *Webhook
	// Secrets sign the request: the current secret first, then rotated-out
	// secrets within their grace period.
	Secrets []string
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
	// timeout: the claim time plus the node's margin (LeaseMargin by
	// default). Each delivery is leased until LeaseEnd(LeaseUntil, its
	// webhook's timeout), so a claim lasts as long as its request may, and a
	// dead node's claims come back sooner for webhooks with short timeouts.
	// The delivery is due again then unless a result is recorded first.
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

// AttemptResult is the outcome of one attempt, to be recorded.
type AttemptResult struct {
	DeliveryID string
	Attempt    Attempt
	// Status is the delivery's new status: DELIVERED, RETRYING or FAILED.
	Status string
	// NextAttemptAt is when a RETRYING delivery is due again.
	NextAttemptAt time.Time
	WaitReason    string
	// DeactivateReason, when set, deactivates the delivery's webhook with
	// this reason (the receiver answered 410 Gone).
	DeactivateReason string
}

// Write is one transaction of the dispatch engine: new events with their
// deliveries, and the results of attempts, committed together so that a
// node under load pays for one commit (one fsync) where it would pay for
// two.
type Write struct {
	// Events are stored as EventIngester.CreateEvents stores them.
	Events []*Event
	// Handoff, when not nil, claims new deliveries as they are created.
	Handoff *Handoff
	// Results are recorded as DeliveryQueue.RecordAttempts records them.
	Results []AttemptResult
}

// Handoff asks Write to create some of the new deliveries already claimed
// (SENT, owned by Owner until LeaseEnd(LeaseUntil, the webhook's timeout),
// as for ClaimRequest; see HandoffRoom) and return them as jobs: the node
// that stored an event sends its deliveries at once, without a claim.
// Deliveries beyond the room stay PENDING and due now, for any node's claim.
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

// Written is what a Write stored.
type Written struct {
	// Events holds the result of each of Write.Events, in order.
	Events []EventResult
	// Jobs are the deliveries claimed at creation, in the order of their
	// events.
	Jobs []*Job
}

// DeliveryQueue is what the dispatch engine needs from the store.
type DeliveryQueue interface {
	EventIngester
	// Write stores events with their deliveries (handing some to the
	// caller when w.Handoff is set) and records attempt results, all in one
	// transaction. The error is for the whole write; per-event refusals
	// are in Written.Events.
	Write(ctx context.Context, w *Write) (*Written, error)
	// ClaimDeliveries marks up to r.Limit due deliveries of active webhooks
	// as SENT, owned by r.Owner until r.LeaseUntil, oldest due first and at
	// most r.PerWebhook per webhook, and returns them. Deliveries claimed by
	// another node whose lease has not run out are never returned; on
	// PostgreSQL concurrent claimers skip each other's rows.
	ClaimDeliveries(ctx context.Context, r ClaimRequest) ([]*Job, error)
	// RecordAttempts stores the attempts and new states of claimed
	// deliveries in one transaction. A result for a delivery that is no
	// longer SENT (cancelled meanwhile) keeps its attempt but not its
	// status; a result for a delivery that no longer exists (purged
	// meanwhile) is dropped, and neither fails the others nor brings the
	// delivery back.
	RecordAttempts(ctx context.Context, results []AttemptResult) error
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
}
