package sqlstore_test

import (
	"context"
	"database/sql"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heraldhooks/herald"
	"github.com/heraldhooks/herald/heraldtest/storekit"
	"github.com/heraldhooks/herald/queue"
	"github.com/heraldhooks/herald/sqlstore"
	"github.com/heraldhooks/herald/storetest"
	_ "github.com/jackc/pgx/v5/stdlib"
)

func TestOpenRefusesBadDSN(t *testing.T) {
	t.Parallel()
	for _, dsn := range []string{"sqlite:", "mysql://root@localhost/db", "herald.db", ""} {
		_, err := sqlstore.Open(context.Background(), dsn, sqlstore.Config{Keys: storekit.Keys})
		if herald.ErrorCode(err) != herald.EINVALID {
			t.Errorf("Open(%q) = %v, want EINVALID", dsn, err)
		}
	}
}

func TestOpenSQLiteCreatesDirectoryAndUsesWAL(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "a", "b", "herald.db")
	db, err := sqlstore.Open(context.Background(), "sqlite:"+path, sqlstore.Config{Keys: storekit.Keys})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if db.Dialect() != "sqlite" {
		t.Errorf("Dialect = %q", db.Dialect())
	}
	if _, err := db.CreateTenant(context.Background(), "acme"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path + "-wal"); err != nil {
		t.Errorf("no write-ahead log next to the database: %v", err)
	}
	// A second store on the same file is refused while the first is open:
	// SQLite serves one node.
	if _, err := sqlstore.Open(context.Background(), "sqlite:"+path, sqlstore.Config{Keys: storekit.Keys}); herald.ErrorCode(err) != herald.ECONFLICT || !strings.Contains(herald.ErrorMessage(err), "in use by another Herald process") {
		t.Errorf("second Open on the same file: %v, want ECONFLICT saying it is in use", err)
	}
	// Opening again finds the schema in place and the data kept.
	db.Close()
	db2, err := sqlstore.Open(context.Background(), "sqlite:"+path, sqlstore.Config{Keys: storekit.Keys})
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	if _, err := db2.GetTenant(context.Background(), "acme"); err != nil {
		t.Errorf("after reopening: %v", err)
	}
}

// TestSQLiteConcurrentWriters checks that writers queue instead of failing
// with SQLITE_BUSY.
func TestSQLiteConcurrentWriters(t *testing.T) {
	t.Parallel()
	db := storekit.NewSQLite(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := db.CreateTenant(ctx, "t"+strings.Repeat("x", i))
			if err == nil {
				_, err = db.ListTenants(ctx)
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

func TestSubscribeSQLite(t *testing.T) {
	t.Parallel()
	db := storekit.NewSQLite(t)
	testSubscribe(t, db, func(ctx context.Context) <-chan struct{} { return db.Subscribe(ctx) })
}

func TestSubscribePostgresAcrossNodes(t *testing.T) {
	t.Parallel()
	dsn := storekit.PostgresDSN(t)
	a := openPG(t, dsn)
	if a.Dialect() != "postgres" {
		t.Errorf("Dialect = %q", a.Dialect())
	}
	testSubscribe(t, a, func(ctx context.Context) <-chan struct{} {
		b := openPG(t, dsn)
		wake := b.Subscribe(ctx)
		waitWake(t, wake, "the listener's first connection")
		return wake
	})
}

// testSubscribe checks that writes on the writer node wake subscribers of a
// listener node (the same node on SQLite), and that subscriptions end with
// their context.
//
// Each step listens anew (on PostgreSQL on a new node) after the writes
// before it have returned, so the wake-up it waits for can only be its own:
// a node wakes its own subscribers before a write returns, and PostgreSQL
// delivers to a LISTEN only notifications committed after it. No step
// waits for the channel to fall quiet.
func testSubscribe(t *testing.T, writer *sqlstore.DB, listen func(context.Context) <-chan struct{}) {
	ctx := t.Context()
	setup(t, writer)

	firstCtx, cancel := context.WithCancel(ctx)
	first := listen(firstCtx)
	wake := first
	res, err := writer.CreateEvents(ctx, []*herald.Event{{TenantName: "acme", InstanceName: "live", Entity: "PATIENT", Subtype: "PATIENT_CREATED"}})
	if err != nil || res[0].Deliveries != 1 {
		t.Fatalf("CreateEvents = %+v, %v", res, err)
	}
	waitWake(t, wake, "CreateEvents")
	if _, err := writer.DeactivateWebhook(ctx, "acme", "live", "wh", ""); err != nil {
		t.Fatal(err)
	}

	wake = listen(ctx)
	if _, err := writer.ActivateWebhook(ctx, "acme", "live", "wh"); err != nil {
		t.Fatal(err)
	}
	waitWake(t, wake, "ActivateWebhook")

	wake = listen(ctx)
	if n, err := writer.RecoverWebhook(ctx, "acme", "live", "wh", time.Time{}); err != nil || n != 1 {
		t.Fatalf("RecoverWebhook = %d, %v", n, err)
	}
	waitWake(t, wake, "RecoverWebhook")

	jobs, err := writer.ClaimDeliveries(ctx, queue.ClaimRequest{Owner: "n1", Now: time.Now(), LeaseUntil: time.Now().Add(time.Hour), Limit: 1})
	if err != nil || len(jobs) != 1 {
		t.Fatalf("ClaimDeliveries = %d jobs, %v", len(jobs), err)
	}
	wake = listen(ctx)
	if n, err := writer.ReleaseAll(ctx); err != nil || n != 1 {
		t.Fatalf("ReleaseAll = %d, %v", n, err)
	}
	waitWake(t, wake, "ReleaseAll")

	cancel()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case _, ok := <-first:
			if !ok {
				return
			}
		case <-deadline:
			t.Fatal("channel not closed after its context ended")
		}
	}
}

func setup(t *testing.T, db *sqlstore.DB) {
	t.Helper()
	ctx := context.Background()
	must(t, func() error { _, err := db.CreateTenant(ctx, "acme"); return err }())
	must(t, func() error { _, err := db.CreateInstance(ctx, "acme", "live"); return err }())
	must(t, db.CreateDesignerWebhook(ctx, "acme", &herald.DesignerWebhook{Name: "wh", Title: "WH", Triggers: []herald.Trigger{{EventEntity: "PATIENT"}}}))
	must(t, func() error { _, err := db.Publish(ctx, "acme", "", ""); return err }())
	u := "https://example.com/"
	must(t, func() error {
		_, err := db.UpdateWebhook(ctx, "acme", "live", "wh", herald.WebhookUpdate{URL: &u})
		return err
	}())
	must(t, func() error { _, err := db.ActivateWebhook(ctx, "acme", "live", "wh"); return err }())
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func waitWake(t *testing.T, ch <-chan struct{}, after string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatalf("no wake-up after %s", after)
	}
}

func openPG(t *testing.T, dsn string) *sqlstore.DB {
	t.Helper()
	db, err := sqlstore.Open(context.Background(), dsn, sqlstore.Config{Keys: storekit.Keys})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestTryLeadSQLite(t *testing.T) {
	t.Parallel()
	db := storekit.NewSQLite(t)
	if ok, err := db.TryLead(context.Background()); !ok || err != nil {
		t.Errorf("TryLead on SQLite = %v, %v", ok, err)
	}
}

func TestTryLeadPostgres(t *testing.T) {
	t.Parallel()
	dsn := storekit.PostgresDSN(t)
	ctx := context.Background()
	a, b := openPG(t, dsn), openPG(t, dsn)
	lead := func(db *sqlstore.DB) bool {
		t.Helper()
		ok, err := db.TryLead(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if !lead(a) {
		t.Fatal("first node does not lead")
	}
	if !lead(a) {
		t.Fatal("first node loses the lead when it asks again")
	}
	if lead(b) {
		t.Fatal("two leaders")
	}
	// Graceful: the other node takes over on its next call.
	a.ReleaseLeadership()
	if !lead(b) {
		t.Fatal("no takeover after ReleaseLeadership")
	}
	if lead(a) {
		t.Fatal("two leaders after takeover")
	}
	// A leader whose process dies loses its session and with it the lock.
	killSessions(t, dsn, "")
	if !lead(a) && !lead(b) {
		t.Fatal("nobody leads after the leader's connection died")
	}
	if lead(a) == lead(b) {
		t.Fatal("want exactly one leader")
	}
}

// killSessions terminates the sessions of dsn's database whose last query
// contains text ("" for all), as a crash or a network cut would.
func killSessions(t *testing.T, dsn, text string) {
	t.Helper()
	u, _ := url.Parse(dsn)
	adm, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	_, err = adm.Exec(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE datname = $1 AND pid <> pg_backend_pid() AND query LIKE '%' || $2 || '%'`, strings.TrimPrefix(u.Path, "/"), text)
	if err != nil {
		t.Fatal(err)
	}
}

// TestPostgresOutage takes the database away from a running store, by
// stopping a TCP proxy between them: calls fail with EUNAVAILABLE while it is
// gone and work again when it is back, and the wake-up listener reconnects by
// itself.
func TestPostgresOutage(t *testing.T) {
	t.Parallel()
	dsn := storekit.PostgresDSN(t)
	u, _ := url.Parse(dsn)
	p := storetest.NewProxy(t, u.Host)
	u.Host = p.Addr()
	db := openPG(t, u.String())
	ctx := context.Background()
	setup(t, db)
	wake := db.Subscribe(t.Context())
	waitWake(t, wake, "the listener's first connection")

	p.Cut()
	err := db.Ping(ctx)
	if herald.ErrorCode(err) != herald.EUNAVAILABLE || !strings.HasPrefix(herald.ErrorMessage(err), "database unavailable: ") {
		t.Fatalf("Ping during the outage = %v, want EUNAVAILABLE", err)
	}
	_, err = db.CreateEvents(ctx, []*herald.Event{{TenantName: "acme", InstanceName: "live", Entity: "PATIENT", Subtype: "PATIENT_CREATED"}})
	if herald.ErrorCode(err) != herald.EUNAVAILABLE {
		t.Fatalf("CreateEvents during the outage = %v, want EUNAVAILABLE", err)
	}
	t.Logf("during the outage: %s", herald.ErrorMessage(err))
	if _, err := db.ListTenants(ctx); herald.ErrorCode(err) != herald.EUNAVAILABLE {
		t.Fatalf("ListTenants during the outage = %v, want EUNAVAILABLE", err)
	}
	if ok, err := db.TryLead(ctx); ok || herald.ErrorCode(err) != herald.EUNAVAILABLE {
		t.Fatalf("TryLead during the outage = %v, %v", ok, err)
	}

	p.Restore()
	deadline := time.Now().Add(10 * time.Second)
	for db.Ping(ctx) != nil {
		if time.Now().After(deadline) {
			t.Fatal("store did not recover after the outage")
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The listener reconnected, and said so with a wake-up.
	waitWake(t, wake, "the listener reconnected")
	// A new subscription holds no wake-up of the reconnection: the one it
	// gets is CreateEvents'.
	wake = db.Subscribe(t.Context())
	if _, err := db.CreateEvents(ctx, []*herald.Event{{TenantName: "acme", InstanceName: "live", Entity: "PATIENT", Subtype: "PATIENT_CREATED"}}); err != nil {
		t.Fatal(err)
	}
	waitWake(t, wake, "CreateEvents after the outage")
	if ok, err := db.TryLead(ctx); !ok || err != nil {
		t.Fatalf("TryLead after the outage = %v, %v", ok, err)
	}
}

func TestPostgresUnreachable(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := sqlstore.Open(ctx, "postgres://postgres@127.0.0.1:1/nothing?sslmode=disable&connect_timeout=2", sqlstore.Config{Keys: storekit.Keys})
	if herald.ErrorCode(err) != herald.EUNAVAILABLE {
		t.Fatalf("Open of an unreachable server = %v, want EUNAVAILABLE", err)
	}
}

// TestPostgresNodesStartTogether opens several stores on one new database at
// once: migrations run once, under the advisory lock, and the key check
// one of them stores is the one every other node verifies.
func TestPostgresNodesStartTogether(t *testing.T) {
	t.Parallel()
	dsn := storekit.PostgresDSN(t)
	const n = 4
	dbs := make([]*sqlstore.DB, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dbs[i], errs[i] = sqlstore.Open(context.Background(), dsn, sqlstore.Config{Keys: storekit.Keys})
		}()
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("node %d: %v", i, errs[i])
		}
		defer dbs[i].Close()
	}
}
