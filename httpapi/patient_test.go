package httpapi_test

import (
	"strings"
	"testing"
)

// A patient's erasure removes that patient's events with their deliveries
// and no one else's, answers with the counts, is for admins only, and
// leaves the patient id out of the log.
func TestPurgePatient(t *testing.T) {
	logs := &logBuffer{}
	e := mustEnv(t, withLog(logs))
	e.setup()
	const jane = "MARKER-jane-doe-1957"
	post := func(patient, subtype string) string {
		var out struct{ EventID string }
		e.must(202, req{method: "POST", path: inst + "/events", token: e.admin,
			body: map[string]string{"eventSubtype": subtype, "patientId": patient}}).json(t, &out)
		return out.EventID
	}
	janes := []string{post(jane, "PATIENT_CREATED"), post(jane, "CDT_CREATED"), post(jane, "TASK_CREATED")} // the last matches no webhook
	john := post("john-1960", "PATIENT_CREATED")
	e.must(201, req{method: "POST", path: "/v1/tenants", token: e.admin, body: map[string]string{"name": "globex"}})

	purge := inst + "/patients/" + jane + "/purge"
	for role, tok := range map[string]string{
		"producer": e.mustClient("acme", "acme-producer", "producer"),
		"viewer":   e.mustClient("acme", "acme-viewer", "viewer"),
		"designer": e.mustClient("acme", "acme-designer", "designer"),
		"other":    e.mustClient("globex", "globex-admin", "admin"),
	} {
		if ae := e.must(403, req{method: "POST", path: purge, token: tok}).apiError(t); ae.Code != "forbidden" {
			t.Errorf("%s: %+v, want forbidden", role, ae)
		}
	}
	for _, bad := range []string{"/v1/tenants/nobody/instances/sandbox", "/v1/tenants/acme/instances/nowhere"} {
		e.must(404, req{method: "POST", path: bad + "/patients/" + jane + "/purge", token: e.admin})
	}
	if e.deliveryCount() != 3 {
		t.Fatalf("the refused purges deleted deliveries: %d left, want 3", e.deliveryCount())
	}

	admin := e.mustClient("acme", "acme-admin", "admin")
	resp := e.must(200, req{method: "POST", path: purge, token: admin})
	if got := strings.TrimSpace(resp.String()); got != `{"events":3,"deliveries":2,"attempts":0}` {
		t.Errorf("purge answered %s", got)
	}
	if cc := resp.header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q, want no-store", cc)
	}
	for _, id := range janes {
		e.must(404, req{method: "GET", path: inst + "/events/" + id, token: e.admin})
	}
	e.must(200, req{method: "GET", path: inst + "/events/" + john, token: e.admin})
	if n := e.deliveryCount(); n != 1 {
		t.Errorf("%d deliveries left, want John's", n)
	}
	// Again: nothing left, no error.
	if got := strings.TrimSpace(e.must(200, req{method: "POST", path: purge, token: admin}).String()); got != `{"events":0,"deliveries":0,"attempts":0}` {
		t.Errorf("second purge answered %s", got)
	}

	recs := logs.records(t, "patient purged")
	if len(recs) != 2 || recs[0]["events"] != float64(3) || recs[0]["deliveries"] != float64(2) || recs[0]["tenant"] != "acme" ||
		recs[0]["instance"] != "sandbox" || recs[0]["client"] != "acme-admin" {
		t.Errorf("purge log records %v, want two with the ids and counts", recs)
	}
	if strings.Contains(logs.String(), "MARKER") {
		t.Errorf("the log holds the patient id:\n%s", logs.String())
	}
	if access := logs.records(t, "http request"); !strings.Contains(jsonOf(access), `/patients/{patientId}/purge`) {
		t.Errorf("the access log does not name the purge by its masked path: %s", jsonOf(access))
	}
	// The audit trail names the patient (the one record that may), who
	// erased it, and the counts.
	var page auditPage
	e.must(200, req{method: "GET", path: "/v1/tenants/acme/audit?action=patient.purge", token: e.admin}).json(t, &page)
	if len(page.Entries) != 2 || page.Entries[1].Target != "patient "+jane || page.Entries[1].Actor != "acme-admin" ||
		string(page.Entries[1].Diff) != `{"attempts":0,"deliveries":2,"events":3}` {
		t.Fatalf("purge audit entries: %+v", page.Entries)
	}
}
