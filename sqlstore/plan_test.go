package sqlstore

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/heraldhooks/herald"
	"github.com/heraldhooks/herald/keyring"
)

// TestListPlansUseTheirIndexes checks, on SQLite, which index the delivery
// log's status filters are served by (EXPLAIN QUERY PLAN). deliveries_status
// is partial (migration 0011): SQLite uses it only when the query states its
// predicate, and would otherwise read the instance's whole history to find a
// page of FAILED deliveries. SENT deliveries are found among the open ones
// (deliveries_due), starting from the instance's webhooks.
func TestListPlansUseTheirIndexes(t *testing.T) {
	ring, err := keyring.Parse(keyring.Generate())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	db, err := Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "herald.db"), Config{Keys: ring})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, tc := range []struct {
		f    herald.DeliveryFilter
		want []string // in the plan, in this order
	}{
		{herald.DeliveryFilter{Status: herald.StatusPending}, []string{"INDEX deliveries_status"}},
		{herald.DeliveryFilter{Status: herald.StatusRetrying}, []string{"INDEX deliveries_status"}},
		{herald.DeliveryFilter{Status: herald.StatusFailed}, []string{"INDEX deliveries_status"}},
		{herald.DeliveryFilter{Status: herald.StatusCancelled, Cursor: encodeCursor("dlv_0354OAuV7PcyvxnaHtUnkf")}, []string{"INDEX deliveries_status"}},
		{herald.DeliveryFilter{Status: herald.StatusSent}, []string{"INDEX deliveries_instance", "SCAN w", "INDEX deliveries_due"}},
		{herald.DeliveryFilter{Status: herald.StatusDelivered}, []string{"INDEX deliveries_instance"}},
		{herald.DeliveryFilter{}, []string{"INDEX deliveries_instance"}},
		{herald.DeliveryFilter{Webhook: "wh"}, []string{"INDEX deliveries_webhook"}},
		{herald.DeliveryFilter{EventSubtype: "PATIENT_CREATED"}, []string{"INDEX deliveries_subtype"}},
		{herald.DeliveryFilter{EventID: "evt_1"}, []string{"INDEX deliveries_event"}},
	} {
		tc.f.Tenant, tc.f.Instance = "acme", "live"
		query, args, err := listQuery(tc.f, 50)
		if err != nil {
			t.Fatal(err)
		}
		rows, err := db.read.QueryContext(ctx, `EXPLAIN QUERY PLAN `+query, args...)
		if err != nil {
			t.Fatal(err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		text := strings.Join(plan, "\n")
		at := 0
		for _, w := range tc.want {
			i := strings.Index(text[at:], w)
			if i < 0 {
				t.Errorf("%+v: the plan does not use %s after position %d:\n%s", tc.f, w, at, text)
				break
			}
			at += i + len(w)
		}
		if strings.Contains(text, "TEMP B-TREE") && tc.f.Status != herald.StatusSent {
			t.Errorf("%+v: the plan sorts the rows instead of reading an index newest first:\n%s", tc.f, text)
		}
	}
}
