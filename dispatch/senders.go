package dispatch

import (
	"context"
	"log/slog"
	mathrand "math/rand/v2"
	"sync"
	"time"

	"github.com/heraldhooks/herald"
	"github.com/heraldhooks/herald/queue"
	"github.com/heraldhooks/herald/signature"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// senders make the requests. A sender is a goroutine started by the
// scheduler (queues.start) with a job it may start now; it sends it
// (send.go), decides what becomes of the delivery (schedule.go), tells the
// scheduler the request is over, which may hand it the next job, and
// gives the result to the writer: the one way results go back. It ends
// when the scheduler has nothing for it, so at most Concurrency run.
//
// Ownership: a sender owns its job from the scheduler's next until it
// reports done; it keeps no other state. The fields below are set by Run
// before the first sender starts and read only after.
type senders struct {
	// ctx is the requests' context: it outlives Run's through the drain,
	// and is cancelled when the drain times out.
	ctx     context.Context
	wg      sync.WaitGroup // the senders running
	http    *sender
	policy  retryPolicy
	q       *queues
	w       *writer
	metrics *metrics
	log     *slog.Logger
	now     func() time.Time
	// tracer makes the attempt spans; nil when the node does not trace.
	tracer trace.Tracer
}

// start starts a sender with j. Called by the scheduler's guard with its
// mutex held, so Run's drain cannot begin between the two.
func (s *senders) start(j *queue.Job) {
	s.wg.Go(func() { s.run(j) })
}

// run sends j and then, as long as there is one, the next job the
// scheduler offers, so a sender that finishes starts the next job at once.
func (s *senders) run(j *queue.Job) {
	for j != nil {
		start := time.Now()
		r, o := s.deliver(j)
		took := time.Since(start)
		next := s.q.done(j, took, o, s.now())
		if o != cutShort {
			s.w.record(r)
		}
		j = next
	}
}

// deliver sends one claimed delivery and returns its result, and what the
// scheduler is to make of it.
func (s *senders) deliver(j *queue.Job) (pendingResult, outcome) {
	signer := j.Signer
	if signer == nil {
		signer = signature.NewSigner(j.Secrets)
	}
	ctx, n := withDeliveryID(s.ctx, j.Delivery.ID), j.Delivery.AttemptCount+1
	var span trace.Span
	if s.tracer != nil {
		ctx, span = startAttempt(ctx, s.tracer, j, n, s.now())
	}
	a, retryAfter, timedOut := s.http.send(ctx, j.Webhook, j.Event, signer, n)
	if s.ctx.Err() != nil && a.StatusCode == 0 {
		// Cut short by our own shutdown: not the receiver's fault, so no
		// attempt goes on record; the release at the end of Run makes the
		// delivery due again.
		if span != nil {
			span.SetStatus(codes.Error, "cut short by shutdown")
			span.End()
		}
		return pendingResult{}, cutShort
	}
	s.metrics.attemptDuration.Observe(float64(a.DurationMs) / 1000)
	now := s.now()
	r := s.policy.decide(j.Delivery, a, retryAfter, now, mathrand.Float64())
	if span != nil {
		endAttempt(span, a, r, now)
	}
	switch r.Status {
	case herald.StatusDelivered:
		s.metrics.attempts.WithLabelValues(outcomeDelivered).Inc()
	case herald.StatusRetrying:
		s.metrics.attempts.WithLabelValues(outcomeRetrying).Inc()
	default:
		s.metrics.attempts.WithLabelValues(outcomeFailed).Inc()
	}
	log := func() *slog.Logger {
		return s.log.With("delivery", j.Delivery.ID, "tenant", j.Delivery.Tenant, "instance", j.Delivery.Instance,
			"webhook", j.Webhook.Name, "attempt", a.N)
	}
	o := answered
	switch {
	case overloaded(&a, timedOut):
		o = throttled
	case !a.Delivered():
		o = refused
	}
	switch {
	case r.DeactivateReason != "":
		log().WarnContext(ctx, "receiver answered 410 Gone; deactivating the webhook", "reason", r.DeactivateReason)
		o = gone410
	case r.Status == herald.StatusFailed:
		log().WarnContext(ctx, "delivery failed for good", "reason", r.WaitReason)
	case !s.log.Enabled(ctx, slog.LevelDebug):
	case r.Status == herald.StatusRetrying:
		log().DebugContext(ctx, "delivery attempt failed", "reason", r.WaitReason)
	default:
		log().DebugContext(ctx, "delivered", "status", a.StatusCode, "durationMs", a.DurationMs)
	}
	return pendingResult{AttemptResult: r, leaseUntil: j.LeaseUntil, webhookID: j.Webhook.ID}, o
}
