package httpapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/heraldhooks/herald"
)

// Limits of POST .../events.
const (
	maxBatchEvents = 1000
	maxBatchBytes  = 16 << 20
)

// eventRequest is one event as a producer posts it: the fields of the
// Welkin body, plus occurredAt and data. eventId and timestamp are
// Herald's to set.
type eventRequest struct {
	TenantName            string          `json:"tenantName"`
	InstanceName          string          `json:"instanceName"`
	EventEntity           string          `json:"eventEntity"`
	EventSubtype          string          `json:"eventSubtype"`
	SourceID              string          `json:"sourceId"`
	SourceName            string          `json:"sourceName"`
	PatientID             string          `json:"patientId"`
	URL                   string          `json:"url"`
	InitiatedBy           string          `json:"initiatedBy"`
	InitiatedByName       string          `json:"initiatedByName"`
	InitiatedByObjectID   string          `json:"initiatedByObjectId"`
	InitiatedByObjectType string          `json:"initiatedByObjectType"`
	InitiatedTime         string          `json:"initiatedTime"`
	OccurredAt            string          `json:"occurredAt"`
	Data                  json.RawMessage `json:"data"`
}

// createEvents accepts one event object or an array of them. Every event is
// decoded and validated before any is stored, so a bad element rejects the
// whole request and nothing is created.
func (s *server) createEvents(w http.ResponseWriter, r *http.Request) error {
	body, err := readBody(w, r, maxBatchBytes)
	if herald.ErrorCode(err) == herald.ETOOLARGE {
		return herald.Errorf(herald.ETOOLARGE, "The request body is over %s, the limit for a batch of events; send at most %d events of at most 1 MiB each, and split larger batches.", sizeText(maxBatchBytes), maxBatchEvents)
	} else if err != nil {
		return err
	}
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return herald.Errorf(herald.EINVALID, "The request body is empty; send one event as a JSON object, or a JSON array of events.")
	}
	if err := checkJSONContentType(r, body); err != nil {
		return err
	}
	events, err := parseEvents(body, r.PathValue("tenant"), r.PathValue("instance"), r.Header.Get("Idempotency-Key"))
	if err != nil {
		return err
	}

	results, err := s.ingester.CreateEvents(r.Context(), events)
	if err != nil {
		return err
	}
	if len(results) != len(events) {
		return fmt.Errorf("create events: %d results for %d events", len(results), len(events))
	}

	if body[0] == '{' {
		res := results[0]
		if res.Err != nil {
			return res.Err
		}
		if res.Duplicate {
			w.Header().Set("Idempotent-Replayed", "true")
		}
		return writeJSON(w, http.StatusAccepted, eventResult{EventID: res.EventID, Deliveries: res.Deliveries})
	}
	// The events of one request share an instance, so they are refused
	// together (unknown tenant or instance) or not at all; should the
	// ingester refuse only some, the others are still reported.
	out := make([]eventResult, len(results))
	refused := 0
	for i, res := range results {
		if res.Err != nil {
			refused++
			d := errorDetail{Code: herald.ErrorCode(res.Err), Message: herald.ErrorMessage(res.Err)}
			out[i].Error = &d
			continue
		}
		out[i] = eventResult{EventID: res.EventID, Deliveries: res.Deliveries}
	}
	if refused == len(results) {
		return results[0].Err
	}
	return writeJSON(w, http.StatusAccepted, map[string]any{"events": out})
}

// parseEvents decodes and validates the body of POST .../events (white
// space trimmed, not empty): one event object, or an array of them, of the
// instance named by the path. key is the Idempotency-Key header, which
// applies to a single event only. Nothing is stored: a bad element
// refuses the whole body.
func parseEvents(body []byte, tenant, instance, key string) ([]*herald.Event, error) {
	var events []*herald.Event
	switch body[0] {
	case '{':
		if len(body) > herald.MaxEventBytes {
			return nil, herald.Errorf(herald.ETOOLARGE, "The event is %d bytes; the limit for one event is 1 MiB (%d bytes).", len(body), herald.MaxEventBytes)
		}
		e, err := parseEvent(body, "", tenant, instance, key)
		if err != nil {
			return nil, err
		}
		events = append(events, e)
	case '[':
		if key != "" {
			return nil, herald.FieldErrorf("Idempotency-Key", "Idempotency-Key applies to a single event, not to an array; send events one by one to use it.")
		}
		var raws []json.RawMessage
		if err := unmarshalStrict(body, &raws, ""); err != nil {
			return nil, err
		}
		if len(raws) == 0 {
			return nil, herald.Errorf(herald.EINVALID, "The array of events is empty; send at least one event.")
		}
		if len(raws) > maxBatchEvents {
			return nil, herald.Errorf(herald.ETOOLARGE, "The array has %d events; the limit is %d per request.", len(raws), maxBatchEvents)
		}
		for i, raw := range raws {
			prefix := fmt.Sprintf("events[%d].", i)
			if len(raw) > herald.MaxEventBytes {
				return nil, herald.Errorf(herald.ETOOLARGE, "events[%d] is %d bytes; the limit for one event is 1 MiB (%d bytes).", i, len(raw), herald.MaxEventBytes)
			}
			if raw = bytes.TrimSpace(raw); len(raw) == 0 || raw[0] != '{' {
				return nil, herald.FieldErrorf(fmt.Sprintf("events[%d]", i), "events[%d] must be a JSON object.", i)
			}
			e, err := parseEvent(raw, prefix, tenant, instance, "")
			if err != nil {
				return nil, err
			}
			events = append(events, e)
		}
	default:
		return nil, herald.Errorf(herald.EINVALID, "The request body must be one event as a JSON object, or a JSON array of events.")
	}
	return events, nil
}

// eventResult is the answer for one accepted event.
type eventResult struct {
	EventID    string       `json:"eventId,omitempty"`
	Deliveries int          `json:"deliveries"`
	Error      *errorDetail `json:"error,omitempty"`
}

// parseEvent decodes and validates one event of the instance named by the
// path, with its idempotency key. prefix names the array element in errors
// ("events[2].").
func parseEvent(b []byte, prefix, tenant, instance, key string) (*herald.Event, error) {
	var req eventRequest
	if err := unmarshalStrict(b, &req, prefix); err != nil {
		if he, ok := err.(*herald.Error); ok {
			switch he.Field {
			case prefix + "eventId":
				he.Message = fmt.Sprintf("%seventId is assigned by Herald; remove it.", prefix)
			case prefix + "timestamp":
				he.Message = fmt.Sprintf("%stimestamp is set by Herald; send when the event happened as occurredAt (RFC 3339).", prefix)
			}
		}
		return nil, err
	}
	if req.TenantName != "" && req.TenantName != tenant {
		return nil, herald.FieldErrorf(prefix+"tenantName", "%stenantName %q does not match the tenant in the path, %q; omit it or make them equal.", prefix, req.TenantName, tenant)
	}
	if req.InstanceName != "" && req.InstanceName != instance {
		return nil, herald.FieldErrorf(prefix+"instanceName", "%sinstanceName %q does not match the instance in the path, %q; omit it or make them equal.", prefix, req.InstanceName, instance)
	}
	e := &herald.Event{
		TenantName:            tenant,
		InstanceName:          instance,
		Entity:                req.EventEntity,
		Subtype:               req.EventSubtype,
		SourceID:              req.SourceID,
		SourceName:            req.SourceName,
		PatientID:             req.PatientID,
		URL:                   req.URL,
		InitiatedBy:           req.InitiatedBy,
		InitiatedByName:       req.InitiatedByName,
		InitiatedByObjectID:   req.InitiatedByObjectID,
		InitiatedByObjectType: req.InitiatedByObjectType,
		InitiatedTime:         req.InitiatedTime,
		Data:                  req.Data,
		IdempotencyKey:        key,
	}
	if req.OccurredAt != "" {
		t, err := parseTime(prefix+"occurredAt", req.OccurredAt)
		if err != nil {
			return nil, err
		}
		e.OccurredAt = t.UTC()
	}
	if err := e.Validate(prefix); err != nil {
		return nil, err
	}
	return e, nil
}

func (s *server) getEvent(w http.ResponseWriter, r *http.Request) error {
	e, err := s.store.GetEvent(r.Context(), r.PathValue("tenant"), r.PathValue("instance"), r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, e)
}
