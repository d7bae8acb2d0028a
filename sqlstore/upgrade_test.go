package sqlstore_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/heraldhooks/herald"
	"github.com/heraldhooks/herald/heraldtest/storekit"
	"github.com/heraldhooks/herald/keyring"
	"github.com/heraldhooks/herald/sqlstore"
)

// TestUpgradeFromVersion3KeepsData builds a database as version 0003 left
// it (migrations 0001 to 0003, recorded in schema_migrations as Open
// records them), holding a tenant, an instance, two webhooks with their
// URL, headers, query parameters and signing secret in the clear, events,
// deliveries and attempts, and opens it with the current store. Every
// later migration runs over that data: 0004 backfills the per-minute
// attempt counts the stats and the timeline read, 0005 drops the stored
// token key, and Open seals the plain secrets. Everything reads back as it
// was written.
func TestUpgradeFromVersion3KeepsData(t *testing.T) {
	for _, dialect := range []string{"sqlite", "postgres"} {
		t.Run(dialect, func(t *testing.T) {
			dsn, old := oldSchema(t, dialect, 3)
			ctx := context.Background()
			exec := func(stmt string) {
				t.Helper()
				if _, err := old.ExecContext(ctx, stmt); err != nil {
					t.Fatalf("%v\n%s", err, stmt)
				}
			}

			// The data, as version 3 wrote it: times in unix milliseconds,
			// secrets in the clear.
			base := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC) // a minute's start
			at := func(d time.Duration) int64 { return base.Add(d).UnixMilli() }
			const (
				url     = "https://receiver.example/hook/path-token-1"
				secret  = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
				headers = `[{"name":"X-Api-Key","value":"key-123"}]`
				params  = `[{"name":"token","value":"abc"}]`
				payload = `{"format":"welkin","predefinedFields":["EVENT_ENTITY","EVENT_SUBTYPE","SOURCE_ID"],"customFields":[{"name":"team","value":"care"}]}`
			)
			for _, stmt := range []string{
				`INSERT INTO settings (name, value) VALUES ('token_key', 'an-old-token-signing-key')`,
				`INSERT INTO tenants (name, created_at) VALUES ('acme', 1000)`,
				`INSERT INTO instances (tenant, name, created_at) VALUES ('acme', 'sandbox', 1000)`,
				fmt.Sprintf(`INSERT INTO webhooks (id, tenant, instance, name, title, triggers, version, url, headers, query_parameters,
					payload, timeout_seconds, active, deactivated_reason, created_at, updated_at)
					VALUES ('wh_sync', 'acme', 'sandbox', 'wh-patient-sync', 'Patient sync', '[{"eventSubtype":"PATIENT_CREATED"}]', 1,
					'%s', '%s', '%s', '%s', 20, 1, '', 2000, 2000)`, url, headers, params, payload),
				`INSERT INTO webhooks (id, tenant, instance, name, title, triggers, version, url, headers, query_parameters,
					payload, timeout_seconds, active, deactivated_reason, created_at, updated_at)
					VALUES ('wh_audit', 'acme', 'sandbox', 'wh-audit', 'Audit', '[{"eventEntity":"PATIENT"}]', 1,
					'https://audit.example/in', '[]', '[]', '{"format":"standard","predefinedFields":["EVENT_SUBTYPE"],"customFields":[]}', 30, 1, '', 2000, 2000)`,
				`INSERT INTO webhook_secrets (webhook_id, secret, created_at) VALUES ('wh_sync', '` + secret + `', 2000)`,
				`INSERT INTO webhook_secrets (webhook_id, secret, created_at) VALUES ('wh_audit', 'whsec_b2xkYXVkaXRzZWNyZXRvbGRhdWRpdHNlY3I=', 2000)`,
				fmt.Sprintf(`INSERT INTO events (id, tenant, instance, entity, subtype, source_id, source_name, patient_id, url,
					initiated_by, initiated_by_name, initiated_by_object_id, initiated_by_object_type, initiated_time, data, occurred_at, created_at, deliveries)
					VALUES ('evt_1', 'acme', 'sandbox', 'PATIENT', 'PATIENT_CREATED', 'p-1', 'Jane Doe', 'p-1', 'https://care.example/p-1',
					'', '', '', '', '', '{"mrn":"42"}', NULL, %d, 2)`, at(0)),
				fmt.Sprintf(`INSERT INTO events (id, tenant, instance, entity, subtype, source_id, source_name, patient_id, url,
					initiated_by, initiated_by_name, initiated_by_object_id, initiated_by_object_type, initiated_time, data, occurred_at, created_at, deliveries)
					VALUES ('evt_2', 'acme', 'sandbox', 'PATIENT', 'PATIENT_CREATED', 'p-2', '', 'p-2', '', '', '', '', '', '', NULL, NULL, %d, 1)`, at(time.Second)),
				// evt_1 to wh-patient-sync: 503 in the first minute, 200 in the second.
				fmt.Sprintf(`INSERT INTO deliveries (id, event_id, tenant, instance, webhook_id, webhook_name, event_entity, event_subtype,
					status, attempt_count, due_at, first_attempt_at, last_status_code, created_at, updated_at)
					VALUES ('dlv_1', 'evt_1', 'acme', 'sandbox', 'wh_sync', 'wh-patient-sync', 'PATIENT', 'PATIENT_CREATED',
					'DELIVERED', 2, NULL, %d, 200, %d, %d)`, at(10*time.Second), at(0), at(70*time.Second)),
				fmt.Sprintf(`INSERT INTO attempts VALUES ('dlv_1', 1, %d, 120, 503, 'busy', 'receiver answered 503')`, at(10*time.Second)),
				fmt.Sprintf(`INSERT INTO attempts VALUES ('dlv_1', 2, %d, 80, 200, 'ok', '')`, at(70*time.Second)),
				// evt_2 to wh-patient-sync: unreachable, then 500, both in the first minute; retrying.
				fmt.Sprintf(`INSERT INTO deliveries (id, event_id, tenant, instance, webhook_id, webhook_name, event_entity, event_subtype,
					status, attempt_count, due_at, wait_reason, first_attempt_at, last_status_code, created_at, updated_at)
					VALUES ('dlv_2', 'evt_2', 'acme', 'sandbox', 'wh_sync', 'wh-patient-sync', 'PATIENT', 'PATIENT_CREATED',
					'RETRYING', 2, %d, 'receiver answered 500', %d, 500, %d, %d)`, at(time.Hour), at(20*time.Second), at(time.Second), at(30*time.Second)),
				fmt.Sprintf(`INSERT INTO attempts VALUES ('dlv_2', 1, %d, 2000, 0, '', 'connection refused')`, at(20*time.Second)),
				fmt.Sprintf(`INSERT INTO attempts VALUES ('dlv_2', 2, %d, 90, 500, 'oops', 'receiver answered 500')`, at(30*time.Second)),
				// evt_1 to wh-audit: delivered in the first minute.
				fmt.Sprintf(`INSERT INTO deliveries (id, event_id, tenant, instance, webhook_id, webhook_name, event_entity, event_subtype,
					status, attempt_count, due_at, first_attempt_at, last_status_code, created_at, updated_at)
					VALUES ('dlv_3', 'evt_1', 'acme', 'sandbox', 'wh_audit', 'wh-audit', 'PATIENT', 'PATIENT_CREATED',
					'DELIVERED', 1, NULL, %d, 204, %d, %d)`, at(15*time.Second), at(0), at(15*time.Second)),
				fmt.Sprintf(`INSERT INTO attempts VALUES ('dlv_3', 1, %d, 40, 204, '', '')`, at(15*time.Second)),
			} {
				exec(stmt)
			}
			old.Close()

			db, err := sqlstore.Open(ctx, dsn, sqlstore.Config{Keys: storekit.Keys})
			if err != nil {
				t.Fatalf("open the version 3 database: %v", err)
			}
			defer db.Close()

			// 0004's backfill: the attempts counted per webhook and minute.
			for _, tc := range []struct {
				webhook string
				want    []herald.TimelineBucket // delivered, rejected, unreachable per minute
			}{
				{"wh-patient-sync", []herald.TimelineBucket{{Rejected: 2, Unreachable: 1}, {Delivered: 1}, {}}},
				{"wh-audit", []herald.TimelineBucket{{Delivered: 1}, {}, {}}},
			} {
				got, err := db.DeliveryTimeline(ctx, "acme", "sandbox", tc.webhook, base, base.Add(3*time.Minute), time.Minute)
				if err != nil {
					t.Fatal(err)
				}
				if len(got) != len(tc.want) {
					t.Fatalf("%s: %d buckets, want %d", tc.webhook, len(got), len(tc.want))
				}
				for i := range got {
					w := tc.want[i]
					if g := got[i]; g.Delivered != w.Delivered || g.Rejected != w.Rejected || g.Unreachable != w.Unreachable {
						t.Errorf("%s minute %d: delivered/rejected/unreachable %d/%d/%d, want %d/%d/%d", tc.webhook, i,
							g.Delivered, g.Rejected, g.Unreachable, w.Delivered, w.Rejected, w.Unreachable)
					}
				}
			}
			stats, err := db.WebhookStats(ctx, "acme", "sandbox", base)
			if err != nil {
				t.Fatal(err)
			}
			gotStats := map[string][2]int{}
			for _, s := range stats {
				gotStats[s.Webhook] = [2]int{s.Attempts, s.Succeeded}
			}
			if want := map[string][2]int{"wh-audit": {1, 1}, "wh-patient-sync": {4, 1}}; fmt.Sprint(gotStats) != fmt.Sprint(want) {
				t.Errorf("webhook stats (attempts, succeeded) = %v, want %v", gotStats, want)
			}

			// The webhook, its secret, the events and the deliveries read back.
			w, err := db.GetWebhook(ctx, "acme", "sandbox", "wh-patient-sync")
			if err != nil {
				t.Fatal(err)
			}
			if w.URL != url || len(w.Headers) != 1 || w.Headers[0].Name != "X-Api-Key" || w.Headers[0].Value != "key-123" ||
				len(w.QueryParameters) != 1 || w.QueryParameters[0].Value != "abc" || w.TimeoutSeconds != 20 || !w.Active ||
				w.Payload.Format != "welkin" || len(w.Payload.PredefinedFields) != 3 || len(w.Payload.CustomFields) != 1 ||
				len(w.Triggers) != 1 || w.Triggers[0].EventSubtype != "PATIENT_CREATED" {
				t.Errorf("webhook after the upgrade: %+v", w)
			}
			secrets, err := db.WebhookSecrets(ctx, "acme", "sandbox", "wh-patient-sync")
			if err != nil {
				t.Fatal(err)
			}
			if len(secrets) != 1 || secrets[0].Secret != secret {
				t.Errorf("signing secrets after the upgrade: %d, want the one stored before", len(secrets))
			}
			ev, err := db.GetEvent(ctx, "acme", "sandbox", "evt_1")
			if err != nil {
				t.Fatal(err)
			}
			if ev.Subtype != "PATIENT_CREATED" || ev.SourceName != "Jane Doe" || ev.PatientID != "p-1" || string(ev.Data) != `{"mrn":"42"}` {
				t.Errorf("event after the upgrade: %+v", ev)
			}
			for _, tc := range []struct {
				id, status string
				codes      []int
			}{
				{"dlv_1", herald.StatusDelivered, []int{503, 200}},
				{"dlv_2", herald.StatusRetrying, []int{0, 500}},
				{"dlv_3", herald.StatusDelivered, []int{204}},
			} {
				d, err := db.GetDelivery(ctx, "acme", "sandbox", tc.id)
				if err != nil {
					t.Fatal(err)
				}
				var codes []int
				for _, a := range d.Attempts {
					codes = append(codes, a.StatusCode)
				}
				if d.Status != tc.status || d.AttemptCount != len(tc.codes) || fmt.Sprint(codes) != fmt.Sprint(tc.codes) {
					t.Errorf("%s after the upgrade: %s, %d attempts %v; want %s, %v", tc.id, d.Status, d.AttemptCount, codes, tc.status, tc.codes)
				}
			}

			// On disk: every migration recorded, the token key gone, the
			// secrets sealed (no plain value left).
			check := rawDB(t, dsn)
			all, err := filepath.Glob("migrations/*.sql")
			if err != nil {
				t.Fatal(err)
			}
			// The highest file number: numbers are taken by branches in
			// parallel, so one may be missing until its branch lands.
			last := 0
			for _, f := range all {
				n, _ := strconv.Atoi(strings.SplitN(filepath.Base(f), "_", 2)[0])
				last = max(last, n)
			}
			var versions, top int
			if err := check.QueryRowContext(ctx, `SELECT COUNT(*), MAX(version) FROM schema_migrations`).Scan(&versions, &top); err != nil {
				t.Fatal(err)
			}
			if versions != len(all) || top != last {
				t.Errorf("schema_migrations has %d versions up to %d, want %d up to %d", versions, top, len(all), last)
			}
			var tokenKeys int
			if err := check.QueryRowContext(ctx, `SELECT COUNT(*) FROM settings WHERE name = 'token_key'`).Scan(&tokenKeys); err != nil {
				t.Fatal(err)
			}
			if tokenKeys != 0 {
				t.Errorf("the token key stored by version 3 is still there")
			}
			var stored []string
			for _, q := range []string{
				`SELECT url FROM webhooks`, `SELECT headers FROM webhooks`, `SELECT query_parameters FROM webhooks`,
				`SELECT secret FROM webhook_secrets`,
			} {
				rows, err := check.QueryContext(ctx, q)
				if err != nil {
					t.Fatal(err)
				}
				for rows.Next() {
					var v string
					if err := rows.Scan(&v); err != nil {
						t.Fatal(err)
					}
					stored = append(stored, v)
					if !keyring.IsSealed(v) {
						t.Errorf("%s: a value is stored in the clear after the upgrade: %q", q, v)
					}
				}
				if err := rows.Close(); err != nil {
					t.Fatal(err)
				}
			}
			if len(stored) != 8 {
				t.Errorf("read %d secret values, want 8 (four columns of two webhooks)", len(stored))
			}
			for _, plain := range []string{url, secret, "key-123", "abc"} {
				for _, v := range stored {
					if strings.Contains(v, plain) {
						t.Errorf("a stored value still shows %q", plain)
					}
				}
			}
		})
	}
}

// oldSchema returns a new database of dialect ("sqlite" or "postgres") at
// schema version: migrations 1 to version applied and recorded in
// schema_migrations as Open records them, and a raw connection to it,
// closed when the test ends, for writing data as that version did.
func oldSchema(t *testing.T, dialect string, version int) (dsn string, old *sql.DB) {
	t.Helper()
	if dialect == "sqlite" {
		dsn = "sqlite:" + filepath.Join(t.TempDir(), "herald.db")
	} else {
		dsn = storekit.PostgresSchema(t, storekit.PostgresDSN(t))
	}
	old = rawDB(t, dsn)
	exec := func(stmt string) {
		t.Helper()
		if _, err := old.Exec(stmt); err != nil {
			t.Fatalf("%v\n%s", err, stmt)
		}
	}
	files, err := filepath.Glob("migrations/*.sql") // Glob sorts them
	if err != nil || len(files) < version {
		t.Fatalf("migrations: %q %v", files, err)
	}
	exec(`CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)`)
	for i, f := range files[:version] {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		exec(sqlstore.DialectSQL(string(b), dialect == "postgres"))
		exec(fmt.Sprintf(`INSERT INTO schema_migrations (version, applied_at) VALUES (%d, 0)`, i+1))
	}
	return dsn, old
}

// rawDB opens the database of a store DSN with database/sql, beside the
// store, to read or write what is really stored; closed when the test ends.
func rawDB(t *testing.T, dsn string) *sql.DB {
	t.Helper()
	driver, raw := "pgx", dsn
	if path, ok := strings.CutPrefix(dsn, "sqlite:"); ok {
		driver, raw = "sqlite", path
	}
	db, err := sql.Open(driver, raw)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}
