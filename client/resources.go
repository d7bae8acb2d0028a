package client

import (
	"context"
	"encoding/json"
	"iter"
	"net/url"
	"strconv"
	"time"

	"github.com/heraldhooks/herald"
)

// Event is an event as a producer sends it: the catalog's eventEntity and
// eventSubtype (the entity may be left out), the ids it is about, and its
// data. Herald assigns the id and the timestamp.
type Event struct {
	EventEntity           string          `json:"eventEntity,omitempty"`
	EventSubtype          string          `json:"eventSubtype"`
	SourceID              string          `json:"sourceId,omitempty"`
	SourceName            string          `json:"sourceName,omitempty"`
	PatientID             string          `json:"patientId,omitempty"`
	URL                   string          `json:"url,omitempty"`
	InitiatedBy           string          `json:"initiatedBy,omitempty"`
	InitiatedByName       string          `json:"initiatedByName,omitempty"`
	InitiatedByObjectID   string          `json:"initiatedByObjectId,omitempty"`
	InitiatedByObjectType string          `json:"initiatedByObjectType,omitempty"`
	InitiatedTime         string          `json:"initiatedTime,omitempty"`
	Data                  json.RawMessage `json:"data,omitempty"`
	// OccurredAt is when it happened; Herald's acceptance time when zero.
	OccurredAt *time.Time `json:"occurredAt,omitempty"`
}

// Accepted is Herald's answer for one accepted event.
type Accepted struct {
	EventID string `json:"eventId"`
	// Deliveries is how many webhooks the event is to be delivered to.
	Deliveries int `json:"deliveries"`
}

// SendEvents posts events to an instance in one request, all or none:
// Herald checks every one before it stores any. A 202 means each is stored
// and will be delivered at least once.
func (c *Client) SendEvents(ctx context.Context, tenant, instance string, events ...Event) ([]Accepted, error) {
	var out struct {
		Events []Accepted `json:"events"`
	}
	if err := c.Do(ctx, "POST", instancePath(tenant, instance)+"/events", nil, events, &out); err != nil {
		return nil, err
	}
	return out.Events, nil
}

// SendEvent posts one event with an idempotency key (none when ""): the
// same key sent again within the retention answers with the first event
// instead of making another, so a producer may retry safely.
func (c *Client) SendEvent(ctx context.Context, tenant, instance, idempotencyKey string, e Event) (Accepted, error) {
	if idempotencyKey != "" {
		ctx = withHeader(ctx, "Idempotency-Key", idempotencyKey)
	}
	var out Accepted
	err := c.Do(ctx, "POST", instancePath(tenant, instance)+"/events", nil, e, &out)
	return out, err
}

// CreateTenant creates a tenant (platform admins only).
func (c *Client) CreateTenant(ctx context.Context, name string) (*herald.Tenant, error) {
	var t herald.Tenant
	err := c.Do(ctx, "POST", "/v1/tenants", nil, map[string]string{"name": name}, &t)
	return &t, err
}

// CreateInstance creates an instance (an environment) of a tenant.
func (c *Client) CreateInstance(ctx context.Context, tenant, name string) (*herald.Instance, error) {
	var in herald.Instance
	err := c.Do(ctx, "POST", "/v1/tenants/"+url.PathEscape(tenant)+"/instances", nil, map[string]string{"name": name}, &in)
	return &in, err
}

// NewAPIClient is an API client just made, with its secret, which Herald
// shows this once.
type NewAPIClient struct {
	herald.APIClient
	Secret string `json:"secret"`
}

// CreateAPIClient creates an API client of a tenant with a role.
func (c *Client) CreateAPIClient(ctx context.Context, tenant, name string, role herald.Role) (*NewAPIClient, error) {
	var out NewAPIClient
	err := c.Do(ctx, "POST", "/v1/tenants/"+url.PathEscape(tenant)+"/api-clients", nil,
		map[string]any{"name": name, "role": role}, &out)
	return &out, err
}

// CreateDesignerWebhook adds a webhook to a tenant's draft: name, title and
// triggers. It reaches the instances when the draft is published.
func (c *Client) CreateDesignerWebhook(ctx context.Context, tenant string, w herald.DesignerWebhook) (*herald.DesignerWebhook, error) {
	body := map[string]any{"name": w.Name, "title": w.Title, "triggers": w.Triggers}
	var out herald.DesignerWebhook
	err := c.Do(ctx, "POST", "/v1/tenants/"+url.PathEscape(tenant)+"/designer/webhooks", nil, body, &out)
	return &out, err
}

// Publish publishes a tenant's draft: its webhooks appear, inactive, in
// every instance.
func (c *Client) Publish(ctx context.Context, tenant, comment string) (*herald.DesignerVersion, error) {
	var out herald.DesignerVersion
	err := c.Do(ctx, "POST", "/v1/tenants/"+url.PathEscape(tenant)+"/designer/publish", nil, map[string]string{"comment": comment}, &out)
	return &out, err
}

// webhookPath is the path of an instance's webhook.
func webhookPath(tenant, instance, name string) string {
	return instancePath(tenant, instance) + "/webhooks/" + url.PathEscape(name)
}

// Webhook returns an instance's webhook, its secrets masked.
func (c *Client) Webhook(ctx context.Context, tenant, instance, name string) (*herald.Webhook, error) {
	var out herald.Webhook
	err := c.Do(ctx, "GET", webhookPath(tenant, instance, name), nil, nil, &out)
	return &out, err
}

// UpdateWebhook changes the fields of u that are set.
func (c *Client) UpdateWebhook(ctx context.Context, tenant, instance, name string, u herald.WebhookUpdate) (*herald.Webhook, error) {
	var out herald.Webhook
	err := c.Do(ctx, "PATCH", webhookPath(tenant, instance, name), nil, u, &out)
	return &out, err
}

// ActivateWebhook starts deliveries to a webhook that has a URL.
func (c *Client) ActivateWebhook(ctx context.Context, tenant, instance, name string) (*herald.Webhook, error) {
	var out herald.Webhook
	err := c.Do(ctx, "POST", webhookPath(tenant, instance, name)+"/activate", nil, nil, &out)
	return &out, err
}

// DeactivateWebhook stops deliveries to a webhook; what it was owed waits.
func (c *Client) DeactivateWebhook(ctx context.Context, tenant, instance, name string) (*herald.Webhook, error) {
	var out herald.Webhook
	err := c.Do(ctx, "POST", webhookPath(tenant, instance, name)+"/deactivate", nil, nil, &out)
	return &out, err
}

// WebhookSecret returns a webhook's signing secret (whsec_...), for its
// receiver (admins only).
func (c *Client) WebhookSecret(ctx context.Context, tenant, instance, name string) (string, error) {
	var out struct{ Secret string }
	err := c.Do(ctx, "GET", webhookPath(tenant, instance, name)+"/secret", nil, nil, &out)
	return out.Secret, err
}

// DeliveryFilter selects deliveries; zero fields do not filter.
type DeliveryFilter struct {
	Webhook, Status, EventSubtype, EventEntity, EventID string
	From, To                                            time.Time
	// Limit is the page size (Herald's default when 0).
	Limit int
}

func (f DeliveryFilter) query() url.Values {
	q := url.Values{}
	for k, v := range map[string]string{"webhook": f.Webhook, "status": f.Status, "eventSubtype": f.EventSubtype,
		"eventEntity": f.EventEntity, "eventId": f.EventID} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if !f.From.IsZero() {
		q.Set("from", f.From.UTC().Format(time.RFC3339Nano))
	}
	if !f.To.IsZero() {
		q.Set("to", f.To.UTC().Format(time.RFC3339Nano))
	}
	if f.Limit > 0 {
		q.Set("limit", strconv.Itoa(f.Limit))
	}
	return q
}

// Deliveries returns one page of an instance's deliveries, newest first,
// and the cursor of the next page ("" on the last). Give cursor "" for the
// first page.
func (c *Client) Deliveries(ctx context.Context, tenant, instance string, f DeliveryFilter, cursor string) ([]*herald.Delivery, string, error) {
	q := f.query()
	if cursor != "" {
		q.Set("cursor", cursor)
	}
	var out struct {
		Deliveries []*herald.Delivery `json:"deliveries"`
		NextCursor string             `json:"nextCursor"`
	}
	err := c.Do(ctx, "GET", instancePath(tenant, instance)+"/deliveries", q, nil, &out)
	return out.Deliveries, out.NextCursor, err
}

// AllDeliveries yields every delivery f selects, newest first, page by
// page; it stops at the first error, which it yields.
func (c *Client) AllDeliveries(ctx context.Context, tenant, instance string, f DeliveryFilter) iter.Seq2[*herald.Delivery, error] {
	return func(yield func(*herald.Delivery, error) bool) {
		cursor := ""
		for {
			page, next, err := c.Deliveries(ctx, tenant, instance, f, cursor)
			if err != nil {
				yield(nil, err)
				return
			}
			for _, d := range page {
				if !yield(d, nil) {
					return
				}
			}
			if next == "" {
				return
			}
			cursor = next
		}
	}
}

// Delivery returns one delivery with its attempts, oldest first.
func (c *Client) Delivery(ctx context.Context, tenant, instance, id string) (*herald.Delivery, error) {
	var out herald.Delivery
	err := c.Do(ctx, "GET", instancePath(tenant, instance)+"/deliveries/"+url.PathEscape(id), nil, nil, &out)
	return &out, err
}

// Resend makes a delivery due now, with a fresh retry window.
func (c *Client) Resend(ctx context.Context, tenant, instance, id string) (*herald.Delivery, error) {
	var out herald.Delivery
	err := c.Do(ctx, "POST", instancePath(tenant, instance)+"/deliveries/"+url.PathEscape(id)+"/resend", nil, nil, &out)
	return &out, err
}

// Catalog is the event catalog: entities and their subtypes.
type Catalog struct {
	Entities []herald.CatalogEntity `json:"entities"`
	// PredefinedFields are the payload fields a webhook can select.
	PredefinedFields []string `json:"predefinedFields"`
}

// Catalog returns the event catalog Herald validates events against.
func (c *Client) Catalog(ctx context.Context) (*Catalog, error) {
	var out Catalog
	err := c.Do(ctx, "GET", "/v1/catalog", nil, nil, &out)
	return &out, err
}
