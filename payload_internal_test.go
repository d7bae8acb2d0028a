package herald

import (
	"encoding/json"
	"slices"
	"testing"
)

// FuzzAppendJSONString: the payload encoder escapes every string exactly
// as encoding/json does, so bodies read the same as before it and any JSON
// parser reads back the string that went in.
func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{"", "plain", `quote " and \ backslash`, "<script>alert(1)</script> & co",
		"tab\tnew\nline\rret\x00nul\x1f", "line\u2028para\u2029", "caf\u00e9 \U0001F600", "bad \xff\xfe utf8", "\x7f"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendJSONString(nil, s); string(got) != string(want) {
			t.Errorf("appendJSONString(%q) = %s, want %s", s, got, want)
		}
	})
}

// TestRenderMatchesEncodingJSON: data with characters encoding/json
// escapes, and custom field values, render as encoding/json would.
func TestRenderMatchesEncodingJSON(t *testing.T) {
	e := &Event{ID: "evt_1", Subtype: "PATIENT_CREATED", SourceName: `<b>"Jane"</b>`,
		Data: json.RawMessage(`{ "note" : "a < b & c",  "n": [1, 2] }`)}
	cfg := PayloadConfig{Format: FormatWelkin, PredefinedFields: []string{FieldSourceName, FieldData},
		CustomFields: []NameValue{{Name: "k\u2028", Value: "v\x01"}}}
	got, err := cfg.Render(e)
	if err != nil {
		t.Fatal(err)
	}
	var back map[string]any
	if err := json.Unmarshal(got, &back); err != nil {
		t.Fatalf("rendered body is not JSON: %v\n%s", err, got)
	}
	wantData, _ := json.Marshal(e.Data)
	wantName, _ := json.Marshal(e.SourceName)
	want := `{"eventId":"evt_1","timestamp":"0001-01-01T00:00:00.000Z","sourceName":` + string(wantName) +
		`,"data":` + string(wantData) + `,"k\u2028":"v\u0001"}`
	if string(got) != want {
		t.Errorf("body\n got %s\nwant %s", got, want)
	}
	if _, err := (PayloadConfig{PredefinedFields: []string{FieldData}}).Render(&Event{Data: json.RawMessage(`{"a":`)}); err == nil {
		t.Error("rendering broken data succeeded")
	}
}

// BenchmarkRender renders a Welkin body with every predefined field.
func BenchmarkRender(b *testing.B) {
	e := &Event{ID: "evt_2ZyQn4", TenantName: "acme", InstanceName: "live", Entity: "PATIENT", Subtype: "PATIENT_CREATED",
		SourceID: "49ec1a", PatientID: "49ec1a", SourceName: "Jane Doe", URL: "https://example.com/patients/49ec1a",
		Data: json.RawMessage(`{"mrn":"42","note":"a short note"}`)}
	cfg := PayloadConfig{Format: FormatWelkin, PredefinedFields: slices.Concat(DefaultPredefinedFields, []string{FieldInitiatedBy, FieldData})}
	for b.Loop() {
		if _, err := cfg.Render(e); err != nil {
			b.Fatal(err)
		}
	}
}
