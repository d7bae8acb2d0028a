package herald

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"time"
)

// Operations events tell a tenant's operations webhook what happens to its
// webhooks: webhook.deactivated (a 410 Gone, failing for days, by whom),
// webhook.failing (every attempt failed for more than an hour),
// webhook.recovered (a success after that) and delivery.failed (a
// delivery gave up). Each is an event with one
// delivery, stored in the transaction of the change that causes it, and
// sent, signed and retried by the engine like any other delivery
// (docs/decisions/0018-operations-events.md).
//
// The operations webhook is a webhooks row of the tenant's reserved
// instance OperationsInstance, named OperationsWebhookName: neither is a
// valid name (ValidateName), so no tenant's instance or designer webhook
// can take them, and the reserved instance is left out of instance lists
// and publications. Its events say nothing of itself: a change to the
// operations webhook, or a delivery to it that fails, makes no operations
// event, so a failing operations receiver cannot feed itself.
const (
	OperationsInstance    = "_operations"
	OperationsWebhookName = "_operations"
	// OperationsEntity is the entity of every operations event; its
	// subtype is the event's type.
	OperationsEntity = "operations"
	// FormatOperations is the payload format of the operations webhook,
	// and of no other: {"type","timestamp","data"} where data is the
	// event's data as stored (ids and reasons only, never health data).
	FormatOperations = "operations"
)

// Operations event types.
const (
	OpsWebhookDeactivated = "webhook.deactivated"
	OpsWebhookFailing     = "webhook.failing"
	OpsWebhookRecovered   = "webhook.recovered"
	OpsDeliveryFailed     = "delivery.failed"
)

// OperationsEventTypes lists the operations event types a tenant may
// subscribe to.
var OperationsEventTypes = []string{OpsWebhookDeactivated, OpsWebhookFailing, OpsWebhookRecovered, OpsDeliveryFailed}

// OperationsFailingAfter is how long a webhook fails every attempt before
// the maintenance leader reports it with webhook.failing (once per run of
// failures; the next success reports webhook.recovered).
const OperationsFailingAfter = time.Hour

// OperationsWebhook is a tenant's operations webhook as the API shows it.
type OperationsWebhook struct {
	Tenant string `json:"tenant"`
	URL    string `json:"url"`
	// Events are the types it receives; all of OperationsEventTypes when
	// set empty.
	Events []string `json:"events"`
	Active bool     `json:"active"`
	// DeactivatedReason says why it stopped (a 410 Gone from its
	// receiver); "" while active.
	DeactivatedReason string    `json:"deactivatedReason,omitempty"`
	CreatedAt         time.Time `json:"createdAt"`
	UpdatedAt         time.Time `json:"updatedAt"`
	// Secret is the signing secret, returned only by the PUT that made it.
	Secret string `json:"secret,omitempty"`
}

// OperationsWebhookRequest is the body of PUT .../operations-webhook.
type OperationsWebhookRequest struct {
	URL    string   `json:"url"`
	Events []string `json:"events"`
	// RotateSecret asks for a new signing secret (the old one stops at
	// once); the first PUT always makes one.
	RotateSecret bool `json:"rotateSecret"`
}

// Validate checks the request: an http(s) URL and known event types.
func (r *OperationsWebhookRequest) Validate() error {
	if strings.TrimSpace(r.URL) == "" {
		return FieldErrorf("url", "url is required.")
	}
	if err := ValidateURL("url", r.URL); err != nil {
		return err
	}
	for i, e := range r.Events {
		if !slices.Contains(OperationsEventTypes, e) {
			return FieldErrorf("events", "events[%d] %q is not an operations event; use %s.", i, e, strings.Join(OperationsEventTypes, ", "))
		}
	}
	return nil
}

// OperationsTriggers are the triggers of an operations webhook that
// receives events (all types when empty).
func OperationsTriggers(events []string) []Trigger {
	if len(events) == 0 {
		return []Trigger{{EventEntity: OperationsEntity}}
	}
	out := make([]Trigger, 0, len(events))
	for _, e := range events {
		out = append(out, Trigger{EventSubtype: e})
	}
	return out
}

// OperationsEvents are the event types of an operations webhook's
// triggers (OperationsTriggers' inverse).
func OperationsEvents(triggers []Trigger) []string {
	out := []string{}
	for _, t := range triggers {
		if t.EventSubtype == "" {
			return slices.Clone(OperationsEventTypes)
		}
		out = append(out, t.EventSubtype)
	}
	return out
}

// OperationsView returns the operations webhook w as the API shows it.
func OperationsView(w *Webhook) *OperationsWebhook {
	return &OperationsWebhook{Tenant: w.Tenant, URL: w.URL, Events: OperationsEvents(w.Triggers), Active: w.Active,
		DeactivatedReason: w.DeactivatedReason, CreatedAt: w.CreatedAt, UpdatedAt: w.UpdatedAt}
}

// OpsWebhook names a webhook in an operations event.
type OpsWebhook struct {
	Tenant   string `json:"tenant"`
	Instance string `json:"instance"`
	Webhook  string `json:"webhook"`
}

// OperationsEvent returns the operations event of type typ about webhook
// w at now, with data (ids, codes and reasons only) merged into its data
// object beside the webhook's names. It is nil for the operations webhook
// itself: no operations event is about the operations webhook.
func OperationsEvent(typ string, w OpsWebhook, data map[string]any, now time.Time) *Event {
	if w.Instance == OperationsInstance {
		return nil
	}
	obj := map[string]any{"tenant": w.Tenant, "instance": w.Instance, "webhook": w.Webhook}
	for k, v := range data {
		obj[k] = v
	}
	b, _ := json.Marshal(obj)
	return &Event{TenantName: w.Tenant, InstanceName: OperationsInstance, Entity: OperationsEntity, Subtype: typ,
		Data: b, OccurredAt: now, CreatedAt: now}
}

// OperationsService manages a tenant's operations webhook.
type OperationsService interface {
	// SetOperationsWebhook creates or replaces the tenant's operations
	// webhook (active, with r's URL and events) and returns it; Secret is
	// set when it was made now (the first PUT, or r.RotateSecret).
	// ENOTFOUND for an unknown tenant.
	SetOperationsWebhook(ctx context.Context, tenant string, r OperationsWebhookRequest) (*OperationsWebhook, error)
	// GetOperationsWebhook returns it, or ENOTFOUND when none is set.
	GetOperationsWebhook(ctx context.Context, tenant string) (*OperationsWebhook, error)
	// DeleteOperationsWebhook turns it off: deactivated, its open
	// deliveries cancelled, no further events made. ENOTFOUND when none.
	DeleteOperationsWebhook(ctx context.Context, tenant string) error
}
