package webui_test

import (
	"context"
	"html"
	"strings"
	"testing"
	"time"

	"github.com/heraldhooks/herald"
)

// The webhook page shows the webhook's health: healthy, then probing after
// five failed attempts in a row, with when the failures began.
func TestWebhookPageShowsHealth(t *testing.T) {
	e := mustEnv(t)
	ctx := context.Background()
	path := "/ui/t/acme/i/sandbox/webhooks/wh"
	b := e.browser()
	b.signIn("viewer")
	if _, _, page := b.get(path); !strings.Contains(page, `Health:`) || !strings.Contains(page, ">healthy<") {
		t.Fatalf("a fresh webhook's page does not say it is healthy:\n%s", page)
	}

	if _, err := e.store.CreateEvents(ctx, []*herald.Event{{TenantName: "acme", InstanceName: "sandbox", Entity: "PATIENT", Subtype: "PATIENT_CREATED"}}); err != nil {
		t.Fatal(err)
	}
	list, _, err := e.store.ListDeliveries(ctx, herald.DeliveryFilter{Tenant: "acme", Instance: "sandbox"})
	if err != nil || len(list) != 1 {
		t.Fatal(list, err)
	}
	start := time.Now().Add(-time.Minute).Truncate(time.Second)
	var results []herald.AttemptResult
	for i := range 5 {
		at := start.Add(time.Duration(i) * time.Second)
		results = append(results, herald.AttemptResult{DeliveryID: list[0].ID, Attempt: herald.Attempt{StartedAt: at, StatusCode: 503},
			Status: herald.StatusRetrying, NextAttemptAt: at.Add(time.Minute)})
	}
	if err := e.store.RecordAttempts(ctx, results); err != nil {
		t.Fatal(err)
	}
	_, _, page := b.get(path)
	page = html.UnescapeString(page)
	if !strings.Contains(page, ">probing<") || !strings.Contains(page, "5 attempts in a row failed") || !strings.Contains(page, "one request at a time") {
		t.Fatalf("the page of a webhook with 5 failures in a row does not say it is probing:\n%s", page)
	}
}
