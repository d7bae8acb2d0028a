package herald

import (
	"maps"
	"time"
)

// Delivery statuses. A delivery is one event for one webhook, and this file
// holds every rule of its life as pure functions (no I/O; the clock and the
// randomness are passed in): which webhooks an event makes deliveries for
// and the status each is created in (PlanEvent, HandoffRoom), claims and
// their leases (Claimable, Claim, LeaseEnd, Release), what an attempt's
// result does to the delivery and to its webhook (RetryPolicy.Decide in
// retry.go on the sending node, ApplyResult and WebhookHealth in the
// store), what people do to it (Resend, Recover, Cancel), and the chains
// of a webhook that orders its deliveries per key (Chained, Hold, Unhold;
// ordering.go). The store loads, calls these, and writes what they return.
//
//	                claim, or handoff at creation        2xx
//	PENDING ──────────────────────────────────▶ SENT ─────────────▶ DELIVERED
//	   ▲                                        │ │ ▲
//	   │                                        │ │ └──── claim ────┐
//	   │                                        │ └────▶ RETRYING ──┘  non-2xx, timeout, network error,
//	   │                                        │                      blocked destination: due at the
//	   │                                        │                      schedule's next step, or at
//	   │                                        │                      Retry-After (capped)
//	   │                                        ▼
//	   │                                      FAILED    the next attempt would fall after the window's
//	   │                                                first attempt + 24 h, or 410 Gone (and the
//	   │                                                webhook is deactivated)
//	   ├── recover: FAILED, CANCELLED
//	   └── resend: any status but SENT, with a fresh 24 h window
//
//	(none) ──created or replayed for an ordered webhook while the delivery
//	         before it of its key is owed (Chained)──▶ HELD (Hold: due at no
//	         time, never claimed, handed off or purged)
//	HELD ──the one it waits for ended DELIVERED, FAILED or CANCELLED, or was
//	       erased, or the webhook's ordering was set to none (Unhold)──▶ PENDING
//	HELD ──webhook deactivated──▶ CANCELLED
//	FAILED, CANCELLED ──recover, for an ordered webhook, behind an owed
//	         delivery of its key (Recover, then Chained, Hold)──▶ HELD
//
//	(none) ──replay: an event the webhook's triggers select, with no delivery
//	         to it DELIVERED or open (ReplaySelects, ReplayWants)──▶ PENDING
//
//	RETRYING ──its webhook answered 2xx again after failing (CatchUp, the
//	         CatchUpBatch due soonest)──▶ RETRYING, due now, in the same window
//
//	SENT ──lease ran out──▶ SENT (due again: any node claims it afresh)
//	SENT ──released (shutdown, restart, lost claim)──▶ PENDING if never attempted, else RETRYING
//	PENDING, RETRYING, SENT ──webhook deactivated──▶ CANCELLED
//
// A result for a delivery that is no longer SENT (cancelled meanwhile)
// keeps its attempt but not its status.
const (
	StatusPending   = "PENDING"
	StatusSent      = "SENT" // in flight: claimed by a node under a lease
	StatusDelivered = "DELIVERED"
	StatusRetrying  = "RETRYING"
	StatusFailed    = "FAILED"
	StatusCancelled = "CANCELLED"
	// StatusHeld is a delivery of an ordered webhook waiting for the one
	// before it of its key (DeliveryState.WaitingFor) to end.
	StatusHeld = "HELD"
)

// Statuses lists every delivery status.
var Statuses = []string{StatusPending, StatusSent, StatusDelivered, StatusRetrying, StatusFailed, StatusCancelled, StatusHeld}

// Wait reasons of the transitions people make, and of the catch-up.
const (
	ReasonResent    = "resent"
	ReasonRecovered = "recovered"
	ReasonCaughtUp  = "due now: its receiver answered again after failing"
)

// CatchUpBatch is how many of a recovered webhook's RETRYING deliveries
// CatchUp makes due at once: the soonest due, within the write that found
// the webhook answering again; the rest keep their schedule.
const CatchUpBatch = 500

// CancelReason is the wait reason of a delivery cancelled because its
// webhook was deactivated for reason.
func CancelReason(reason string) string { return "cancelled: webhook deactivated (" + reason + ")" }

// DeliveryState is a delivery as the state machine sees it: what the store
// keeps of it beyond its identity.
type DeliveryState struct {
	Status string
	// Attempts is how many attempts are on record.
	Attempts int
	// WindowStart is how many of them came before the current retry
	// window: resend and recover start a fresh window at Attempts.
	WindowStart int
	// FirstAttemptAt is the first attempt of the current window; nil
	// until one is made.
	FirstAttemptAt *time.Time
	// DueAt is when it is next due (PENDING, RETRYING) or when its lease
	// runs out (SENT); nil when it is final. Open deliveries are exactly
	// those with a DueAt.
	DueAt *time.Time
	// Owner is the node that claimed it, while it is SENT.
	Owner          string
	WaitReason     string
	LastStatusCode int
	// WaitingFor is the delivery before it of its key that it waits for
	// while HELD, and waited for once released; "" if it never waited.
	WaitingFor string
}

// Open reports whether the delivery is still owed: PENDING, RETRYING or
// SENT. DELIVERED, FAILED and CANCELLED are final until a resend or recover.
func Open(status string) bool {
	return status == StatusPending || status == StatusRetrying || status == StatusSent
}

// Owed reports whether a delivery in status still has to be sent: open, or
// HELD behind the one before it of its key. The others are final.
func Owed(status string) bool { return Open(status) || status == StatusHeld }

// HeldReason is the wait reason of a delivery HELD behind prev.
func HeldReason(prev string) string {
	return "waits for " + prev + ", the delivery before it of the same key, to end"
}

// UnheldReason is the wait reason of a delivery released when prev, the
// one it waited for, ended in status (or "erased"); UnheldByOrdering when
// the webhook's ordering was set to none.
func UnheldReason(prev, status string) string {
	return "waited for " + prev + ", which ended " + status
}

// UnheldByOrdering is the wait reason of a delivery released because its
// webhook's ordering was set to none.
const UnheldByOrdering = "released: the webhook's ordering was set to none"

// Chained reports whether a new delivery of an ordered webhook, the next
// of its key after prev (the last delivery made for the key, in status
// prevStatus; "" when there is none or it was erased), is HELD behind it
// rather than placed as any new delivery is (HandoffRoom): while prev is
// owed.
func Chained(prev, prevStatus string) bool { return prev != "" && Owed(prevStatus) }

// Hold returns s HELD behind prev: due at no time and unowned, so that
// nothing claims, hands off, expires or purges it, its attempts kept on
// record. A new delivery is held from the zero state; a recovered one of
// an ordered webhook (Recover), from its state once recovered.
func Hold(s DeliveryState, prev string) DeliveryState {
	s.Status, s.DueAt, s.Owner, s.WaitingFor, s.WaitReason = StatusHeld, nil, "", prev, HeldReason(prev)
	return s
}

// Unhold returns a HELD s PENDING, due at now with a fresh retry window,
// because the one it waited for ended (reason: UnheldReason or
// UnheldByOrdering). It keeps WaitingFor, so the log still says what it
// waited for. Any other s is left as it is (false).
func Unhold(s DeliveryState, reason string, now time.Time) (DeliveryState, bool) {
	if s.Status != StatusHeld {
		return s, false
	}
	return s.pending(reason, now), true
}

// State returns d's state. Its Owner is unknown (""): a Delivery does not
// carry it.
func (d *Delivery) State() DeliveryState {
	return DeliveryState{Status: d.Status, Attempts: d.AttemptCount, WindowStart: d.AttemptCount - d.WindowAttempts,
		FirstAttemptAt: d.FirstAttemptAt, DueAt: d.NextAttemptAt, WaitReason: d.WaitReason, LastStatusCode: d.LastStatusCode,
		WaitingFor: d.WaitingFor}
}

// SetState makes d show state s.
func (d *Delivery) SetState(s DeliveryState) {
	d.Status, d.AttemptCount, d.WindowAttempts = s.Status, s.Attempts, s.Attempts-s.WindowStart
	d.FirstAttemptAt, d.NextAttemptAt, d.WaitReason, d.LastStatusCode = s.FirstAttemptAt, s.DueAt, s.WaitReason, s.LastStatusCode
	d.WaitingFor = s.WaitingFor
}

// pending is a delivery due now with a fresh retry window, unowned.
func (s DeliveryState) pending(reason string, now time.Time) DeliveryState {
	s.Status, s.DueAt, s.FirstAttemptAt, s.WindowStart, s.Owner, s.WaitReason = StatusPending, &now, nil, s.Attempts, "", reason
	return s
}

// PlanEvent says what storing event e makes, given the active webhooks of
// its instance. When hit is not nil (the stored event whose idempotency key
// e repeats) it makes nothing: e is reported as that event, a duplicate.
// Otherwise e gets one delivery for each webhook that is active and whose
// triggers match it, in the order given; a webhook deactivated before the
// ingest read it gets none (one deactivated after has its delivery
// cancelled with the others, Cancel).
func PlanEvent(e *Event, hit *EventResult, webhooks []*Webhook) (EventResult, []*Webhook) {
	if hit != nil {
		r := *hit
		r.Duplicate = true
		return r, nil
	}
	var targets []*Webhook
	for _, w := range webhooks {
		if w.Active && MatchesAny(w.Triggers, e) {
			targets = append(targets, w)
		}
	}
	return EventResult{EventID: e.ID, Deliveries: len(targets)}, targets
}

// LeaseMargin is how long a claim lasts beyond its webhook's timeout
// unless the engine is configured otherwise: the 5 s a claimed delivery
// may wait in its node's local queue and 30 s to write the result. A
// delivery to a webhook with the default 30 s timeout is leased for 65 s.
const LeaseMargin = 35 * time.Second

// LeaseEnd is the lease rule: when the claim of a delivery to a webhook
// whose requests time out after timeout runs out. until is what the
// claiming node asked for (queue.ClaimRequest.LeaseUntil,
// queue.Handoff.LeaseUntil): its clock at the claim plus its margin,
// LeaseMargin by default. Until then the delivery is SENT and no other
// node takes it; from then on it is due again (Claimable), as if its
// claimer had died.
//
// The claim statement of sqlstore, which claims many deliveries at once,
// passes LeaseEnd(until, 0) and adds each row's timeout_seconds itself.
func LeaseEnd(until time.Time, timeout time.Duration) time.Time { return until.Add(timeout) }

// LeaseCovers reports whether a claim that runs out at end still has room,
// at now, for a request of timeout and margin more (the result's write): a
// queued delivery whose lease does not cover it is released and claimed
// afresh rather than started.
func LeaseCovers(end, now time.Time, timeout, margin time.Duration) bool {
	return end.Sub(now) >= timeout+margin
}

// Claimable reports whether a delivery in state s, of a webhook that is
// active or not, may be claimed at now: it is open and its DueAt has come.
// A PENDING or RETRYING delivery comes due at its next attempt, a SENT one
// when its lease runs out. A delivery of an inactive webhook is never
// claimed.
func Claimable(s DeliveryState, active bool, now time.Time) bool {
	return active && Open(s.Status) && s.DueAt != nil && !s.DueAt.After(now)
}

// Claim returns s claimed by owner until leaseEnd (LeaseEnd): SENT, due
// when the lease runs out.
func Claim(s DeliveryState, owner string, leaseEnd time.Time) DeliveryState {
	s.Status, s.Owner, s.DueAt = StatusSent, owner, &leaseEnd
	return s
}

// Release returns a SENT s given back at now, due at once and unowned:
// PENDING if it was never attempted, else RETRYING. Any other s is left as
// it is (false).
func Release(s DeliveryState, now time.Time) (DeliveryState, bool) {
	if s.Status != StatusSent {
		return s, false
	}
	s.Status, s.DueAt, s.Owner = StatusRetrying, &now, ""
	if s.Attempts == 0 {
		s.Status = StatusPending
	}
	return s, true
}

// HandoffRoom places the deliveries an ingest creates: claimed at creation
// by the node that stored the event (handoff) while that node's queue for
// the webhook has room, else left for any node's claim. Its zero value
// has no room. The engine asks for room with a handoff (queue.Handoff,
// whose HandoffRoom method makes one of these); the rule is here.
type HandoffRoom struct {
	owner      string
	leaseUntil time.Time
	room       map[string]int
	def        int
	limit      int
}

// NewHandoffRoom returns the room a handoff offers: new deliveries claimed
// by owner until LeaseEnd(leaseUntil, the webhook's timeout), at most
// room[webhook ID] of a webhook in room and def of any other, and limit
// in all. room is copied, not changed.
func NewHandoffRoom(owner string, leaseUntil time.Time, room map[string]int, def, limit int) *HandoffRoom {
	r := &HandoffRoom{owner: owner, leaseUntil: leaseUntil, room: maps.Clone(room), def: def, limit: limit}
	if r.room == nil {
		r.room = map[string]int{}
	}
	return r
}

// Place returns the state a new delivery to webhook w is created in at
// now: SENT, owned by the handoff's owner until LeaseEnd(leaseUntil, w's
// timeout), while there is room for w (room[w.ID], else def) and in all
// (limit), taking one of each; else PENDING and due now.
func (r *HandoffRoom) Place(w *Webhook, now time.Time) DeliveryState {
	if r.limit > 0 {
		n, ok := r.room[w.ID]
		if !ok {
			n = r.def
		}
		if n > 0 {
			r.room[w.ID] = n - 1
			r.limit--
			return Claim(DeliveryState{}, r.owner, LeaseEnd(r.leaseUntil, time.Duration(w.TimeoutSeconds)*time.Second))
		}
	}
	return DeliveryState{Status: StatusPending, DueAt: &now}
}

// ApplyResult returns s once the result r of one of its attempts is
// recorded at now. The attempt always counts: Attempts grows by one, it
// starts the window if none has started (FirstAttemptAt), and its status
// code is the last. The status follows r only while s is SENT: a result
// for a delivery that is no longer SENT (cancelled while the request was
// out) keeps its attempt, not its status. Leaving SENT, the delivery is
// unowned: due at r.NextAttemptAt when RETRYING (now if r has none), and at
// no time when DELIVERED or FAILED.
func ApplyResult(s DeliveryState, r AttemptResult, now time.Time) DeliveryState {
	s.Attempts++
	s.LastStatusCode = r.Attempt.StatusCode
	if s.FirstAttemptAt == nil {
		started := r.Attempt.StartedAt
		s.FirstAttemptAt = &started
	}
	if s.Status != StatusSent {
		return s
	}
	s.Status, s.WaitReason, s.Owner, s.DueAt = r.Status, r.WaitReason, "", nil
	if r.Status == StatusRetrying {
		next := r.NextAttemptAt
		if next.IsZero() {
			next = now
		}
		s.DueAt = &next
	}
	return s
}

// WebhookHealth is what the attempt results of one write do to their
// webhook: its failure record (failing_since, the start of the first failed
// attempt since the last success, from which the maintenance leader
// deactivates webhooks that fail for days; last_failed_at) and its
// deactivation on 410 Gone. Add the results in the order they are
// recorded; a result counts whatever became of its delivery.
type WebhookHealth struct {
	// FailingSince is when the first failed attempt after the last
	// success started; nil when none failed after it.
	FailingSince *time.Time
	// Succeeded says an attempt delivered: FailingSince then replaces the
	// stored failing_since (nil clears it). Otherwise a stored
	// failing_since stays and FailingSince fills it only when empty.
	Succeeded bool
	// LastFailedAt is when the latest failed attempt started; zero when
	// none failed.
	LastFailedAt time.Time
	// Failures counts the failed attempts after the last success (all of
	// them when none succeeded): the stored consecutive_failures becomes
	// this after a success, and grows by it otherwise.
	Failures int
	// DeactivateReason, when set, deactivates the webhook, cancelling its
	// open deliveries; a webhook inactive already keeps the reason it was
	// given (see Deactivates).
	DeactivateReason string
}

// Add counts result r.
func (h *WebhookHealth) Add(r AttemptResult) {
	started := r.Attempt.StartedAt
	if r.Status == StatusDelivered {
		h.Succeeded, h.FailingSince, h.Failures = true, nil, 0
	} else {
		h.Failures++
		if h.FailingSince == nil {
			h.FailingSince = &started
		}
		if started.After(h.LastFailedAt) {
			h.LastFailedAt = started
		}
	}
	if r.DeactivateReason != "" {
		h.DeactivateReason = r.DeactivateReason
	}
}

// Apply returns the webhook's failing_since and last_failed_at once the
// write is recorded, from the stored ones.
func (h WebhookHealth) Apply(failingSince, lastFailedAt *time.Time) (*time.Time, *time.Time) {
	switch {
	case h.FailingSince == nil:
		return nil, lastFailedAt
	case h.Succeeded:
		return h.FailingSince, &h.LastFailedAt
	case failingSince == nil:
		return h.FailingSince, &h.LastFailedAt
	}
	return failingSince, &h.LastFailedAt
}

// Deactivates reports whether the write deactivates the webhook, which is
// active or not: a 410 Gone deactivates an active webhook, and one
// deactivated meanwhile (by an admin, say) keeps its reason, since the 410
// answered a request sent before.
func (h WebhookHealth) Deactivates(active bool) bool { return h.DeactivateReason != "" && active }

// Cancel returns an owed s (open or HELD) CANCELLED because its webhook
// was deactivated for reason: due at no time, unowned. A final s is left
// as it is (false).
func Cancel(s DeliveryState, reason string) (DeliveryState, bool) {
	if !Owed(s.Status) {
		return s, false
	}
	s.Status, s.DueAt, s.Owner, s.WaitReason = StatusCancelled, nil, "", CancelReason(reason)
	return s, true
}

// Recover returns a FAILED or CANCELLED s PENDING again, due at now, with a
// fresh retry window (its attempts stay on record). Any other s is left as
// it is (false). The webhook must be active, which the caller checks once
// for all its deliveries.
func Recover(s DeliveryState, now time.Time) (DeliveryState, bool) {
	if s.Status != StatusFailed && s.Status != StatusCancelled {
		return s, false
	}
	return s.pending(ReasonRecovered, now), true
}

// CatchUp returns a RETRYING s due later than now due now, in the same
// retry window, when its webhook has just answered 2xx after failing: a
// receiver that was down for a while gets what it missed as soon as it is
// back, rather than at each delivery's next step of the schedule, which
// may be hours away. Any other s, or one already due, is left as it is
// (false).
func CatchUp(s DeliveryState, now time.Time) (DeliveryState, bool) {
	if s.Status != StatusRetrying || s.DueAt == nil || !s.DueAt.After(now) {
		return s, false
	}
	s.DueAt, s.WaitReason = &now, ReasonCaughtUp
	return s, true
}

// Resend returns delivery d PENDING again, due at now, with a fresh retry
// window (its attempts stay on record), whatever its status but SENT or
// HELD: EUNPROCESSABLE when its webhook is inactive, ECONFLICT while it is
// SENT (its attempt's result is due; resending then would send it twice at
// once) or HELD (it goes when the one before it of its key ends; resending
// would break the order its webhook asked for). A resent delivery of an
// ordered webhook is sent at once, outside its key's chain: a person asked
// for it.
func Resend(d *Delivery, webhookActive bool, now time.Time) (DeliveryState, error) {
	if !webhookActive {
		return DeliveryState{}, Errorf(EUNPROCESSABLE, "webhook %q is inactive; activate it before resending its deliveries.", d.Webhook)
	}
	if d.Status == StatusSent {
		return DeliveryState{}, Errorf(ECONFLICT, "delivery %q is being sent right now; resend it once this attempt is recorded.", d.ID)
	}
	if d.Status == StatusHeld {
		return DeliveryState{}, Errorf(ECONFLICT, "delivery %q waits for %s, the delivery before it of the same key; it is sent once that one ends.", d.ID, d.WaitingFor)
	}
	return d.State().pending(ReasonResent, now), nil
}
