package herald_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/heraldhooks/herald"
)

func TestNewIDSortsByTime(t *testing.T) {
	t0 := time.Date(2026, 11, 26, 17, 0, 0, 0, time.UTC)
	prev := ""
	for i := range 1000 {
		id := herald.NewID("evt", t0.Add(time.Duration(i)*time.Millisecond))
		if !strings.HasPrefix(id, "evt_") || len(id) != 4+22 {
			t.Fatalf("id %q: want evt_ and 22 characters", id)
		}
		if id <= prev {
			t.Fatalf("id %q made later sorts before %q", id, prev)
		}
		prev = id
	}
}

func TestValidateName(t *testing.T) {
	for name, ok := range map[string]bool{
		"acme": true, "wh-patient-sync": true, "0a": true, strings.Repeat("a", 63): true,
		"": false, "-acme": false, "Acme": false, "ac me": false, "ac_me": false, strings.Repeat("a", 64): false,
	} {
		err := herald.ValidateName("name", name)
		if (err == nil) != ok {
			t.Errorf("ValidateName(%q) = %v, want ok=%v", name, err, ok)
		}
		if err != nil && herald.ErrorCode(err) != herald.EINVALID {
			t.Errorf("ValidateName(%q) code = %s", name, herald.ErrorCode(err))
		}
	}
}

func TestRenderWelkinAndStandard(t *testing.T) {
	e := &herald.Event{ID: "evt_1", TenantName: "acme", InstanceName: "sandbox", Entity: "PATIENT",
		Subtype: "PATIENT_CREATED", SourceID: "p1", PatientID: "p1", Data: []byte(`{"mrn":"42"}`),
		CreatedAt: time.Date(2026, 11, 26, 17, 11, 0, 123e6, time.UTC)}
	cfg := herald.PayloadConfig{Format: herald.FormatWelkin, PredefinedFields: herald.DefaultPredefinedFields,
		CustomFields: []herald.NameValue{{Name: "env", Value: "test"}}}
	got, err := cfg.Render(e)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"eventId":"evt_1","timestamp":"2026-11-26T17:11:00.123Z","eventEntity":"PATIENT","eventSubtype":"PATIENT_CREATED","sourceId":"p1","sourceName":"","patientId":"p1","tenantName":"acme","instanceName":"sandbox","url":"","env":"test"}`
	if string(got) != want {
		t.Errorf("welkin body\n got %s\nwant %s", got, want)
	}
	cfg.Format = herald.FormatStandard
	cfg.PredefinedFields = []string{herald.FieldPatientID, herald.FieldData}
	cfg.CustomFields = nil
	got, _ = cfg.Render(e)
	want = `{"type":"PATIENT_CREATED","timestamp":"2026-11-26T17:11:00.123Z","data":{"eventId":"evt_1","patientId":"p1","data":{"mrn":"42"}}}`
	if string(got) != want {
		t.Errorf("standard body\n got %s\nwant %s", got, want)
	}
}

func TestEventValidate(t *testing.T) {
	long := strings.Repeat("x", 2049)
	for _, tc := range []struct {
		name   string
		e      herald.Event
		prefix string
		field  string // "" for a valid event: no error at all
	}{
		{"nothing", herald.Event{}, "", "eventSubtype"},
		{"entity without subtype", herald.Event{Entity: "PATIENT"}, "", "eventSubtype"},
		{"unknown subtype", herald.Event{Subtype: "PATIENT_EXPLODED"}, "", "eventSubtype"},
		{"entity of another subtype", herald.Event{Entity: "CDT", Subtype: "PATIENT_CREATED"}, "", "eventEntity"},
		{"data an array", herald.Event{Subtype: "PATIENT_CREATED", Data: []byte(`[1]`)}, "", "data"},
		{"data blank", herald.Event{Subtype: "PATIENT_CREATED", Data: []byte(`  `)}, "", "data"},
		{"field over its limit", herald.Event{Subtype: "PATIENT_CREATED", PatientID: long}, "", "patientId"},
		{"last field over its limit", herald.Event{Subtype: "PATIENT_CREATED", InitiatedTime: long}, "", "initiatedTime"},
		{"idempotency key too long", herald.Event{Subtype: "PATIENT_CREATED", IdempotencyKey: strings.Repeat("k", 256)}, "", "Idempotency-Key"},
		{"prefixed for an array", herald.Event{Subtype: "PATIENT_CREATED", Data: []byte(`"s"`)}, "events[3].", "events[3].data"},
		{"valid", herald.Event{Subtype: "PATIENT_CREATED"}, "", ""},
		{"valid with its entity", herald.Event{Entity: "PATIENT", Subtype: "PATIENT_CREATED"}, "", ""},
		{"valid other entity", herald.Event{Subtype: "USER_ACCESS_UPDATED"}, "", ""},
		{"valid data null", herald.Event{Subtype: "PATIENT_CREATED", Data: []byte(`null`)}, "", ""},
		{"valid data object", herald.Event{Subtype: "PATIENT_CREATED", Data: []byte(` {"a":1}`)}, "", ""},
		{"valid at the limits", herald.Event{Subtype: "PATIENT_CREATED", PatientID: long[:2048], IdempotencyKey: strings.Repeat("k", 255)}, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.e.Validate(tc.prefix)
			if tc.field == "" {
				if err != nil {
					t.Fatalf("Validate = %v, want no error", err)
				}
				return
			}
			var he *herald.Error
			if !errors.As(err, &he) || he.Code != herald.EINVALID || he.Field != tc.field {
				t.Fatalf("Validate = %#v, want EINVALID naming field %q", err, tc.field)
			}
			// The message names the field too, so a person can act on it.
			if name := strings.TrimPrefix(tc.field, tc.prefix); !strings.Contains(he.Message, name) {
				t.Errorf("message %q does not name %s", he.Message, name)
			}
		})
	}
	// Validate fills in the entity of a known subtype and drops a null data.
	e := herald.Event{Subtype: "PATIENT_CREATED", Data: []byte(`null`)}
	if err := e.Validate(""); err != nil || e.Entity != "PATIENT" || e.Data != nil {
		t.Errorf("after Validate: entity %q, data %q, err %v; want PATIENT, nil, nil", e.Entity, e.Data, err)
	}
}

// TestFormatID: the encoding NewID and the store's own IDs share, base62
// in ASCII order, 22 digits, so that the text sorts as the number.
func TestFormatID(t *testing.T) {
	for _, c := range []struct {
		hi, lo uint64
		want   string
	}{
		{0, 0, strings.Repeat("0", 22)},
		{0, 61, strings.Repeat("0", 21) + "z"},
		{0, 62, strings.Repeat("0", 20) + "10"},
		{1, 0, "00000000000LygHa16AHYG"}, // 2^64
	} {
		if got := herald.FormatID("x", c.hi, c.lo); got != "x_"+c.want {
			t.Errorf("FormatID(%d, %d) = %q, want x_%s", c.hi, c.lo, got, c.want)
		}
	}
	a, b := herald.FormatID("x", 0, 1<<63), herald.FormatID("x", 1, 0)
	if !(a < b) {
		t.Errorf("%q sorts after %q", a, b)
	}
}
