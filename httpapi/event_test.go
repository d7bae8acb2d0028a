package httpapi_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestPostEvents(t *testing.T) {
	e := mustEnv(t)
	e.setup()
	producer := e.mustClient("acme", "ehr-sync", "producer")

	t.Run("single", func(t *testing.T) {
		ev := patientCreated("p-1")
		ev["occurredAt"] = "2026-11-26T17:11:00.123Z"
		ev["data"] = map[string]string{"mrn": "42"}
		ev["tenantName"] = "acme"
		resp := e.must(202, req{method: "POST", path: inst + "/events", token: producer, body: ev})
		var out struct {
			EventID    string
			Deliveries int
		}
		resp.json(t, &out)
		if !strings.HasPrefix(out.EventID, "evt_") || out.Deliveries != 1 {
			t.Fatalf("answer %s, want an evt_ id and 1 delivery", resp)
		}
		var got struct {
			EventID, EventEntity, SourceID, TenantName, InstanceName string
			OccurredAt                                               time.Time
			Data                                                     map[string]string
		}
		e.must(200, req{method: "GET", path: inst + "/events/" + out.EventID, token: producer}).json(t, &got)
		if got.EventID != out.EventID || got.EventEntity != "PATIENT" || got.SourceID != "p-1" || got.TenantName != "acme" ||
			got.InstanceName != "sandbox" || !got.OccurredAt.Equal(time.Date(2026, 11, 26, 17, 11, 0, 123e6, time.UTC)) || got.Data["mrn"] != "42" {
			t.Fatalf("stored event %+v", got)
		}
	})

	t.Run("subtype only, no matching webhook", func(t *testing.T) {
		resp := e.must(202, req{method: "POST", path: inst + "/events", token: producer, body: map[string]string{"eventSubtype": "TASK_CREATED"}})
		if m := resp.object(t); m["deliveries"] != float64(0) {
			t.Fatalf("answer %s, want 0 deliveries", resp)
		}
	})

	t.Run("array", func(t *testing.T) {
		events := []any{patientCreated("a"), map[string]string{"eventSubtype": "CDT_UPDATED"}, map[string]string{"eventSubtype": "TASK_CREATED"}}
		resp := e.must(202, req{method: "POST", path: inst + "/events", token: producer, body: events})
		var out struct {
			Events []struct {
				EventID    string
				Deliveries int
			}
		}
		resp.json(t, &out)
		if len(out.Events) != 3 || out.Events[0].Deliveries != 1 || out.Events[1].Deliveries != 1 || out.Events[2].Deliveries != 0 {
			t.Fatalf("answer %s, want 3 events with 1, 1, 0 deliveries", resp)
		}
		for _, ev := range out.Events {
			if !strings.HasPrefix(ev.EventID, "evt_") {
				t.Fatalf("answer %s: event without id", resp)
			}
		}
	})

	t.Run("idempotency", func(t *testing.T) {
		before := e.deliveryCount()
		key := map[string]string{"Idempotency-Key": "order-17"}
		first := e.must(202, req{method: "POST", path: inst + "/events", token: producer, body: patientCreated("k"), header: key})
		if first.header.Get("Idempotent-Replayed") != "" {
			t.Fatal("first request marked as replayed")
		}
		again := e.must(202, req{method: "POST", path: inst + "/events", token: producer, body: patientCreated("k"), header: key})
		if again.header.Get("Idempotent-Replayed") != "true" {
			t.Fatal("repeated key not marked Idempotent-Replayed: true")
		}
		if first.String() != again.String() {
			t.Fatalf("repeated key answered %s, first answer %s", again, first)
		}
		if got := e.deliveryCount(); got != before+1 {
			t.Fatalf("%d deliveries after two posts with one key, want %d", got, before+1)
		}
	})

	t.Run("bad element rejects the array", func(t *testing.T) {
		before := e.deliveryCount()
		events := []any{patientCreated("ok"), map[string]string{"eventSubtype": "PATIENT_EXPLODED"}}
		resp := e.must(400, req{method: "POST", path: inst + "/events", token: producer, body: events})
		if ae := resp.apiError(t); ae.Field != "events[1].eventSubtype" || !strings.Contains(ae.Message, "events[1].eventSubtype") {
			t.Fatalf("error %+v, want it to name events[1].eventSubtype", ae)
		}
		if got := e.deliveryCount(); got != before {
			t.Fatalf("%d deliveries after a rejected array, want %d", got, before)
		}
	})

	many := make([]map[string]string, 1001)
	for i := range many {
		many[i] = map[string]string{"eventSubtype": "TASK_CREATED"}
	}
	manyJSON, _ := json.Marshal(many)
	bigData := `{"eventSubtype":"PATIENT_CREATED","data":{"x":"` + strings.Repeat("a", 1<<20) + `"}}`

	for _, tc := range []struct {
		name   string
		path   string
		body   string
		header map[string]string
		status int
		field  string
		msg    string
	}{
		{"empty", inst + "/events", "", nil, 400, "", "body is empty"},
		{"empty array", inst + "/events", "[]", nil, 400, "", "array of events is empty"},
		{"scalar", inst + "/events", "42", nil, 400, "", "JSON object, or a JSON array"},
		{"no subtype", inst + "/events", `{"eventEntity":"PATIENT"}`, nil, 400, "eventSubtype", "eventSubtype is required"},
		{"entity mismatch", inst + "/events", `{"eventEntity":"CDT","eventSubtype":"PATIENT_CREATED"}`, nil, 400, "eventEntity", "does not match"},
		{"eventId given", inst + "/events", `{"eventId":"evt_x","eventSubtype":"PATIENT_CREATED"}`, nil, 400, "eventId", "assigned by Herald"},
		{"unknown field", inst + "/events", `{"eventSubtype":"PATIENT_CREATED","patient_id":"p"}`, nil, 400, "patient_id", `did you mean "patientId"?`},
		{"bad occurredAt", inst + "/events", `{"eventSubtype":"PATIENT_CREATED","occurredAt":"26/11/2026"}`, nil, 400, "occurredAt", "RFC 3339"},
		{"data not object", inst + "/events", `{"eventSubtype":"PATIENT_CREATED","data":[1]}`, nil, 400, "data", "JSON object"},
		{"wrong type in array", inst + "/events", `[{"eventSubtype":"PATIENT_CREATED"},{"eventSubtype":"PATIENT_CREATED","sourceId":7}]`, nil, 400, "events[1].sourceId", "must be a string, not a number"},
		{"non-object in array", inst + "/events", `[{"eventSubtype":"PATIENT_CREATED"},"x"]`, nil, 400, "events[1]", "must be a JSON object"},
		{"tenant mismatch", inst + "/events", `{"eventSubtype":"PATIENT_CREATED","tenantName":"globex"}`, nil, 400, "tenantName", "does not match the tenant in the path"},
		{"instance mismatch", inst + "/events", `[{"eventSubtype":"PATIENT_CREATED","instanceName":"live"}]`, nil, 400, "events[0].instanceName", "does not match the instance in the path"},
		{"key on array", inst + "/events", `[{"eventSubtype":"PATIENT_CREATED"}]`, map[string]string{"Idempotency-Key": "k"}, 400, "Idempotency-Key", "single event"},
		{"key too long", inst + "/events", `{"eventSubtype":"PATIENT_CREATED"}`, map[string]string{"Idempotency-Key": strings.Repeat("k", 256)}, 400, "Idempotency-Key", "limit is 255"},
		{"unknown instance", "/v1/tenants/acme/instances/live/events", `{"eventSubtype":"PATIENT_CREATED"}`, nil, 404, "", ""},
		{"event over 1 MiB", inst + "/events", bigData, nil, 413, "", "limit for one event is 1 MiB"},
		{"element over 1 MiB", inst + "/events", "[" + bigData + "]", nil, 413, "", "events[0] is"},
		{"over 1000 events", inst + "/events", string(manyJSON), nil, 413, "", "the limit is 1000"},
		{"over 16 MiB", inst + "/events", "[" + strings.Repeat(`{"eventSubtype":"PATIENT_CREATED"},`, 16<<20/35+1) + "{}]", nil, 413, "", "16 MiB"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := e.do(req{method: "POST", path: tc.path, token: producer, body: tc.body, header: tc.header})
			if resp.status != tc.status {
				t.Fatalf("status %d, want %d: %.300s", resp.status, tc.status, resp)
			}
			ae := resp.apiError(t)
			if ae.Field != tc.field || !strings.Contains(ae.Message, tc.msg) {
				t.Fatalf("error %+v, want field %q and message containing %q", ae, tc.field, tc.msg)
			}
		})
	}
}

func TestDeliveriesPagination(t *testing.T) {
	e := mustEnv(t)
	e.setup()
	var ids []string
	for i := range 7 {
		subtype := "PATIENT_CREATED"
		if i%2 == 1 {
			subtype = "CDT_CREATED"
		}
		resp := e.must(202, req{method: "POST", path: inst + "/events", token: e.admin, body: map[string]string{"eventSubtype": subtype, "sourceId": fmt.Sprint(i)}})
		ids = append(ids, resp.object(t)["eventId"].(string))
		e.clock.Advance(time.Millisecond) // distinct creation milliseconds make "newest first" well defined
	}

	type page struct {
		Deliveries []struct {
			ID, EventID, Status, Webhook, EventSubtype string
		}
		NextCursor *string
	}
	var seen []string
	path := inst + "/deliveries?limit=3"
	for pages := 0; ; pages++ {
		if pages > 3 {
			t.Fatal("more pages than 7 deliveries in pages of 3 need")
		}
		var p page
		e.must(200, req{method: "GET", path: path, token: e.admin}).json(t, &p)
		for _, d := range p.Deliveries {
			seen = append(seen, d.EventID)
		}
		if p.NextCursor == nil || *p.NextCursor == "" {
			if len(p.Deliveries) != 1 {
				t.Fatalf("last page has %d deliveries, want 1", len(p.Deliveries))
			}
			break
		}
		if len(p.Deliveries) != 3 {
			t.Fatalf("page %d has %d deliveries, want 3", pages, len(p.Deliveries))
		}
		path = inst + "/deliveries?limit=3&cursor=" + *p.NextCursor
	}
	if len(seen) != 7 {
		t.Fatalf("saw %d deliveries over all pages, want 7: %v", len(seen), seen)
	}
	for i, id := range seen { // newest first
		if id != ids[6-i] {
			t.Fatalf("deliveries in order %v, want newest first %v", seen, ids)
		}
	}

	for _, tc := range []struct {
		query string
		n     int
	}{
		{"status=pending", 7},
		{"status=DELIVERED", 0},
		{"webhook=wh-patient-sync", 7},
		{"eventSubtype=CDT_CREATED", 3},
		{"eventEntity=PATIENT", 4},
		{"eventId=" + ids[2], 1},
		{"from=2000-01-01T00:00:00Z&to=2100-01-01T00:00:00Z", 7},
		{"from=2100-01-01T00:00:00Z", 0},
	} {
		var p page
		e.must(200, req{method: "GET", path: inst + "/deliveries?" + tc.query, token: e.admin}).json(t, &p)
		if len(p.Deliveries) != tc.n {
			t.Errorf("?%s: %d deliveries, want %d", tc.query, len(p.Deliveries), tc.n)
		}
	}

	for _, tc := range []struct{ query, field, msg string }{
		{"status=LOST", "status", "not a delivery status"},
		{"limit=0", "limit", "from 1 to 500"},
		{"limit=501", "limit", "from 1 to 500"},
		{"limit=ten", "limit", "from 1 to 500"},
		{"from=yesterday", "from", "RFC 3339"},
		{"to=2026-13-01", "to", "RFC 3339"},
		{"from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z", "to", "must be after from"},
		{"webhook=Not_A_Name", "webhook", "not a valid name"},
		{"eventSubtype=PATIENT_EXPLODED", "eventSubtype", "not in the event catalog"},
		{"eventEntity=SPACESHIP", "eventEntity", "not in the event catalog"},
		{"stauts=PENDING", "stauts", "Unknown query parameter"},
		{"status=PENDING&status=FAILED", "status", "once"},
		{"cursor=garbage", "", ""},
	} {
		resp := e.do(req{method: "GET", path: inst + "/deliveries?" + tc.query, token: e.admin})
		if resp.status != 400 {
			t.Errorf("?%s: status %d, want 400: %s", tc.query, resp.status, resp)
			continue
		}
		if ae := resp.apiError(t); ae.Code != "invalid" || (tc.field != "" && ae.Field != tc.field) || !strings.Contains(ae.Message, tc.msg) {
			t.Errorf("?%s: error %+v, want field %q and message containing %q", tc.query, ae, tc.field, tc.msg)
		}
	}

	// One delivery, with its attempts (none yet) as an empty list.
	var p page
	e.must(200, req{method: "GET", path: inst + "/deliveries?limit=1", token: e.admin}).json(t, &p)
	resp := e.must(200, req{method: "GET", path: inst + "/deliveries/" + p.Deliveries[0].ID, token: e.admin})
	m := resp.object(t)
	if m["id"] != p.Deliveries[0].ID || m["webhook"] != "wh-patient-sync" || m["status"] != "PENDING" {
		t.Fatalf("delivery %s", resp)
	}
	if a, ok := m["attempts"].([]any); !ok || len(a) != 0 {
		t.Fatalf("delivery %s: want \"attempts\":[]", resp)
	}
}
