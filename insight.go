package herald

import (
	"context"
	"time"
)

// WebhookStats summarises how a webhook of an instance has fared recently:
// its attempts since a time, and its latest delivery.
type WebhookStats struct {
	Webhook string    `json:"webhook"`
	Since   time.Time `json:"since"`
	// Attempts counts the attempts started at or after Since; Succeeded
	// those of them the receiver answered 2xx.
	Attempts  int `json:"attempts"`
	Succeeded int `json:"succeeded"`
	// SuccessRate is Succeeded / Attempts, from 0 to 1; nil without attempts.
	SuccessRate *float64 `json:"successRate"`
	// LastDelivery is the newest delivery made for the webhook, at any
	// time, without attempts; nil when there has been none.
	LastDelivery *Delivery `json:"lastDelivery"`
}

// TimelineBucket counts the attempts of a webhook that started in
// [Start, Start+step), by outcome.
type TimelineBucket struct {
	Start time.Time `json:"start"`
	// Delivered attempts got a 2xx answer.
	Delivered int `json:"delivered"`
	// Rejected attempts got an answer other than 2xx.
	Rejected int `json:"rejected"`
	// Unreachable attempts got no answer: a timeout, a refused connection,
	// a blocked destination.
	Unreachable int `json:"unreachable"`
}

// MaxTimelineBuckets bounds the buckets of one DeliveryTimeline call.
const MaxTimelineBuckets = 1440

// EventQuery finds events of one instance: by ID, or by the producer's
// source ID. At least one of ID and SourceID is set.
type EventQuery struct {
	Tenant   string
	Instance string
	ID       string
	SourceID string
	// Limit is the most events returned. Defaults to 50, at most 500.
	Limit int
}

// InsightService answers the questions people ask of the delivery log as
// a whole: is this webhook healthy, what happened minute by minute, where
// is the event about this patient, what does the draft change.
type InsightService interface {
	// WebhookStats returns the stats of every webhook of an instance,
	// sorted by name, counting attempts since since. ENOTFOUND for an
	// unknown tenant or instance.
	WebhookStats(ctx context.Context, tenant, instance string, since time.Time) ([]*WebhookStats, error)
	// DeliveryTimeline returns the attempts of a webhook started in
	// [from, to) counted by outcome in buckets of step, oldest first, one
	// bucket for every step from from (also the empty ones). EINVALID when
	// step is under a second, to is not after from, or the range needs more
	// than MaxTimelineBuckets buckets; ENOTFOUND for an unknown webhook.
	DeliveryTimeline(ctx context.Context, tenant, instance, webhook string, from, to time.Time, step time.Duration) ([]TimelineBucket, error)
	// FindEvents returns the events of an instance with q.ID or q.SourceID
	// (both must match when both are set), newest first. EINVALID when
	// neither is set; ENOTFOUND for an unknown tenant or instance; an empty
	// list when nothing matches.
	FindEvents(ctx context.Context, q EventQuery) ([]*Event, error)
	// PublishedVersion returns the tenant's latest published designer
	// version with its webhooks, what a draft's changes are compared with;
	// ENOTFOUND before the first publish and for an unknown tenant.
	PublishedVersion(ctx context.Context, tenant string) (*DesignerVersion, error)
}
