package herald

import (
	"bytes"
	"encoding/json"
	"slices"
	"time"
)

// payloadKeys are the JSON keys of the Welkin body, in order, and the
// predefined field that selects each ("" when always present).
var payloadKeys = []struct{ key, field string }{
	{"eventId", ""},
	{"timestamp", ""},
	{"eventEntity", FieldEventEntity},
	{"eventSubtype", FieldEventSubtype},
	{"sourceId", FieldSourceID},
	{"sourceName", FieldSourceName},
	{"patientId", FieldPatientID},
	{"tenantName", FieldTenantName},
	{"instanceName", FieldInstanceName},
	{"url", FieldURL},
	{"initiatedBy", FieldInitiatedBy},
	{"initiatedByName", FieldInitiatedBy},
	{"initiatedByObjectId", FieldInitiatedBy},
	{"initiatedByObjectType", FieldInitiatedBy},
	{"initiatedTime", FieldInitiatedBy},
	{"data", FieldData},
}

func reservedPayloadKey(name string) bool {
	return slices.ContainsFunc(payloadKeys, func(k struct{ key, field string }) bool { return k.key == name }) ||
		name == "type"
}

// TimestampFormat is how payload timestamps are written: RFC 3339 in UTC
// with milliseconds, as Welkin does ("2026-11-26T17:11:00.123Z").
const TimestampFormat = "2006-01-02T15:04:05.000Z07:00"

// Render returns the JSON body a webhook with this config sends for e.
// Keys keep a stable order so bodies are easy to read in a delivery log.
func (c PayloadConfig) Render(e *Event) ([]byte, error) {
	values := map[string]any{
		"eventId":               e.ID,
		"timestamp":             e.Timestamp().UTC().Format(TimestampFormat),
		"eventEntity":           e.Entity,
		"eventSubtype":          e.Subtype,
		"sourceId":              e.SourceID,
		"sourceName":            e.SourceName,
		"patientId":             e.PatientID,
		"tenantName":            e.TenantName,
		"instanceName":          e.InstanceName,
		"url":                   e.URL,
		"initiatedBy":           e.InitiatedBy,
		"initiatedByName":       e.InitiatedByName,
		"initiatedByObjectId":   e.InitiatedByObjectID,
		"initiatedByObjectType": e.InitiatedByObjectType,
		"initiatedTime":         e.InitiatedTime,
	}
	var data json.RawMessage = []byte("{}")
	if len(e.Data) > 0 {
		data = e.Data
	}
	values["data"] = data

	var obj orderedObject
	for _, k := range payloadKeys {
		if k.field != "" && !slices.Contains(c.PredefinedFields, k.field) {
			continue
		}
		if c.Format == FormatStandard && (k.key == "eventSubtype" || k.key == "timestamp") {
			continue // carried as "type" and the envelope's "timestamp"
		}
		obj = append(obj, kv{k.key, values[k.key]})
	}
	for _, f := range c.CustomFields {
		obj = append(obj, kv{f.Name, f.Value})
	}
	if c.Format == FormatStandard {
		return orderedObject{
			{"type", e.Subtype},
			{"timestamp", values["timestamp"]},
			{"data", obj},
		}.MarshalJSON()
	}
	return obj.MarshalJSON()
}

// PlaceholderEvent returns the event a webhook's test action sends: Welkin's
// placeholders ("sourceId":"SOURCE_ID") with the real tenant and instance.
func PlaceholderEvent(tenant, instance string, now time.Time) *Event {
	return &Event{
		ID:                    NewID("evt", now),
		TenantName:            tenant,
		InstanceName:          instance,
		Entity:                "EVENT_ENTITY",
		Subtype:               "EVENT_SUBTYPE",
		SourceID:              "SOURCE_ID",
		SourceName:            "SOURCE_NAME",
		PatientID:             "PATIENT_ID",
		URL:                   "URL",
		InitiatedBy:           "INITIATED_BY",
		InitiatedByName:       "INITIATED_BY_NAME",
		InitiatedByObjectID:   "INITIATED_BY_OBJECT_ID",
		InitiatedByObjectType: "INITIATED_BY_OBJECT_TYPE",
		InitiatedTime:         "INITIATED_TIME",
		Data:                  json.RawMessage(`{}`),
		CreatedAt:             now,
	}
}

type kv struct {
	key   string
	value any
}

// orderedObject marshals as a JSON object with its keys in slice order.
type orderedObject []kv

func (o orderedObject) MarshalJSON() ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteByte('{')
	for i, p := range o {
		if i > 0 {
			buf.WriteByte(',')
		}
		k, _ := json.Marshal(p.key)
		buf.Write(k)
		buf.WriteByte(':')
		v, err := json.Marshal(p.value)
		if err != nil {
			return nil, err
		}
		buf.Write(v)
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}
