package main

import (
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// TestAuditVerify: fifty mixed actions make a chain that `herald audit
// verify` accepts beside the running node; an entry's diff edited in the
// database, then an entry deleted, each make it fail naming that entry.
func TestAuditVerify(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "herald.db")
	p := startHerald(t, nil, "--database", "sqlite:"+db, "--allow-private-destinations")
	c := p.client(t)
	recv := newReceiver(t)
	inst, _ := setupWebhook(t, c, recv.URL+"/hook")
	hook := inst + "/webhooks/wh-patient-sync"
	for i := 0; len(auditEntries(t, c)) < 50; i++ {
		switch i % 5 {
		case 0:
			mustDo(t, c, "PATCH", hook, map[string]any{"url": fmt.Sprintf("%s?n=%d", recv.URL+"/hook", i)}, nil)
		case 1:
			mustDo(t, c, "POST", hook+"/deactivate", nil, nil)
		case 2:
			mustDo(t, c, "POST", hook+"/activate", nil, nil)
		case 3:
			mustDo(t, c, "GET", hook+"/secret", nil, nil)
		case 4:
			mustDo(t, c, "PATCH", "/v1/tenants/acme/designer/webhooks/wh-patient-sync", map[string]any{"title": fmt.Sprintf("Patient sync %d", i)}, nil)
		}
	}
	verify := func() (string, error) {
		return runHeraldResult(t, nil, "audit", "verify", "--database", "sqlite:"+db)
	}
	out, err := verify()
	if err != nil || !strings.HasPrefix(out, "ok: ") {
		t.Fatalf("audit verify on an intact chain: %v\n%s", err, out)
	}

	raw, err := sql.Open("sqlite", db+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	var diff string
	if err := raw.QueryRow(`SELECT diff FROM audit_log WHERE seq = 17`).Scan(&diff); err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec(`UPDATE audit_log SET diff = ? WHERE seq = 17`, strings.Replace(diff+" ", " ", "  ", 1)); err != nil {
		t.Fatal(err)
	}
	out, err = verify()
	if err == nil || !strings.Contains(out, "FAILED: audit entry 17 was changed") {
		t.Fatalf("audit verify after entry 17's diff was edited: %v\n%s", err, out)
	}
	if _, err := raw.Exec(`UPDATE audit_log SET diff = ? WHERE seq = 17`, diff); err != nil {
		t.Fatal(err)
	}
	if out, err = verify(); err != nil {
		t.Fatalf("audit verify after the diff was restored: %v\n%s", err, out)
	}
	if _, err := raw.Exec(`DELETE FROM audit_log WHERE seq = 30`); err != nil {
		t.Fatal(err)
	}
	out, err = verify()
	if err == nil || !strings.Contains(out, "FAILED: audit entry 30 was removed") {
		t.Fatalf("audit verify after entry 30 was deleted: %v\n%s", err, out)
	}
}

// auditEntries returns the platform audit trail's newest page.
func auditEntries(t *testing.T, c *apiClient) []map[string]any {
	t.Helper()
	var page struct{ Entries []map[string]any }
	mustDo(t, c, "GET", "/v1/audit?limit=1000", nil, &page)
	return page.Entries
}
