package herald_test

import (
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
	for _, tc := range []struct {
		e     herald.Event
		field string
	}{
		{herald.Event{}, "eventSubtype"},
		{herald.Event{Subtype: "PATIENT_EXPLODED"}, "eventSubtype"},
		{herald.Event{Entity: "CDT", Subtype: "PATIENT_CREATED"}, "eventEntity"},
		{herald.Event{Subtype: "PATIENT_CREATED", Data: []byte(`[1]`)}, "data"},
		{herald.Event{Subtype: "PATIENT_CREATED"}, ""},
		{herald.Event{Subtype: "USER_ACCESS_UPDATED"}, ""},
	} {
		err := tc.e.Validate("")
		var field string
		if he, ok := err.(*herald.Error); ok {
			field = he.Field
		}
		if field != tc.field {
			t.Errorf("Validate(%+v) = %v, want field %q", tc.e, err, tc.field)
		}
	}
}
