package dispatch

import (
	"context"
	"time"

	"github.com/heraldhooks/herald"
	"github.com/heraldhooks/herald/queue"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// The engine's spans (docs/operations.md, "Traces"): herald.ingest for
// each CreateEvents call, herald.commit for each group commit that stores
// events, herald.claim for each claim that took deliveries, herald.attempt
// for each request to a receiver, herald.maintenance for each run of the
// leader's housekeeping. Their attributes are ids, codes and counts, never
// what an event says: no span attribute is ever taken from an event's
// fields other than its ID, nor from a URL, header or answer.
//
// Every part holds a trace.Tracer that is nil when the node does not trace
// (Config.TracerProvider unset), and checks it before making a span, so
// tracing off costs a nil check.

// tracerName names the engine's instrumentation scope.
const tracerName = "github.com/heraldhooks/herald/dispatch"

// Span attribute keys, one place for their names.
const (
	attrTenant     = attribute.Key("herald.tenant")
	attrInstance   = attribute.Key("herald.instance")
	attrWebhook    = attribute.Key("herald.webhook")
	attrDelivery   = attribute.Key("herald.delivery_id")
	attrEvent      = attribute.Key("herald.event_id")
	attrAttempt    = attribute.Key("herald.attempt")
	attrWaitMs     = attribute.Key("herald.wait_ms")
	attrRetryInMs  = attribute.Key("herald.retry_in_ms")
	attrOutcome    = attribute.Key("herald.outcome")
	attrStatusCode = attribute.Key("http.response.status_code")
	attrEvents     = attribute.Key("herald.events")
	attrDeliveries = attribute.Key("herald.deliveries")
	attrHandedOff  = attribute.Key("herald.handed_off")
	attrResults    = attribute.Key("herald.results")
	attrClaimed    = attribute.Key("herald.claimed")
)

// newTracer returns the engine's tracer from tp, or nil when tp is nil
// (tracing off).
func newTracer(tp trace.TracerProvider) trace.Tracer {
	if tp == nil {
		return nil
	}
	return tp.Tracer(tracerName, trace.WithInstrumentationVersion(herald.Version))
}

// traceParent writes sc as a W3C traceparent header value.
func traceParent(sc trace.SpanContext) string {
	return "00-" + sc.TraceID().String() + "-" + sc.SpanID().String() + "-" + sc.TraceFlags().String()
}

// parentOf returns the span context stored with an event (its
// TraceParent), invalid when it has none or it does not parse.
func parentOf(ev *herald.Event) trace.SpanContext {
	if ev == nil || ev.TraceParent == "" {
		return trace.SpanContext{}
	}
	ctx := propagation.TraceContext{}.Extract(context.Background(), propagation.MapCarrier{"traceparent": ev.TraceParent})
	return trace.SpanContextFromContext(ctx)
}

// startAttempt starts the span of attempt n of j's delivery, a child of
// the span its event was accepted under (in the producer's trace when the
// producer sent a traceparent), and returns ctx with it. The sender
// injects that span's traceparent into the request.
func startAttempt(ctx context.Context, tracer trace.Tracer, j *queue.Job, n int, start time.Time) (context.Context, trace.Span) {
	if parent := parentOf(j.Event); parent.IsValid() {
		ctx = trace.ContextWithRemoteSpanContext(ctx, parent)
	}
	attrs := []attribute.KeyValue{
		attrTenant.String(j.Delivery.Tenant),
		attrInstance.String(j.Delivery.Instance),
		attrWebhook.String(j.Webhook.Name),
		attrDelivery.String(j.Delivery.ID),
		attrEvent.String(j.Delivery.EventID),
		attrAttempt.Int(n),
	}
	if j.Delivery.AttemptCount == 0 && !j.Delivery.CreatedAt.IsZero() {
		// A first attempt waited from the event's acceptance; a retry's
		// wait is on the attempt before it (herald.retry_in_ms).
		attrs = append(attrs, attrWaitMs.Int64(max(start.Sub(j.Delivery.CreatedAt), 0).Milliseconds()))
	}
	return tracer.Start(ctx, "herald.attempt", trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
}

// endAttempt records what became of the attempt on its span and ends it.
func endAttempt(span trace.Span, a herald.Attempt, r herald.AttemptResult, now time.Time) {
	if a.StatusCode != 0 {
		span.SetAttributes(attrStatusCode.Int(a.StatusCode))
	}
	switch r.Status {
	case herald.StatusDelivered:
		span.SetAttributes(attrOutcome.String(outcomeDelivered))
	case herald.StatusRetrying:
		span.SetAttributes(attrOutcome.String(outcomeRetrying))
		span.SetAttributes(attrRetryInMs.Int64(max(r.NextAttemptAt.Sub(now), 0).Milliseconds()))
	default:
		span.SetAttributes(attrOutcome.String(outcomeFailed))
	}
	if !a.Delivered() {
		// Not a.Error: it may quote a redirect's Location, query and all.
		span.SetStatus(codes.Error, "not delivered")
	}
	span.End()
}

// links returns links to the valid span contexts in scs.
func links(scs []trace.SpanContext) []trace.Link {
	var out []trace.Link
	for _, sc := range scs {
		if sc.IsValid() {
			out = append(out, trace.Link{SpanContext: sc})
		}
	}
	return out
}
