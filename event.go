package herald

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
)

// MaxEventBytes is the largest accepted JSON encoding of one event.
const MaxEventBytes = 1 << 20

// Event is something that happened in an instance. Its ID is the
// webhook-id of every delivery made from it, the same on every retry.
type Event struct {
	ID           string `json:"eventId"`
	TenantName   string `json:"tenantName"`
	InstanceName string `json:"instanceName"`

	Entity                string          `json:"eventEntity"`
	Subtype               string          `json:"eventSubtype"`
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

	// OccurredAt is when it happened, as the producer says; it is the
	// payload's timestamp. Defaults to CreatedAt.
	OccurredAt time.Time `json:"occurredAt"`
	// CreatedAt is when Herald accepted it.
	CreatedAt time.Time `json:"createdAt"`

	// IdempotencyKey, when set, makes a repeated POST return this event
	// instead of creating another. Unique per instance.
	IdempotencyKey string `json:"idempotencyKey,omitempty"`

	// TraceParent is the W3C traceparent of the span that accepted the
	// event, set by the engine when the node traces, and empty otherwise:
	// the attempt spans of its deliveries are its children, so they join
	// the producer's trace. Not part of the API.
	TraceParent string `json:"-"`
}

// Timestamp returns the time the payload carries: OccurredAt, or CreatedAt
// when the producer did not say.
func (e *Event) Timestamp() time.Time {
	if !e.OccurredAt.IsZero() {
		return e.OccurredAt
	}
	return e.CreatedAt
}

// Validate returns an EINVALID error naming the first bad field, in the
// order a person reading the request would find them. prefix is prepended
// to field names ("events[3].") when the event is one of an array.
func (e *Event) Validate(prefix string) error {
	if e.Entity == "" && e.Subtype == "" {
		return FieldErrorf(prefix+"eventSubtype", "%seventSubtype is required (for example \"PATIENT_CREATED\"); eventEntity may be given too.", prefix)
	}
	if e.Subtype == "" {
		return FieldErrorf(prefix+"eventSubtype", "%seventSubtype is required; known subtypes for %s: %s.", prefix, e.Entity, strings.Join(Catalog.Subtypes(e.Entity), ", "))
	}
	entity, ok := Catalog.EntityOf(e.Subtype)
	if !ok {
		return FieldErrorf(prefix+"eventSubtype", "%seventSubtype %q is not in the event catalog; subtypes look like \"PATIENT_CREATED\" (see GET /v1/catalog).", prefix, e.Subtype)
	}
	if e.Entity == "" {
		e.Entity = entity
	} else if e.Entity != entity {
		return FieldErrorf(prefix+"eventEntity", "%seventEntity %q does not match eventSubtype %q, which belongs to %s.", prefix, e.Entity, e.Subtype, entity)
	}
	if len(e.Data) > 0 {
		d := bytes.TrimSpace(e.Data)
		if len(d) == 0 || d[0] != '{' {
			if !bytes.Equal(d, []byte("null")) {
				return FieldErrorf(prefix+"data", "%sdata must be a JSON object.", prefix)
			}
			e.Data = nil
		}
	}
	for _, f := range []struct{ name, v string }{
		{"sourceId", e.SourceID}, {"sourceName", e.SourceName}, {"patientId", e.PatientID},
		{"url", e.URL}, {"initiatedBy", e.InitiatedBy}, {"initiatedByName", e.InitiatedByName},
		{"initiatedByObjectId", e.InitiatedByObjectID}, {"initiatedByObjectType", e.InitiatedByObjectType},
		{"initiatedTime", e.InitiatedTime},
	} {
		if len(f.v) > 2048 {
			return FieldErrorf(prefix+f.name, "%s%s is %d characters long; the limit is 2048.", prefix, f.name, len(f.v))
		}
	}
	if y := e.OccurredAt.UTC().Year(); y < 1 || y > 9999 {
		// The payload's timestamp is RFC 3339 in UTC, which has 4-digit years.
		return FieldErrorf(prefix+"occurredAt", "%soccurredAt %s is outside the years 0001 to 9999 in UTC.", prefix, e.OccurredAt.Format(time.RFC3339Nano))
	}
	if len(e.IdempotencyKey) > 255 {
		return FieldErrorf("Idempotency-Key", "Idempotency-Key is %d characters long; the limit is 255.", len(e.IdempotencyKey))
	}
	return nil
}

// EventResult is the outcome of creating one event.
type EventResult struct {
	EventID    string `json:"eventId"`
	Deliveries int    `json:"deliveries"`
	// Duplicate is true when the event's idempotency key was seen before;
	// EventID and Deliveries then describe the first event.
	Duplicate bool `json:"-"`
	// Err is set when this event was refused (unknown tenant or instance);
	// the other events of the batch are unaffected.
	Err error `json:"-"`
}

// EventIngester accepts events. An event is durable, with all its
// deliveries, when CreateEvents returns without error for it. The engine
// (dispatch.Engine) implements it, storing events in its group commits,
// and is the one the API takes.
type EventIngester interface {
	// CreateEvents stores each event (with TenantName and InstanceName set,
	// already validated) and one PENDING delivery for each active webhook of
	// its instance whose triggers match it, in one transaction. It fills in
	// ID and CreatedAt of events that lack them. Results are in the order of
	// events. The error is for the whole batch (the database is down);
	// per-event refusals are in EventResult.Err.
	CreateEvents(ctx context.Context, events []*Event) ([]EventResult, error)
}

// EventService reads events back.
type EventService interface {
	// GetEvent returns one event of an instance, or ENOTFOUND.
	GetEvent(ctx context.Context, tenant, instance, id string) (*Event, error)
}

// PurgeCounts says how much a purge deleted.
type PurgeCounts struct {
	Events     int `json:"events"`
	Deliveries int `json:"deliveries"`
	Attempts   int `json:"attempts"`
}

// Add adds o's counts to c.
func (c *PurgeCounts) Add(o PurgeCounts) {
	c.Events += o.Events
	c.Deliveries += o.Deliveries
	c.Attempts += o.Attempts
}

// ErasureService erases a patient's health data on request, before
// retention would.
type ErasureService interface {
	// PurgePatient deletes every event of an instance whose patientId is
	// patientID, with all their deliveries and attempts, whatever their
	// status: what was still owed is never sent again, and a result of an
	// attempt in flight that arrives afterwards is dropped (see
	// queue.Store.Write). Returns how many of each went; an
	// unknown patient deletes nothing and is no error. ENOTFOUND for an
	// unknown tenant or instance. The work is done in transactions of a
	// few hundred events: after an error part of it may be done, and
	// calling again finishes it.
	PurgePatient(ctx context.Context, tenant, instance, patientID string) (PurgeCounts, error)
}

// EventCatalog lists the event entities and their subtypes. It is data:
// catalog.json, embedded at build time.
type EventCatalog struct {
	Entities []CatalogEntity `json:"entities"`
	entityOf map[string]string
}

// CatalogEntity is one eventEntity and its eventSubtypes.
type CatalogEntity struct {
	Entity   string   `json:"entity"`
	Subtypes []string `json:"subtypes"`
}

//go:embed catalog.json
var catalogJSON []byte

// Catalog is the event catalog Herald validates events and triggers against.
var Catalog = mustLoadCatalog(catalogJSON)

func mustLoadCatalog(b []byte) *EventCatalog {
	var c EventCatalog
	if err := json.Unmarshal(b, &c); err != nil {
		panic(fmt.Sprintf("herald: catalog.json: %v", err))
	}
	c.entityOf = map[string]string{}
	for _, e := range c.Entities {
		for _, s := range e.Subtypes {
			c.entityOf[s] = e.Entity
		}
	}
	return &c
}

// EntityOf returns the entity a subtype belongs to, and whether it is known.
func (c *EventCatalog) EntityOf(subtype string) (string, bool) {
	e, ok := c.entityOf[subtype]
	return e, ok
}

// HasEntity reports whether entity is in the catalog.
func (c *EventCatalog) HasEntity(entity string) bool {
	return slices.ContainsFunc(c.Entities, func(e CatalogEntity) bool { return e.Entity == entity })
}

// Subtypes returns the subtypes of entity, or every subtype when entity is
// unknown, sorted.
func (c *EventCatalog) Subtypes(entity string) []string {
	var out []string
	for _, e := range c.Entities {
		if e.Entity == entity || !c.HasEntity(entity) {
			out = append(out, e.Subtypes...)
		}
	}
	sort.Strings(out)
	return out
}

// EntityNames returns every entity, in catalog order.
func (c *EventCatalog) EntityNames() []string {
	out := make([]string, len(c.Entities))
	for i, e := range c.Entities {
		out[i] = e.Entity
	}
	return out
}
