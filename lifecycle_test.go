package herald_test

import (
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/heraldhooks/herald"
)

// now is the clock reading of every step in these tables; an attempt
// started a second before.
var (
	now     = time.Date(2026, 11, 26, 17, 0, 0, 0, time.UTC)
	started = now.Add(-time.Second)
)

func at(d time.Duration) *time.Time { return ptr(now.Add(d)) }

// A step is one event of a delivery's life, applied to its state: what the
// store would do, through the functions of lifecycle.go. It returns the
// new state, what it did to the webhook (attempts only) and the error.
type step struct {
	name string
	do   func(herald.DeliveryState) (herald.DeliveryState, herald.WebhookHealth, error)
}

func claim(owner string, leaseEnd time.Time) step {
	return step{"claim", func(s herald.DeliveryState) (herald.DeliveryState, herald.WebhookHealth, error) {
		if !herald.Claimable(s, true, now) {
			return s, herald.WebhookHealth{}, nil
		}
		return herald.Claim(s, owner, leaseEnd), herald.WebhookHealth{}, nil
	}}
}

// attempt sends the delivery: the receiver answers code (0: no answer)
// with Retry-After retryAfter, the sending node decides with the default
// policy and the jitter's random number rnd, and the store records it.
func attempt(code int, errText, retryAfter string, rnd float64) step {
	return step{"attempt", func(s herald.DeliveryState) (herald.DeliveryState, herald.WebhookHealth, error) {
		d := &herald.Delivery{ID: "dlv_1"}
		d.SetState(s)
		a := herald.Attempt{N: s.Attempts + 1, StartedAt: started, StatusCode: code, Error: errText}
		r := herald.DefaultRetryPolicy.Decide(d, a, retryAfter, now, rnd)
		var h herald.WebhookHealth
		h.Add(r)
		return herald.ApplyResult(s, r, now), h, nil
	}}
}

func deliver() step { return attempt(http.StatusNoContent, "", "", 0.5) }

func release() step {
	return step{"release", func(s herald.DeliveryState) (herald.DeliveryState, herald.WebhookHealth, error) {
		s, _ = herald.Release(s, now)
		return s, herald.WebhookHealth{}, nil
	}}
}

func cancel() step {
	return step{"cancel", func(s herald.DeliveryState) (herald.DeliveryState, herald.WebhookHealth, error) {
		s, _ = herald.Cancel(s, "deactivated by admin")
		return s, herald.WebhookHealth{}, nil
	}}
}

func recovery() step {
	return step{"recover", func(s herald.DeliveryState) (herald.DeliveryState, herald.WebhookHealth, error) {
		s, _ = herald.Recover(s, now)
		return s, herald.WebhookHealth{}, nil
	}}
}

func resend(active bool) step {
	return step{"resend", func(s herald.DeliveryState) (herald.DeliveryState, herald.WebhookHealth, error) {
		d := &herald.Delivery{ID: "dlv_1", Webhook: "wh"}
		d.SetState(s)
		n, err := herald.Resend(d, active, now)
		if err != nil {
			return s, herald.WebhookHealth{}, err
		}
		return n, herald.WebhookHealth{}, nil
	}}
}

// handoff creates the delivery for a webhook with a 30 s timeout, with
// room for it or not.
func handoff(room int) step {
	return step{"create", func(herald.DeliveryState) (herald.DeliveryState, herald.WebhookHealth, error) {
		r := herald.NewHandoffRoom("n1", now.Add(herald.LeaseMargin), nil, room, 100)
		return r.Place(&herald.Webhook{ID: "wh_1", TimeoutSeconds: 30}, now), herald.WebhookHealth{}, nil
	}}
}

// chained creates the delivery of an ordered webhook whose key's last
// delivery is prev, in status prevStatus: HELD behind it while it is owed,
// else placed as handoff(0) places it.
func chained(prev, prevStatus string) step {
	return step{"create ordered", func(s herald.DeliveryState) (herald.DeliveryState, herald.WebhookHealth, error) {
		if herald.Chained(prev, prevStatus) {
			return herald.Hold(herald.DeliveryState{}, prev), herald.WebhookHealth{}, nil
		}
		return handoff(0).do(s)
	}}
}

// recoverChained recovers the delivery of an ordered webhook whose key's
// last delivery is prev, in status prevStatus.
func recoverChained(prev, prevStatus string) step {
	return step{"recover ordered", func(s herald.DeliveryState) (herald.DeliveryState, herald.WebhookHealth, error) {
		s, ok := herald.Recover(s, now)
		if ok && herald.Chained(prev, prevStatus) {
			s = herald.Hold(s, prev)
		}
		return s, herald.WebhookHealth{}, nil
	}}
}

func catchUp() step {
	return step{"catch up", func(s herald.DeliveryState) (herald.DeliveryState, herald.WebhookHealth, error) {
		s, _ = herald.CatchUp(s, now)
		return s, herald.WebhookHealth{}, nil
	}}
}

func unhold() step {
	return step{"unhold", func(s herald.DeliveryState) (herald.DeliveryState, herald.WebhookHealth, error) {
		s, _ = herald.Unhold(s, herald.UnheldReason("dlv_0", herald.StatusFailed), now)
		return s, herald.WebhookHealth{}, nil
	}}
}

// diagram lists the transitions drawn in lifecycle.go's diagram, "" being
// a delivery not yet created. A status that stays what it was (a claim
// after the lease ran out, a resend of a PENDING delivery) counts when
// the step changed something else.
var diagram = map[[2]string]string{
	{"", herald.StatusPending}:                       "created, due now (no room for handoff)",
	{"", herald.StatusSent}:                          "handoff at creation",
	{herald.StatusPending, herald.StatusSent}:        "claim",
	{herald.StatusRetrying, herald.StatusSent}:       "claim",
	{herald.StatusSent, herald.StatusSent}:           "lease ran out: claimed afresh",
	{herald.StatusSent, herald.StatusDelivered}:      "2xx",
	{herald.StatusSent, herald.StatusRetrying}:       "failed attempt within the window; or released after an attempt",
	{herald.StatusSent, herald.StatusFailed}:         "24 h window over, or 410 Gone",
	{herald.StatusPending, herald.StatusCancelled}:   "webhook deactivated",
	{herald.StatusRetrying, herald.StatusCancelled}:  "webhook deactivated",
	{herald.StatusSent, herald.StatusCancelled}:      "webhook deactivated",
	{herald.StatusFailed, herald.StatusPending}:      "recover or resend",
	{herald.StatusCancelled, herald.StatusPending}:   "recover or resend",
	{herald.StatusDelivered, herald.StatusPending}:   "resend",
	{herald.StatusRetrying, herald.StatusPending}:    "resend",
	{herald.StatusPending, herald.StatusPending}:     "resend; or a late result: the attempt counts, the status stays",
	{herald.StatusRetrying, herald.StatusRetrying}:   "a late result: the attempt counts, the status stays; or its webhook answered again (catch-up)",
	{herald.StatusDelivered, herald.StatusDelivered}: "a late result: the attempt counts, the status stays",
	{herald.StatusSent, herald.StatusPending}:        "released before any attempt",
	{herald.StatusCancelled, herald.StatusCancelled}: "a late result: the attempt counts, the status stays",
	{herald.StatusFailed, herald.StatusFailed}:       "a late result: the attempt counts, the status stays",
	{"", herald.StatusHeld}:                          "created behind an owed delivery of its key",
	{herald.StatusHeld, herald.StatusPending}:        "the one before it ended, or was erased, or ordering set to none",
	{herald.StatusHeld, herald.StatusCancelled}:      "webhook deactivated",
	{herald.StatusFailed, herald.StatusHeld}:         "recover, ordered, behind an owed delivery of its key",
	{herald.StatusCancelled, herald.StatusHeld}:      "recover, ordered, behind an owed delivery of its key",
	{herald.StatusHeld, herald.StatusHeld}:           "a late result (not met: a HELD delivery was never sent): the attempt counts, the status stays",
}

// Some states the table starts from.
var (
	pending  = herald.DeliveryState{Status: herald.StatusPending, DueAt: at(-time.Minute)}
	leased   = herald.DeliveryState{Status: herald.StatusSent, Owner: "n1", DueAt: at(time.Minute)}
	retrying = herald.DeliveryState{Status: herald.StatusRetrying, Attempts: 2, FirstAttemptAt: at(-5 * time.Minute),
		DueAt: at(0), WaitReason: "receiver answered 503 Service Unavailable on attempt 2; ...", LastStatusCode: 503}
	// retryingLater waits for the schedule's 2 h step.
	retryingLater = herald.DeliveryState{Status: herald.StatusRetrying, Attempts: 7, FirstAttemptAt: at(-time.Hour),
		DueAt: at(2 * time.Hour), WaitReason: "connection refused on attempt 7; ...", LastStatusCode: 0}
	failed = herald.DeliveryState{Status: herald.StatusFailed, Attempts: 11, WindowStart: 1, FirstAttemptAt: at(-30 * time.Hour),
		WaitReason: "gave up", LastStatusCode: 500}
	cancelled = herald.DeliveryState{Status: herald.StatusCancelled, Attempts: 1, FirstAttemptAt: at(-time.Hour),
		WaitReason: herald.CancelReason("deactivated by admin"), LastStatusCode: 503}
	delivered = herald.DeliveryState{Status: herald.StatusDelivered, Attempts: 3, FirstAttemptAt: at(-time.Hour), LastStatusCode: 200}
	held      = herald.DeliveryState{Status: herald.StatusHeld, WaitingFor: "dlv_0", WaitReason: herald.HeldReason("dlv_0")}
)

// with returns s changed by fn: the rows below say how a state differs.
func with(s herald.DeliveryState, fn func(*herald.DeliveryState)) herald.DeliveryState {
	fn(&s)
	return s
}

// sent is a delivery claimed by n1 with attempts on record in a window
// that began at first.
func sent(attempts, windowStart int, first *time.Time) herald.DeliveryState {
	return herald.DeliveryState{Status: herald.StatusSent, Owner: "n1", Attempts: attempts, WindowStart: windowStart,
		FirstAttemptAt: first, DueAt: at(time.Minute)}
}

// failing is the webhook health of one failed attempt.
var failing = herald.WebhookHealth{FailingSince: &started, LastFailedAt: started, Failures: 1}

var transitions = []struct {
	name       string
	from       herald.DeliveryState
	step       step
	want       herald.DeliveryState
	wantHealth herald.WebhookHealth
	wantErr    string
}{
	// Creation and claims.
	{name: "created with room: SENT to this node under a lease", step: handoff(1),
		want: herald.DeliveryState{Status: herald.StatusSent, Owner: "n1", DueAt: at(65 * time.Second)}},
	{name: "created without room: PENDING, due now", step: handoff(0),
		want: herald.DeliveryState{Status: herald.StatusPending, DueAt: at(0)}},
	{name: "claim: PENDING to SENT", from: pending, step: claim("n2", now.Add(65*time.Second)),
		want: herald.DeliveryState{Status: herald.StatusSent, Owner: "n2", DueAt: at(65 * time.Second)}},
	{name: "claim: RETRYING to SENT, due at its next attempt", from: retrying, step: claim("n2", now.Add(65*time.Second)),
		want: with(retrying, func(s *herald.DeliveryState) {
			s.Status, s.Owner, s.DueAt = herald.StatusSent, "n2", at(65*time.Second)
		})},
	{name: "claim: RETRYING not yet due stays", from: with(retrying, func(s *herald.DeliveryState) { s.DueAt = at(time.Millisecond) }),
		step: claim("n2", now.Add(65*time.Second)), want: with(retrying, func(s *herald.DeliveryState) { s.DueAt = at(time.Millisecond) })},
	{name: "lease held: SENT is not claimed again", from: leased, step: claim("n2", now.Add(65*time.Second)), want: leased},
	{name: "lease ran out: SENT claimed afresh by another node", from: with(leased, func(s *herald.DeliveryState) { s.DueAt = at(0) }),
		step: claim("n2", now.Add(65*time.Second)), want: with(leased, func(s *herald.DeliveryState) { s.Owner, s.DueAt = "n2", at(65*time.Second) })},

	// Attempts.
	{name: "2xx: SENT to DELIVERED", from: sent(0, 0, nil), step: deliver(),
		want:       herald.DeliveryState{Status: herald.StatusDelivered, Attempts: 1, FirstAttemptAt: &started, LastStatusCode: 204},
		wantHealth: herald.WebhookHealth{Succeeded: true}},
	{name: "non-2xx: SENT to RETRYING, 5 s on", from: sent(0, 0, nil),
		step: attempt(503, "receiver answered 503 Service Unavailable", "", 0.5),
		want: herald.DeliveryState{Status: herald.StatusRetrying, Attempts: 1, FirstAttemptAt: &started, DueAt: at(5 * time.Second),
			WaitReason: "receiver answered 503 Service Unavailable on attempt 1; next attempt at 2026-11-26T17:00:05Z", LastStatusCode: 503},
		wantHealth: failing},
	{name: "timeout: SENT to RETRYING, 30 s on less 20 %", from: sent(1, 0, at(-time.Minute)), step: attempt(0, "timed out after 30s", "", 0),
		want: herald.DeliveryState{Status: herald.StatusRetrying, Attempts: 2, FirstAttemptAt: at(-time.Minute), DueAt: at(24 * time.Second),
			WaitReason: "timed out after 30s on attempt 2; next attempt at 2026-11-26T17:00:24Z"},
		wantHealth: failing},
	{name: "network error: SENT to RETRYING, 2 m on plus 20 %", from: sent(2, 0, at(-time.Minute)), step: attempt(0, "connection refused", "", 1),
		want: herald.DeliveryState{Status: herald.StatusRetrying, Attempts: 3, FirstAttemptAt: at(-time.Minute), DueAt: at(144 * time.Second),
			WaitReason: "connection refused on attempt 3; next attempt at 2026-11-26T17:02:24Z"},
		wantHealth: failing},
	{name: "blocked destination: SENT to RETRYING", from: sent(0, 0, nil),
		step: attempt(0, "destination 10.0.0.1 is a private address outside the allowed ranges", "", 0.5),
		want: herald.DeliveryState{Status: herald.StatusRetrying, Attempts: 1, FirstAttemptAt: &started, DueAt: at(5 * time.Second),
			WaitReason: "destination 10.0.0.1 is a private address outside the allowed ranges on attempt 1; next attempt at 2026-11-26T17:00:05Z"},
		wantHealth: failing},
	{name: "Retry-After seconds replace the schedule", from: sent(0, 0, nil),
		step: attempt(429, "receiver answered 429 Too Many Requests", "120", 0.5),
		want: herald.DeliveryState{Status: herald.StatusRetrying, Attempts: 1, FirstAttemptAt: &started, DueAt: at(2 * time.Minute),
			WaitReason: "receiver answered 429 Too Many Requests on attempt 1; next attempt at 2026-11-26T17:02:00Z (as Retry-After asked)", LastStatusCode: 429},
		wantHealth: failing},
	{name: "Retry-After HTTP date", from: sent(0, 0, nil),
		step: attempt(503, "receiver answered 503 Service Unavailable", now.Add(45*time.Minute).Format(http.TimeFormat), 0.5),
		want: herald.DeliveryState{Status: herald.StatusRetrying, Attempts: 1, FirstAttemptAt: &started, DueAt: at(45 * time.Minute),
			WaitReason: "receiver answered 503 Service Unavailable on attempt 1; next attempt at 2026-11-26T17:45:00Z (as Retry-After asked)", LastStatusCode: 503},
		wantHealth: failing},
	{name: "Retry-After capped at the longest step", from: sent(0, 0, nil),
		step: attempt(503, "receiver answered 503 Service Unavailable", "86400", 0.5),
		want: herald.DeliveryState{Status: herald.StatusRetrying, Attempts: 1, FirstAttemptAt: &started, DueAt: at(8 * time.Hour),
			WaitReason: "receiver answered 503 Service Unavailable on attempt 1; next attempt at 2026-11-27T01:00:00Z (Retry-After asked for 24h; capped at 8h, the longest wait of the schedule)", LastStatusCode: 503},
		wantHealth: failing},
	{name: "24 h window: SENT to FAILED when the next attempt would fall after it", from: sent(10, 0, at(-20*time.Hour)),
		step: attempt(500, "receiver answered 500 Internal Server Error", "", 0.5),
		want: herald.DeliveryState{Status: herald.StatusFailed, Attempts: 11, FirstAttemptAt: at(-20 * time.Hour), LastStatusCode: 500,
			WaitReason: "receiver answered 500 Internal Server Error on attempt 11; gave up: the next attempt would have been after 2026-11-26T21:00:00Z, the end of the 24h retry window that began at 2026-11-25T21:00:00Z"},
		wantHealth: failing},
	{name: "24 h window: the last step that fits is still retried", from: sent(10, 0, at(-16*time.Hour)),
		step: attempt(500, "x", "", 0.5),
		want: herald.DeliveryState{Status: herald.StatusRetrying, Attempts: 11, FirstAttemptAt: at(-16 * time.Hour), LastStatusCode: 500,
			DueAt: at(8 * time.Hour), WaitReason: "x on attempt 11; next attempt at 2026-11-27T01:00:00Z"},
		wantHealth: failing},
	{name: "24 h window: Retry-After cannot stretch it", from: sent(2, 0, at(-23*time.Hour)), step: attempt(503, "x", "7200", 0.5),
		want: herald.DeliveryState{Status: herald.StatusFailed, Attempts: 3, FirstAttemptAt: at(-23 * time.Hour), LastStatusCode: 503,
			WaitReason: "x on attempt 3; gave up: the next attempt would have been after 2026-11-26T18:00:00Z, the end of the 24h retry window that began at 2026-11-25T18:00:00Z"},
		wantHealth: failing},
	{name: "a resent delivery's window counts from its new first attempt", from: sent(12, 12, nil), step: attempt(503, "x", "", 0.5),
		want: herald.DeliveryState{Status: herald.StatusRetrying, Attempts: 13, WindowStart: 12, FirstAttemptAt: &started, LastStatusCode: 503,
			DueAt: at(5 * time.Second), WaitReason: "x on attempt 13; next attempt at 2026-11-26T17:00:05Z"},
		wantHealth: failing},
	{name: "410 Gone: SENT to FAILED, the webhook deactivated", from: sent(1, 0, at(-time.Minute)),
		step: attempt(410, "receiver answered 410 Gone", "", 0.5),
		want: herald.DeliveryState{Status: herald.StatusFailed, Attempts: 2, FirstAttemptAt: at(-time.Minute), LastStatusCode: 410,
			WaitReason: "receiver answered 410 Gone on attempt 2; the webhook was deactivated and no further attempt will be made"},
		wantHealth: herald.WebhookHealth{FailingSince: &started, LastFailedAt: started, Failures: 1, DeactivateReason: "receiver answered 410 Gone at 2026-11-26T16:59:59Z"}},
	{name: "late result: a CANCELLED delivery keeps the attempt, not the status", from: cancelled, step: deliver(),
		want:       with(cancelled, func(s *herald.DeliveryState) { s.Attempts, s.LastStatusCode = 2, 204 }),
		wantHealth: herald.WebhookHealth{Succeeded: true}},
	{name: "late result: a resent delivery stays PENDING, the attempt opens its window",
		from: with(pending, func(s *herald.DeliveryState) { s.Attempts, s.WindowStart, s.WaitReason = 4, 4, herald.ReasonResent }),
		step: attempt(500, "x", "", 0.5),
		want: with(pending, func(s *herald.DeliveryState) {
			s.Attempts, s.WindowStart, s.WaitReason, s.FirstAttemptAt, s.LastStatusCode = 5, 4, herald.ReasonResent, &started, 500
		}),
		wantHealth: failing},
	{name: "late result: a FAILED delivery stays FAILED", from: failed, step: attempt(410, "gone", "", 0.5),
		want:       with(failed, func(s *herald.DeliveryState) { s.Attempts, s.LastStatusCode = 12, 410 }),
		wantHealth: herald.WebhookHealth{FailingSince: &started, LastFailedAt: started, Failures: 1, DeactivateReason: "receiver answered 410 Gone at 2026-11-26T16:59:59Z"}},

	{name: "late result: a RETRYING delivery (released meanwhile) stays RETRYING", from: retrying, step: deliver(),
		want:       with(retrying, func(s *herald.DeliveryState) { s.Attempts, s.LastStatusCode = 3, 204 }),
		wantHealth: herald.WebhookHealth{Succeeded: true}},
	{name: "late result: a DELIVERED delivery (sent again by another node) stays DELIVERED", from: delivered, step: attempt(503, "x", "", 0.5),
		want:       with(delivered, func(s *herald.DeliveryState) { s.Attempts, s.LastStatusCode = 4, 503 }),
		wantHealth: failing},

	// Releases.
	{name: "released before any attempt: SENT to PENDING, due now", from: sent(0, 0, nil), step: release(),
		want: herald.DeliveryState{Status: herald.StatusPending, DueAt: at(0)}},
	{name: "released after attempts: SENT to RETRYING, due now", from: sent(2, 0, at(-time.Minute)), step: release(),
		want: herald.DeliveryState{Status: herald.StatusRetrying, Attempts: 2, FirstAttemptAt: at(-time.Minute), DueAt: at(0)}},
	{name: "release leaves RETRYING alone", from: retrying, step: release(), want: retrying},

	// Deactivation.
	{name: "deactivation cancels PENDING", from: pending, step: cancel(),
		want: herald.DeliveryState{Status: herald.StatusCancelled, WaitReason: "cancelled: webhook deactivated (deactivated by admin)"}},
	{name: "deactivation cancels RETRYING", from: retrying, step: cancel(),
		want: with(retrying, func(s *herald.DeliveryState) {
			s.Status, s.DueAt, s.WaitReason = herald.StatusCancelled, nil, "cancelled: webhook deactivated (deactivated by admin)"
		})},
	{name: "deactivation cancels SENT", from: leased, step: cancel(),
		want: herald.DeliveryState{Status: herald.StatusCancelled, WaitReason: "cancelled: webhook deactivated (deactivated by admin)"}},
	{name: "deactivation leaves DELIVERED alone", from: delivered, step: cancel(), want: delivered},
	{name: "deactivation leaves FAILED alone", from: failed, step: cancel(), want: failed},
	{name: "deactivation leaves CANCELLED alone", from: cancelled, step: cancel(), want: cancelled},

	// Catch up.
	{name: "catch-up: RETRYING due later is due now, same window", from: retryingLater, step: catchUp(),
		want: func() herald.DeliveryState {
			s := retryingLater
			s.DueAt, s.WaitReason = at(0), herald.ReasonCaughtUp
			return s
		}()},
	{name: "catch-up leaves a RETRYING already due alone", from: retrying, step: catchUp(), want: retrying},
	{name: "catch-up leaves PENDING alone", from: pending, step: catchUp(), want: pending},
	{name: "catch-up leaves SENT alone", from: leased, step: catchUp(), want: leased},
	{name: "catch-up leaves FAILED alone", from: failed, step: catchUp(), want: failed},

	// Recover.
	{name: "recover: FAILED to PENDING, due now, a fresh window", from: failed, step: recovery(),
		want: herald.DeliveryState{Status: herald.StatusPending, Attempts: 11, WindowStart: 11, DueAt: at(0), WaitReason: "recovered", LastStatusCode: 500}},
	{name: "recover: CANCELLED to PENDING", from: cancelled, step: recovery(),
		want: herald.DeliveryState{Status: herald.StatusPending, Attempts: 1, WindowStart: 1, DueAt: at(0), WaitReason: "recovered", LastStatusCode: 503}},
	{name: "recover leaves DELIVERED alone", from: delivered, step: recovery(), want: delivered},
	{name: "recover leaves RETRYING alone", from: retrying, step: recovery(), want: retrying},
	{name: "recover leaves SENT alone", from: leased, step: recovery(), want: leased},
	{name: "recover leaves PENDING alone", from: pending, step: recovery(), want: pending},

	// Resend.
	{name: "resend DELIVERED: PENDING, due now, a fresh window", from: delivered, step: resend(true),
		want: herald.DeliveryState{Status: herald.StatusPending, Attempts: 3, WindowStart: 3, DueAt: at(0), WaitReason: "resent", LastStatusCode: 200}},
	{name: "resend FAILED", from: failed, step: resend(true),
		want: herald.DeliveryState{Status: herald.StatusPending, Attempts: 11, WindowStart: 11, DueAt: at(0), WaitReason: "resent", LastStatusCode: 500}},
	{name: "resend CANCELLED", from: cancelled, step: resend(true),
		want: herald.DeliveryState{Status: herald.StatusPending, Attempts: 1, WindowStart: 1, DueAt: at(0), WaitReason: "resent", LastStatusCode: 503}},
	{name: "resend RETRYING", from: retrying, step: resend(true),
		want: herald.DeliveryState{Status: herald.StatusPending, Attempts: 2, WindowStart: 2, DueAt: at(0), WaitReason: "resent", LastStatusCode: 503}},
	{name: "resend PENDING", from: pending, step: resend(true),
		want: herald.DeliveryState{Status: herald.StatusPending, DueAt: at(0), WaitReason: "resent"}},
	{name: "resend SENT: ECONFLICT", from: leased, step: resend(true), want: leased, wantErr: herald.ECONFLICT},
	{name: "resend for an inactive webhook: EUNPROCESSABLE", from: failed, step: resend(false), want: failed, wantErr: herald.EUNPROCESSABLE},

	// Ordering per key.
	{name: "ordered, the one before RETRYING: HELD, waiting for it, due at no time", step: chained("dlv_0", herald.StatusRetrying),
		want: herald.DeliveryState{Status: herald.StatusHeld, WaitingFor: "dlv_0", WaitReason: "waits for dlv_0, the delivery before it of the same key, to end"}},
	{name: "ordered, the one before HELD itself: HELD behind it", step: chained("dlv_0", herald.StatusHeld), want: held},
	{name: "ordered, the one before SENT: HELD", step: chained("dlv_0", herald.StatusSent), want: held},
	{name: "ordered, the one before PENDING: HELD", step: chained("dlv_0", herald.StatusPending), want: held},
	{name: "ordered, the one before FAILED: PENDING at once", step: chained("dlv_0", herald.StatusFailed),
		want: herald.DeliveryState{Status: herald.StatusPending, DueAt: at(0)}},
	{name: "ordered, the one before DELIVERED: PENDING at once", step: chained("dlv_0", herald.StatusDelivered),
		want: herald.DeliveryState{Status: herald.StatusPending, DueAt: at(0)}},
	{name: "ordered, the one before CANCELLED: PENDING at once", step: chained("dlv_0", herald.StatusCancelled),
		want: herald.DeliveryState{Status: herald.StatusPending, DueAt: at(0)}},
	{name: "ordered, the first of its key, or the one before erased: PENDING at once", step: chained("", ""),
		want: herald.DeliveryState{Status: herald.StatusPending, DueAt: at(0)}},
	{name: "HELD is never claimed", from: held, step: claim("n2", now.Add(65*time.Second)), want: held},
	{name: "unhold: HELD to PENDING, due now, still naming what it waited for", from: held, step: unhold(),
		want: herald.DeliveryState{Status: herald.StatusPending, DueAt: at(0), WaitingFor: "dlv_0", WaitReason: "waited for dlv_0, which ended FAILED"}},
	{name: "unhold leaves PENDING alone", from: pending, step: unhold(), want: pending},
	{name: "unhold leaves RETRYING alone", from: retrying, step: unhold(), want: retrying},
	{name: "deactivation cancels HELD", from: held, step: cancel(),
		want: with(held, func(s *herald.DeliveryState) {
			s.Status, s.WaitReason = herald.StatusCancelled, "cancelled: webhook deactivated (deactivated by admin)"
		})},
	{name: "recover leaves HELD alone", from: held, step: recovery(), want: held},
	{name: "resend HELD: ECONFLICT", from: held, step: resend(true), want: held, wantErr: herald.ECONFLICT},
	{name: "release leaves HELD alone", from: held, step: release(), want: held},
	{name: "recover, ordered, behind an owed one: FAILED to HELD, attempts kept, a fresh window", from: failed,
		step: recoverChained("dlv_0", herald.StatusRetrying),
		want: herald.DeliveryState{Status: herald.StatusHeld, Attempts: 11, WindowStart: 11, LastStatusCode: 500, WaitingFor: "dlv_0",
			WaitReason: herald.HeldReason("dlv_0")}},
	{name: "recover, ordered, behind an owed one: CANCELLED to HELD", from: cancelled, step: recoverChained("dlv_0", herald.StatusHeld),
		want: herald.DeliveryState{Status: herald.StatusHeld, Attempts: 1, WindowStart: 1, LastStatusCode: 503, WaitingFor: "dlv_0",
			WaitReason: herald.HeldReason("dlv_0")}},
	{name: "recover, ordered, the one before ended: PENDING", from: failed, step: recoverChained("dlv_0", herald.StatusDelivered),
		want: herald.DeliveryState{Status: herald.StatusPending, Attempts: 11, WindowStart: 11, DueAt: at(0), WaitReason: "recovered", LastStatusCode: 500}},
	{name: "late result: a HELD delivery keeps the attempt, not the status", from: held, step: deliver(),
		want:       with(held, func(s *herald.DeliveryState) { s.Attempts, s.LastStatusCode, s.FirstAttemptAt = 1, 204, &started }),
		wantHealth: herald.WebhookHealth{Succeeded: true}},
}

// TestTransitions runs every transition of the diagram as data: a state,
// a step, the state it must lead to, and what it does to the webhook.
func TestTransitions(t *testing.T) {
	for _, tt := range transitions {
		t.Run(tt.name, func(t *testing.T) {
			got, health, err := tt.step.do(tt.from)
			if herald.ErrorCode(err) != tt.wantErr {
				t.Fatalf("error %v (code %q), want code %q", err, herald.ErrorCode(err), tt.wantErr)
			}
			if d := diffState(got, tt.want); d != "" {
				t.Errorf("state after %s:\n%s", tt.step.name, d)
			}
			if !reflect.DeepEqual(health, tt.wantHealth) {
				t.Errorf("webhook health = %s, want %s", showHealth(health), showHealth(tt.wantHealth))
			}
		})
	}
}

// TestTransitionsFollowTheDiagram checks that the table above walks every
// arrow of the diagram, and that no step leads anywhere the diagram does
// not draw, from any status.
func TestTransitionsFollowTheDiagram(t *testing.T) {
	walked := map[[2]string]bool{}
	for _, tt := range transitions {
		got, _, _ := tt.step.do(tt.from)
		if !reflect.DeepEqual(got, tt.from) {
			walked[[2]string{tt.from.Status, got.Status}] = true
		}
	}
	for edge, what := range diagram {
		if !walked[edge] {
			t.Errorf("no row of the table walks %s -> %s (%s)", or(edge[0], "(new)"), edge[1], what)
		}
	}

	// Every step from every status, as the store could meet it.
	steps := []step{claim("n2", now.Add(time.Minute)), deliver(), attempt(503, "x", "", 0.5), attempt(410, "x", "", 0.5),
		attempt(0, "x", "", 0.5), release(), cancel(), recovery(), resend(true), resend(false), unhold(), catchUp()}
	for _, status := range herald.Statuses {
		s := herald.DeliveryState{Status: status, Attempts: 1, FirstAttemptAt: at(-25 * time.Hour), LastStatusCode: 500}
		if herald.Open(status) {
			s.DueAt = at(0)
		}
		for _, st := range steps {
			got, _, _ := st.do(s)
			if reflect.DeepEqual(got, s) {
				continue
			}
			if _, ok := diagram[[2]string{status, got.Status}]; !ok {
				t.Errorf("%s of a %s delivery leads to %s, which the diagram does not draw", st.name, status, got.Status)
			}
			if herald.Open(got.Status) != (got.DueAt != nil) {
				t.Errorf("%s of a %s delivery leads to %s with due %v: open deliveries, and only they, have a due time", st.name, status, got.Status, got.DueAt)
			}
			if got.Status != herald.StatusSent && got.Owner != "" {
				t.Errorf("%s of a %s delivery leaves a %s delivery owned by %q", st.name, status, got.Status, got.Owner)
			}
		}
	}
}

// TestLeaseExpiry follows a claim's lease: the delivery is not due while
// its lease holds and is due again, to any node, the moment it runs out.
func TestLeaseExpiry(t *testing.T) {
	const timeout = 30 * time.Second
	claimedAt := now
	end := herald.LeaseEnd(claimedAt.Add(herald.LeaseMargin), timeout)
	if want := claimedAt.Add(65 * time.Second); !end.Equal(want) {
		t.Fatalf("LeaseEnd for a 30 s timeout with the default margin = %s, want %s (65 s after the claim)", end, want)
	}
	s := herald.Claim(pending, "n1", end)
	for _, tt := range []struct {
		at     time.Time
		active bool
		want   bool
	}{
		{claimedAt, true, false},
		{end.Add(-time.Millisecond), true, false},
		{end, true, true},
		{end.Add(time.Hour), true, true},
		{end.Add(time.Hour), false, false}, // a deactivated webhook's deliveries are never claimed
	} {
		if got := herald.Claimable(s, tt.active, tt.at); got != tt.want {
			t.Errorf("Claimable %s after the claim (webhook active %v) = %v, want %v", tt.at.Sub(claimedAt), tt.active, got, tt.want)
		}
	}

	// A queued job starts only while its lease covers its request and the
	// write of its result.
	for _, tt := range []struct {
		at   time.Duration // after the claim
		want bool
	}{
		{0, true},
		{25 * time.Second, true}, // 40 s left: 30 s timeout + 10 s margin
		{25*time.Second + time.Millisecond, false},
		{time.Minute, false},
	} {
		if got := herald.LeaseCovers(end, claimedAt.Add(tt.at), timeout, 10*time.Second); got != tt.want {
			t.Errorf("LeaseCovers %s after the claim = %v, want %v", tt.at, got, tt.want)
		}
	}
}

// TestPlanEvent: which webhooks an event makes deliveries for.
func TestPlanEvent(t *testing.T) {
	e := &herald.Event{ID: "evt_1", Entity: "patient", Subtype: "patient.updated"}
	byEntity := &herald.Webhook{ID: "a", Active: true, Triggers: []herald.Trigger{{EventEntity: "patient"}}}
	bySubtype := &herald.Webhook{ID: "b", Active: true, Triggers: []herald.Trigger{{EventSubtype: "careplan.created"}, {EventSubtype: "patient.updated"}}}
	other := &herald.Webhook{ID: "c", Active: true, Triggers: []herald.Trigger{{EventEntity: "careplan"}}}
	inactive := &herald.Webhook{ID: "d", Active: false, Triggers: []herald.Trigger{{EventEntity: "patient"}}}
	none := &herald.Webhook{ID: "e", Active: true}
	for _, tt := range []struct {
		name     string
		hit      *herald.EventResult
		webhooks []*herald.Webhook
		want     herald.EventResult
		targets  []string
	}{
		{name: "matching active webhooks, in order", webhooks: []*herald.Webhook{byEntity, other, bySubtype, none},
			want: herald.EventResult{EventID: "evt_1", Deliveries: 2}, targets: []string{"a", "b"}},
		{name: "a webhook deactivated before the ingest read it gets none", webhooks: []*herald.Webhook{inactive, byEntity},
			want: herald.EventResult{EventID: "evt_1", Deliveries: 1}, targets: []string{"a"}},
		{name: "no webhook", want: herald.EventResult{EventID: "evt_1"}},
		{name: "an idempotency hit makes nothing and reports the first event", hit: &herald.EventResult{EventID: "evt_0", Deliveries: 3},
			webhooks: []*herald.Webhook{byEntity, bySubtype}, want: herald.EventResult{EventID: "evt_0", Deliveries: 3, Duplicate: true}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r, targets := herald.PlanEvent(e, tt.hit, tt.webhooks)
			if r != tt.want {
				t.Errorf("result = %+v, want %+v", r, tt.want)
			}
			var ids []string
			for _, w := range targets {
				ids = append(ids, w.ID)
			}
			if !slices.Equal(ids, tt.targets) {
				t.Errorf("targets = %v, want %v", ids, tt.targets)
			}
		})
	}
}

// TestDeactivationDuringIngest: a deactivation that the ingest saw leaves
// no delivery; one that came after finds the new delivery open and
// cancels it. Either way nothing stays owed to an inactive webhook.
func TestDeactivationDuringIngest(t *testing.T) {
	e := &herald.Event{ID: "evt_1", Entity: "patient", Subtype: "patient.updated"}
	w := &herald.Webhook{ID: "wh_1", Active: true, TimeoutSeconds: 30, Triggers: []herald.Trigger{{EventEntity: "patient"}}}
	for _, room := range []int{0, 1} {
		_, targets := herald.PlanEvent(e, nil, []*herald.Webhook{w})
		if len(targets) != 1 {
			t.Fatalf("targets = %d, want 1", len(targets))
		}
		s := herald.NewHandoffRoom("n1", now.Add(herald.LeaseMargin), nil, room, 1).Place(targets[0], now)
		s, ok := herald.Cancel(s, "deactivated by admin")
		if !ok || s.Status != herald.StatusCancelled || s.DueAt != nil || s.Owner != "" {
			t.Errorf("room %d: the new delivery after the deactivation = %+v (cancelled %v), want CANCELLED, not due, unowned", room, s, ok)
		}
	}
	inactive := *w
	inactive.Active = false
	if r, targets := herald.PlanEvent(e, nil, []*herald.Webhook{&inactive}); len(targets) != 0 || r.Deliveries != 0 {
		t.Errorf("an ingest that read the webhook inactive made %d deliveries (result %+v), want none", len(targets), r)
	}
}

// TestHandoffRoom: how an ingest places new deliveries between handoff and
// the claim of any node.
func TestHandoffRoom(t *testing.T) {
	fast := &herald.Webhook{ID: "fast", TimeoutSeconds: 30}
	slow := &herald.Webhook{ID: "slow", TimeoutSeconds: 120}
	other := &herald.Webhook{ID: "other", TimeoutSeconds: 5}
	lease := now.Add(herald.LeaseMargin)
	room := map[string]int{"fast": 2, "slow": 0}
	r := herald.NewHandoffRoom("n1", lease, room, 1, 3)
	var got []string
	for _, w := range []*herald.Webhook{fast, slow, fast, fast, other, other} {
		s := r.Place(w, now)
		switch s.Status {
		case herald.StatusSent:
			if s.Owner != "n1" || !s.DueAt.Equal(herald.LeaseEnd(lease, time.Duration(w.TimeoutSeconds)*time.Second)) {
				t.Errorf("%s handed off as %+v; want owned by n1 until the lease plus its timeout", w.ID, s)
			}
		case herald.StatusPending:
			if s.Owner != "" || !s.DueAt.Equal(now) {
				t.Errorf("%s left as %+v; want unowned and due now", w.ID, s)
			}
		}
		got = append(got, w.ID+":"+s.Status)
	}
	want := []string{"fast:SENT", "slow:PENDING", "fast:SENT", "fast:PENDING", "other:SENT", "other:PENDING"}
	if !slices.Equal(got, want) {
		t.Errorf("placed %v, want %v (room per webhook, Default for the others, Limit in all)", got, want)
	}
	if room["fast"] != 2 {
		t.Errorf("the handoff's room was changed to %v; the room is counted on a copy", room)
	}
	if s := (&herald.HandoffRoom{}).Place(fast, now); s.Status != herald.StatusPending {
		t.Errorf("without a handoff a delivery is created %s, want PENDING", s.Status)
	}
}

// TestWebhookHealth: what a write's results do to their webhook's failure
// record, from what is stored.
func TestWebhookHealth(t *testing.T) {
	t1, t2, t3 := now.Add(-3*time.Second), now.Add(-2*time.Second), now.Add(-time.Second)
	stored, storedLast := at(-time.Hour), at(-time.Minute)
	res := func(status string, start time.Time) herald.AttemptResult {
		return herald.AttemptResult{Status: status, Attempt: herald.Attempt{StartedAt: start}}
	}
	ok, fail, retry := herald.StatusDelivered, herald.StatusFailed, herald.StatusRetrying
	for _, tt := range []struct {
		name              string
		results           []herald.AttemptResult
		stored, last      *time.Time
		wantSince, wantAt *time.Time
	}{
		{"a success clears failing_since", []herald.AttemptResult{res(retry, t1), res(ok, t2)}, stored, storedLast, nil, storedLast},
		{"failures keep the first failing_since", []herald.AttemptResult{res(retry, t2), res(fail, t1)}, stored, storedLast, stored, &t2},
		{"failures set failing_since when none", []herald.AttemptResult{res(retry, t2), res(fail, t3)}, nil, nil, &t2, &t3},
		{"failures after a success start failing_since afresh", []herald.AttemptResult{res(retry, t1), res(ok, t2), res(retry, t3)}, stored, storedLast, &t3, &t3},
	} {
		var h herald.WebhookHealth
		for _, r := range tt.results {
			h.Add(r)
		}
		since, last := h.Apply(tt.stored, tt.last)
		if !sameTime(since, tt.wantSince) || !sameTime(last, tt.wantAt) {
			t.Errorf("%s: failing_since, last_failed_at = %s, %s; want %s, %s", tt.name, showTime(since), showTime(last), showTime(tt.wantSince), showTime(tt.wantAt))
		}
	}
	gone := herald.WebhookHealth{DeactivateReason: "receiver answered 410 Gone at ..."}
	if !gone.Deactivates(true) || gone.Deactivates(false) || (herald.WebhookHealth{}).Deactivates(true) {
		t.Error("a 410 must deactivate an active webhook, and leave an inactive one with its reason")
	}
}

func diffState(got, want herald.DeliveryState) string {
	var b strings.Builder
	g, w := reflect.ValueOf(got), reflect.ValueOf(want)
	for i := range g.NumField() {
		gf, wf := g.Field(i).Interface(), w.Field(i).Interface()
		if gt, ok := gf.(*time.Time); ok {
			if !sameTime(gt, wf.(*time.Time)) {
				fmt.Fprintf(&b, "  %s = %s, want %s\n", g.Type().Field(i).Name, showTime(gt), showTime(wf.(*time.Time)))
			}
			continue
		}
		if gf != wf {
			fmt.Fprintf(&b, "  %s = %#v, want %#v\n", g.Type().Field(i).Name, gf, wf)
		}
	}
	return b.String()
}

func sameTime(a, b *time.Time) bool { return (a == nil) == (b == nil) && (a == nil || a.Equal(*b)) }

func showTime(t *time.Time) string {
	if t == nil {
		return "nil"
	}
	return herald.FormatTime(*t) + fmt.Sprintf("(+%dms)", t.Nanosecond()/1e6)
}

func showHealth(h herald.WebhookHealth) string {
	return fmt.Sprintf("{failingSince %s, succeeded %v, lastFailed %s, failures %d, deactivate %q}", showTime(h.FailingSince), h.Succeeded, showTime(&h.LastFailedAt), h.Failures, h.DeactivateReason)
}

func or(s, alt string) string {
	if s == "" {
		return alt
	}
	return s
}
