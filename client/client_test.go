package client_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/heraldhooks/herald"
	"github.com/heraldhooks/herald/access"
	"github.com/heraldhooks/herald/client"
	"github.com/heraldhooks/herald/dispatch"
	"github.com/heraldhooks/herald/heraldtest"
	"github.com/heraldhooks/herald/heraldtest/storekit"
	"github.com/heraldhooks/herald/httpapi"
	"github.com/heraldhooks/herald/netguard"
	"github.com/heraldhooks/herald/sqlstore"
)

const adminSecret = "hsk_client-test-admin-secret"

// startHerald serves the real API on a real SQLite store with a running
// engine, on loopback, and returns its URL.
func startHerald(t *testing.T) string {
	t.Helper()
	store := storekit.OpenSQLite(t, sqlstore.Config{})
	discard := slog.New(slog.NewTextHandler(io.Discard, nil))
	eng, err := dispatch.New(dispatch.Config{Store: store, Destinations: netguard.Policy{AllowPrivate: true},
		Registerer: prometheus.NewRegistry(), Logger: discard})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); eng.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	gate, err := access.New(access.Config{Store: store, Keys: storekit.Keys, Audit: store})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := gate.EnsureAdmin(ctx, adminSecret); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	h, err := httpapi.New(httpapi.Config{Store: store, Access: gate, Ingester: eng, Tester: eng, Logger: discard,
		Registerer: reg, Gatherer: reg})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestClientFlow goes through a webhook's life with the typed client only:
// sign in, tenant, instance, design, publish, point, secret, activate,
// events (one with an idempotency key, sent twice), the delivery log page
// by page, one delivery's attempts, a resend.
func TestClientFlow(t *testing.T) {
	ctx := context.Background()
	base := startHerald(t)
	c, err := client.New(base, client.WithAPIClient("admin", adminSecret))
	if err != nil {
		t.Fatal(err)
	}
	recv := heraldtest.NewReceiver(t, heraldtest.ReceiverConfig{Strict: true})

	const tenant, inst, hook = "acme", "sandbox", "wh-patient-sync"
	if _, err := c.CreateTenant(ctx, tenant); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateInstance(ctx, tenant, inst); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateDesignerWebhook(ctx, tenant, herald.DesignerWebhook{Name: hook, Title: "Patient sync",
		Triggers: []herald.Trigger{{EventEntity: "PATIENT"}}}); err != nil {
		t.Fatal(err)
	}
	if v, err := c.Publish(ctx, tenant, "first"); err != nil || v.Version != 1 {
		t.Fatalf("publish: %+v %v", v, err)
	}
	limit := 1000
	if wh, err := c.UpdateWebhook(ctx, tenant, inst, hook, herald.WebhookUpdate{
		RateLimitPerSecond: herald.RateLimitUpdate{Set: true, Value: &limit}}); err != nil || wh.RateLimitPerSecond == nil || *wh.RateLimitPerSecond != limit {
		t.Fatalf("set the rate limit: %+v %v", wh, err)
	}
	url := recv.URL + "/hooks"
	wh, err := c.UpdateWebhook(ctx, tenant, inst, hook, herald.WebhookUpdate{URL: &url})
	if err != nil || wh.URL != url || wh.Active {
		t.Fatalf("update: %+v %v", wh, err)
	}
	if wh.RateLimitPerSecond == nil || *wh.RateLimitPerSecond != limit {
		t.Errorf("an update without rateLimitPerSecond changed it to %v", wh.RateLimitPerSecond)
	}
	secret, err := c.WebhookSecret(ctx, tenant, inst, hook)
	if err != nil {
		t.Fatal(err)
	}
	recv.SetSecrets(secret)
	if wh, err = c.ActivateWebhook(ctx, tenant, inst, hook); err != nil || !wh.Active {
		t.Fatalf("activate: %+v %v", wh, err)
	}

	accepted, err := c.SendEvents(ctx, tenant, inst,
		client.Event{EventSubtype: "PATIENT_CREATED", PatientID: "p-1"},
		client.Event{EventSubtype: "PATIENT_UPDATED", PatientID: "p-1"},
		client.Event{EventSubtype: "TASK_CREATED"}) // no webhook listens
	if err != nil || len(accepted) != 3 || accepted[0].Deliveries != 1 || accepted[2].Deliveries != 0 {
		t.Fatalf("send events: %+v %v", accepted, err)
	}
	first, err := c.SendEvent(ctx, tenant, inst, "order-42", client.Event{EventSubtype: "PATIENT_CREATED", PatientID: "p-2"})
	if err != nil {
		t.Fatal(err)
	}
	again, err := c.SendEvent(ctx, tenant, inst, "order-42", client.Event{EventSubtype: "PATIENT_CREATED", PatientID: "p-2"})
	if err != nil || again.EventID != first.EventID {
		t.Fatalf("the same idempotency key made %s then %s (%v)", first.EventID, again.EventID, err)
	}
	recv.WaitDelivered(t, 15*time.Second, accepted[0].EventID, accepted[1].EventID, first.EventID)

	var ids []string
	for d, err := range c.AllDeliveries(ctx, tenant, inst, client.DeliveryFilter{Webhook: hook, Limit: 2}) {
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, d.ID)
	}
	if len(ids) != 3 {
		t.Fatalf("AllDeliveries in pages of 2 gave %d deliveries, want 3", len(ids))
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		d, err := c.Delivery(ctx, tenant, inst, ids[0])
		if err != nil {
			t.Fatal(err)
		}
		if d.Status == "DELIVERED" && len(d.Attempts) == 1 && d.Attempts[0].StatusCode == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("delivery %s: %+v", ids[0], d)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if d, err := c.Resend(ctx, tenant, inst, ids[0]); err != nil || d.Status != "PENDING" {
		t.Fatalf("resend: %+v %v", d, err)
	}
}

// TestClientErrors: a refused request is an *Error with Herald's code,
// message and field; bad credentials are a 401; a revoked token is
// replaced by a new one without the caller noticing.
func TestClientErrors(t *testing.T) {
	ctx := context.Background()
	base := startHerald(t)
	c, err := client.New(base, client.WithAPIClient("admin", adminSecret))
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.CreateTenant(ctx, "Not A Slug!")
	var ae *client.Error
	if !errors.As(err, &ae) || ae.Status != http.StatusBadRequest || ae.Code != "invalid" || ae.Field != "name" || ae.Message == "" || ae.RequestID == "" {
		t.Fatalf("a bad tenant name: %#v", err)
	}
	if _, err := c.Webhook(ctx, "nobody", "nowhere", "wh-x"); client.StatusOf(err) != http.StatusNotFound {
		t.Errorf("a missing webhook: %v, want 404", err)
	}

	wrong, _ := client.New(base, client.WithAPIClient("admin", "not-the-secret"))
	if _, err := wrong.Catalog(ctx); client.StatusOf(err) != http.StatusUnauthorized {
		t.Errorf("a wrong secret: %v, want 401", err)
	}

	tok, err := c.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Do(ctx, "POST", "/v1/auth/revoke", nil, nil, nil); err != nil {
		t.Fatal(err)
	}
	raw, _ := client.New(base, client.WithToken(tok))
	if _, err := raw.Catalog(ctx); client.StatusOf(err) != http.StatusUnauthorized {
		t.Fatalf("the revoked token still works: %v", err)
	}
	if cat, err := c.Catalog(ctx); err != nil || len(cat.Entities) == 0 {
		t.Fatalf("after its token was revoked the client did not sign in again: %v", err)
	}
	if again, _ := c.Token(ctx); again == tok {
		t.Error("the client kept the revoked token")
	}

	if _, err := client.New("ftp://herald.example"); err == nil {
		t.Error("an ftp:// base URL was taken")
	}
}
