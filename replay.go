package herald

import (
	"context"
	"time"
)

// Replay statuses. A replay is RUNNING from its request until its batches
// have worked through its window (DONE), or until its webhook is found
// inactive (STOPPED: what it created is cancelled with the webhook's other
// open deliveries, and a new replay after activation picks up the rest).
const (
	ReplayRunning = "RUNNING"
	ReplayDone    = "DONE"
	ReplayStopped = "STOPPED"
)

// Replay is a request to give a webhook the retained events of a window
// that it has not received: every event of its instance created in
// [Since, Until) that its triggers select (PlanEvent) and that has no
// delivery to it which is DELIVERED or still open (ReplayWants). Events
// from before the webhook existed are included (backfill). The request
// answers at once with Events; batches of a few hundred events each then
// create the deliveries, PENDING and due now, and the counters follow.
type Replay struct {
	ID       string `json:"id"`
	Tenant   string `json:"tenant"`
	Instance string `json:"instance"`
	Webhook  string `json:"webhook"`
	// Since (inclusive) and Until (exclusive) bound the events' creation.
	Since time.Time `json:"since"`
	Until time.Time `json:"until"`
	// Status is RUNNING, DONE or STOPPED.
	Status string `json:"status"`
	// Reason says why a STOPPED replay stopped.
	Reason string `json:"reason,omitempty"`
	// Events is how many retained events of the window the webhook's
	// triggers selected when the replay was requested.
	Events int `json:"events"`
	// Scanned is how many of them the batches have worked through so
	// far; Created how many of those got a new delivery, Skipped how many
	// had one already (DELIVERED or open). Events purged or erased
	// meanwhile are not scanned.
	Scanned int `json:"scanned"`
	Created int `json:"created"`
	Skipped int `json:"skipped"`
	// RequestedBy names who asked, as the audit trail does ("" if
	// unknown).
	RequestedBy string     `json:"requestedBy,omitempty"`
	CreatedAt   time.Time  `json:"createdAt"`
	UpdatedAt   time.Time  `json:"updatedAt"`
	FinishedAt  *time.Time `json:"finishedAt"`
}

// ReplayBatchSize is how many events one replay batch reads, in one
// transaction, unless the worker is configured otherwise.
const ReplayBatchSize = 250

// ReplayBacklog is how many open deliveries a webhook may have before its
// replay waits for them to drain: a replay feeds the queue as the
// receiver takes it, so a large window never buries the live deliveries
// of its webhook under a backlog of old ones.
const ReplayBacklog = 2000

// ValidateReplayWindow checks a replay's window at now: since is
// required, until defaults to now and may not be later, since comes
// before until, and, when retention is set, since is no earlier than now
// minus retention (older events are purged). It returns the window, or
// an EINVALID error naming since or until.
func ValidateReplayWindow(since, until, now time.Time, retention time.Duration) (time.Time, time.Time, error) {
	if since.IsZero() {
		return since, until, FieldErrorf("since", "since is required: the RFC 3339 time from which to replay events, like \"2026-11-26T17:00:00Z\".")
	}
	if until.IsZero() {
		until = now
	}
	if until.After(now) {
		return since, until, FieldErrorf("until", "until (%s) is in the future; replay reaches at most now.", until.UTC().Format(time.RFC3339))
	}
	if !since.Before(until) {
		return since, until, FieldErrorf("since", "since (%s) must come before until (%s).", since.UTC().Format(time.RFC3339), until.UTC().Format(time.RFC3339))
	}
	if retention > 0 && since.Before(now.Add(-retention)) {
		return since, until, FieldErrorf("since", "since (%s) is before the retention of %s: events older than %s are not kept; replay from then on.",
			since.UTC().Format(time.RFC3339), retention, now.Add(-retention).UTC().Format(time.RFC3339))
	}
	return since, until, nil
}

// ReplayWants is the replay rule for one event its webhook's triggers
// select: it gets a new delivery unless one of its deliveries to the
// webhook, whose statuses are given, is DELIVERED (received already) or
// still owed (PENDING, SENT, RETRYING, HELD: on its way). A FAILED or CANCELLED
// delivery keeps its history, and the event gets a new delivery beside it
// (recover would revive the old one instead; a replay leaves history
// alone). So replaying the same window twice sends nothing the second
// time.
func ReplayWants(statuses []string) bool {
	for _, s := range statuses {
		if s == StatusDelivered || Owed(s) {
			return false
		}
	}
	return true
}

// ReplaySelects reports whether a replay for webhook w takes event e:
// the rule of an ingest (PlanEvent, which also needs w active), applied
// to an event already stored.
func ReplaySelects(w *Webhook, e *Event) bool {
	_, targets := PlanEvent(e, nil, []*Webhook{w})
	return len(targets) == 1
}

// ReplayService starts and reads replays. Who may: those who may resend
// deliveries (admins).
type ReplayService interface {
	// CreateReplay records a replay of the webhook's window [since,
	// until) and counts the events it selects, in one transaction, and
	// returns it RUNNING. EUNPROCESSABLE when the webhook is inactive
	// (activate it first); ECONFLICT while another replay of the webhook
	// runs; ENOTFOUND for an unknown webhook. The window is the caller's
	// to validate (ValidateReplayWindow).
	CreateReplay(ctx context.Context, tenant, instance, webhook string, since, until time.Time, requestedBy string) (*Replay, error)
	// GetReplay returns one replay of the webhook, or ENOTFOUND.
	GetReplay(ctx context.Context, tenant, instance, webhook, id string) (*Replay, error)
	// ListReplays returns the webhook's latest replays, newest first, at
	// most limit (default 20).
	ListReplays(ctx context.Context, tenant, instance, webhook string, limit int) ([]*Replay, error)
}

// ReplayWorker works replays through, a batch at a time; every node runs
// one (dispatch.Replayer).
type ReplayWorker interface {
	// ReplayBatch works one batch of up to limit events of the running
	// replay that waited longest, skipping replays whose webhook has
	// backlog or more open deliveries, in one transaction that also
	// advances the replay's cursor: a crash loses nothing and repeats
	// nothing. It returns the replay as the batch left it, or nil when
	// no replay had work.
	ReplayBatch(ctx context.Context, limit, backlog int) (*Replay, error)
}
