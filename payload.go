package herald

import (
	"bytes"
	"encoding/json"
	"slices"
	"time"
	"unicode/utf8"
)

// payloadKeys are the JSON keys of the Welkin body, in order, the
// predefined field that selects each ("" when always present), and its
// value ("data" is the event's data object, written apart).
var payloadKeys = []struct {
	key, field string
	value      func(*Event) string
}{
	{"eventId", "", func(e *Event) string { return e.ID }},
	{"timestamp", "", nil},
	{"eventEntity", FieldEventEntity, func(e *Event) string { return e.Entity }},
	{"eventSubtype", FieldEventSubtype, func(e *Event) string { return e.Subtype }},
	{"sourceId", FieldSourceID, func(e *Event) string { return e.SourceID }},
	{"sourceName", FieldSourceName, func(e *Event) string { return e.SourceName }},
	{"patientId", FieldPatientID, func(e *Event) string { return e.PatientID }},
	{"tenantName", FieldTenantName, func(e *Event) string { return e.TenantName }},
	{"instanceName", FieldInstanceName, func(e *Event) string { return e.InstanceName }},
	{"url", FieldURL, func(e *Event) string { return e.URL }},
	{"initiatedBy", FieldInitiatedBy, func(e *Event) string { return e.InitiatedBy }},
	{"initiatedByName", FieldInitiatedBy, func(e *Event) string { return e.InitiatedByName }},
	{"initiatedByObjectId", FieldInitiatedBy, func(e *Event) string { return e.InitiatedByObjectID }},
	{"initiatedByObjectType", FieldInitiatedBy, func(e *Event) string { return e.InitiatedByObjectType }},
	{"initiatedTime", FieldInitiatedBy, func(e *Event) string { return e.InitiatedTime }},
	{"data", FieldData, nil},
}

func reservedPayloadKey(name string) bool {
	for _, k := range payloadKeys {
		if k.key == name {
			return true
		}
	}
	return name == "type"
}

// TimestampFormat is how payload timestamps are written: RFC 3339 in UTC
// with milliseconds, as Welkin does ("2026-11-26T17:11:00.123Z").
const TimestampFormat = "2006-01-02T15:04:05.000Z07:00"

// Render returns the JSON body a webhook with this config sends for e.
// Keys keep a stable order so bodies are easy to read in a delivery log.
// Strings are escaped as encoding/json escapes them; the body is appended
// into one buffer, since rendering runs once per attempt.
func (c PayloadConfig) Render(e *Event) ([]byte, error) {
	b := make([]byte, 0, 384+len(e.Data))
	standard := c.Format == FormatStandard
	ts := e.Timestamp().UTC()
	if c.Format == FormatOperations {
		// An operations event: its data is the whole of what it says.
		b = append(b, `{"type":`...)
		b = appendJSONString(b, e.Subtype)
		b = append(b, `,"timestamp":"`...)
		b = ts.AppendFormat(b, TimestampFormat)
		b = append(b, `","data":`...)
		b, err := appendJSONObject(b, e.Data)
		if err != nil {
			return nil, err
		}
		return append(b, '}'), nil
	}
	if standard {
		b = append(b, `{"type":`...)
		b = appendJSONString(b, e.Subtype)
		b = append(b, `,"timestamp":"`...)
		b = ts.AppendFormat(b, TimestampFormat)
		b = append(b, `","data":`...)
	}
	b = append(b, '{')
	first := true
	key := func(k string) {
		if !first {
			b = append(b, ',')
		}
		first = false
		b = appendJSONString(b, k)
		b = append(b, ':')
	}
	for _, k := range payloadKeys {
		if k.field != "" && !slices.Contains(c.PredefinedFields, k.field) {
			continue
		}
		switch {
		case standard && (k.key == "eventSubtype" || k.key == "timestamp"):
			// carried as "type" and the envelope's "timestamp"
		case k.key == "timestamp":
			key(k.key)
			b = append(b, '"')
			b = ts.AppendFormat(b, TimestampFormat)
			b = append(b, '"')
		case k.key == "data":
			key(k.key)
			var err error
			if b, err = appendJSONObject(b, e.Data); err != nil {
				return nil, err
			}
		default:
			key(k.key)
			b = appendJSONString(b, k.value(e))
		}
	}
	for _, f := range c.CustomFields {
		key(f.Name)
		b = appendJSONString(b, f.Value)
	}
	b = append(b, '}')
	if standard {
		b = append(b, '}')
	}
	return b, nil
}

// appendJSONObject appends data, a JSON object ("{}" when empty), compacted.
func appendJSONObject(b []byte, data json.RawMessage) ([]byte, error) {
	if len(data) == 0 {
		return append(b, "{}"...), nil
	}
	if bytes.ContainsAny(data, "<>&\u2028\u2029") {
		// encoding/json escapes these for HTML; keep its exact output.
		v, err := json.Marshal(data)
		return append(b, v...), err
	}
	buf := bytes.NewBuffer(b)
	if err := json.Compact(buf, data); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// appendJSONString appends s as a JSON string, escaped exactly as
// encoding/json escapes it by default: HTML-sensitive characters and the
// line and paragraph separators as \uXXXX, invalid UTF-8 as U+FFFD.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
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
