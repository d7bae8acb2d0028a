package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/heraldhooks/herald"
)

// wantRefusal fails unless err is a *herald.Error with one of codes (each a
// 4xx), a message, and, when it names a field, one that starts with one of
// prefixes.
func wantRefusal(t *testing.T, err error, codes []string, prefixes ...string) *herald.Error {
	t.Helper()
	var he *herald.Error
	if !errors.As(err, &he) || he.Message == "" {
		t.Fatalf("refused with %#v, want a herald error with a message", err)
	}
	if status := statusOf[he.Code]; status < 400 || status > 499 {
		t.Fatalf("refusal %q is a %d", he.Message, status)
	}
	found := false
	for _, c := range codes {
		found = found || he.Code == c
	}
	if !found {
		t.Fatalf("refusal %q has code %s, want one of %q", he.Message, he.Code, codes)
	}
	if he.Field == "" || len(prefixes) == 0 {
		return he
	}
	for _, p := range prefixes {
		if strings.HasPrefix(he.Field, p) {
			return he
		}
	}
	t.Fatalf("refusal %q names field %q, want one starting with one of %q", he.Message, he.Field, prefixes)
	return he
}

// encodeEvent writes e back as a producer would post it.
func encodeEvent(t *testing.T, e *herald.Event) []byte {
	t.Helper()
	req := eventRequest{TenantName: e.TenantName, InstanceName: e.InstanceName, EventEntity: e.Entity, EventSubtype: e.Subtype,
		SourceID: e.SourceID, SourceName: e.SourceName, PatientID: e.PatientID, URL: e.URL, InitiatedBy: e.InitiatedBy,
		InitiatedByName: e.InitiatedByName, InitiatedByObjectID: e.InitiatedByObjectID, InitiatedByObjectType: e.InitiatedByObjectType,
		InitiatedTime: e.InitiatedTime, Data: e.Data}
	if !e.OccurredAt.IsZero() {
		req.OccurredAt = e.OccurredAt.Format(time.RFC3339Nano)
	}
	b, err := json.Marshal(req)
	if err != nil {
		t.Fatalf("encode %+v: %v", e, err)
	}
	return b
}

// sameEvent fails unless got and want are the same event, data compared as
// JSON (encoding may change its white space).
func sameEvent(t *testing.T, got, want *herald.Event, what string) {
	t.Helper()
	g, w := *got, *want
	var gd, wd bytes.Buffer
	if g.Data != nil && json.Compact(&gd, g.Data) != nil || w.Data != nil && json.Compact(&wd, w.Data) != nil {
		t.Fatalf("%s: data is not JSON: %s, %s", what, g.Data, w.Data)
	}
	if !bytes.Equal(gd.Bytes(), wd.Bytes()) || !g.OccurredAt.Equal(w.OccurredAt) {
		t.Fatalf("%s:\n got %+v\nwant %+v", what, g, w)
	}
	g.Data, w.Data, g.OccurredAt, w.OccurredAt = nil, nil, time.Time{}, time.Time{}
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("%s:\n got %+v\nwant %+v", what, g, w)
	}
}

// FuzzEvents: the body of POST .../events, one event or an array of them.
// A refused body is a 400 or 413 whose field, if any, is the event's
// (events[i]. in an array) or the Idempotency-Key header. An accepted
// event is valid, of the path's tenant and instance, its entity the one
// of its subtype, its data an object; written back as a producer would
// send it, it reads the same, and alone in an array it reads the same too.
func FuzzEvents(f *testing.F) {
	for _, s := range []string{
		`{"eventSubtype":"PATIENT_CREATED","sourceId":"49ec1a","patientId":"49ec1a","sourceName":"Jane Doe"}`,
		`{"eventEntity":"CDT","eventSubtype":"CDT_UPDATED","data":{"mrn":"42","n":[1,2]},"occurredAt":"2026-11-26T17:11:00.123Z"}`,
		`[{"eventSubtype":"PATIENT_CREATED"},{"eventSubtype":"ASSESSMENT_COMPLETED","initiatedBy":"u1","initiatedTime":"x"}]`,
		`{"eventSubtype":"PATIENT_CREATED","tenantName":"acme","instanceName":"sandbox","url":"https://example.com/p/1"}`,
		`{"eventSubtype":"PATIENT_CREATED","tenantName":"other"}`, `{"eventSubtype":"PATIENT_CREATED","eventEntity":"CDT"}`,
		`{"eventId":"evt_1","eventSubtype":"PATIENT_CREATED"}`, `{"timestamp":"2026-11-26T17:11:00Z"}`, `{"eventSubtyp":"PATIENT_CREATED"}`,
		`{"eventSubtype":"PATIENT_CREATED","data":[1]}`, `{"eventSubtype":"PATIENT_CREATED","data":null}`, `{"eventSubtype":"NOPE"}`,
		`{"eventSubtype":"PATIENT_CREATED","occurredAt":"yesterday"}`, `{"eventSubtype":"PATIENT_CREATED","occurredAt":"0000-01-01T00:30:00+01:00"}`,
		`{"eventSubtype":"PATIENT_CREATED","sourceId":7}`, `{"eventSubtype":"PATIENT_CREATED"} {}`, `[]`, `[1]`, `[{}, 2]`, `"x"`, `{`, `[{"eventSubtype":"PATIENT_CREATED"}`,
		`{"eventSubtype":"PATIENT_CREATED","sourceName":"caf\u00e9 <b>&amp;</b> \ud83d\ude00 \u2028"}`, `{"eventEntity":"PATIENT"}`, `{}`,
	} {
		f.Add([]byte(s), "")
	}
	f.Add([]byte(`{"eventSubtype":"PATIENT_CREATED"}`), "order-42")
	f.Add([]byte(`[{"eventSubtype":"PATIENT_CREATED"}]`), "order-42")
	f.Add([]byte(`{"eventSubtype":"PATIENT_CREATED"}`), strings.Repeat("k", 256))
	f.Fuzz(func(t *testing.T, body []byte, key string) {
		body = bytes.TrimSpace(body)
		if len(body) == 0 {
			return // createEvents answers an empty body before parsing
		}
		events, err := parseEvents(body, "acme", "sandbox", key)
		if err != nil {
			prefix := ""
			if body[0] == '[' {
				prefix = "events["
			}
			wantRefusal(t, err, []string{herald.EINVALID, herald.ETOOLARGE}, prefix, "Idempotency-Key")
			return
		}
		if len(events) == 0 || (body[0] == '{') != (len(events) == 1 && body[0] == '{') {
			t.Fatalf("parseEvents(%q) = %d events", body, len(events))
		}
		for i, e := range events {
			entity, ok := herald.Catalog.EntityOf(e.Subtype)
			if !ok || e.Entity != entity || e.TenantName != "acme" || e.InstanceName != "sandbox" || e.ID != "" ||
				(e.OccurredAt.Location() != time.UTC && !e.OccurredAt.IsZero()) {
				t.Fatalf("parseEvents(%q) accepted event %d: %+v", body, i, e)
			}
			if e.Data != nil && !json.Valid(e.Data) || len(e.Data) > 0 && bytes.TrimSpace(e.Data)[0] != '{' {
				t.Fatalf("parseEvents(%q) accepted data %s", body, e.Data)
			}
			if body[0] == '{' && e.IdempotencyKey != key || body[0] == '[' && e.IdempotencyKey != "" {
				t.Fatalf("parseEvents(%q, key %q): event has key %q", body, key, e.IdempotencyKey)
			}
			again := *e
			if err := again.Validate(""); err != nil || !reflect.DeepEqual(&again, e) {
				t.Fatalf("accepted event %+v does not validate again unchanged: %v", e, err)
			}

			back, err := parseEvent(encodeEvent(t, e), "", "acme", "sandbox", e.IdempotencyKey)
			if err != nil {
				t.Fatalf("event %d of %q, written back as %s, is refused: %v", i, body, encodeEvent(t, e), err)
			}
			sameEvent(t, back, e, "written back and read again")
		}
		if body[0] == '{' && len(body) < herald.MaxEventBytes {
			arr, err := parseEvents(append(append([]byte("["), body...), ']'), "acme", "sandbox", "")
			if err != nil {
				t.Fatalf("%s is accepted alone and refused in an array: %v", body, err)
			}
			want := *events[0]
			want.IdempotencyKey = ""
			sameEvent(t, arr[0], &want, "alone in an array")
		}
	})
}
