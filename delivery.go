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

// Delivered reports whether the attempt delivered: a 2xx answer that came
// whole (an answer cut short, or whose body never ended, has an Error).
func (a Attempt) Delivered() bool {
	return a.StatusCode >= 200 && a.StatusCode < 300 && a.Error == ""
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
