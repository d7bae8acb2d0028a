package storetest

import (
	"slices"
	"time"

	"github.com/heraldhooks/herald"
)

func init() {
	register("ListDeliveriesFiltersAndCursors", func(e *env) {
		e.setup("acme", "live",
			hook{name: "patients", triggers: []herald.Trigger{entity("PATIENT")}},
			hook{name: "created", triggers: []herald.Trigger{subtype("PATIENT_CREATED"), subtype("CDT_CREATED")}})
		e.setup("acme", "sandbox")
		// 30 minutes of events, one a minute, alternating subtypes.
		var all []string // event IDs, oldest first
		for i := range 30 {
			sub := "PATIENT_CREATED"
			if i%2 == 1 {
				sub = "PATIENT_UPDATED"
			}
			res := e.create(event("acme", "live", sub))
			all = append(all, res[0].EventID)
			e.Clock.Advance(time.Minute)
		}
		// 15 created events x 2 webhooks + 15 updated x 1 = 45 deliveries.
		everything := e.deliveries(herald.DeliveryFilter{Tenant: "acme", Instance: "live", Limit: 7})
		if len(everything) != 45 {
			e.Fatalf("paged through %d deliveries, want 45", len(everything))
		}
		for i := 1; i < len(everything); i++ {
			if everything[i].ID >= everything[i-1].ID || everything[i].CreatedAt.After(everything[i-1].CreatedAt) {
				e.Fatalf("not newest first at %d", i)
			}
		}
		first, next, err := e.S.ListDeliveries(e.Ctx, herald.DeliveryFilter{Tenant: "acme", Instance: "live"})
		e.must(err)
		if len(first) != 45 || next != "" {
			e.Errorf("default page: %d deliveries, next %q; want all 45 and no next page", len(first), next)
		}
		if first[0].EventID != all[29] || first[0].Tenant != "acme" || first[0].Instance != "live" || len(first[0].Attempts) != 0 {
			e.Errorf("newest = %s", jsonString(first[0]))
		}
		page, next, err := e.S.ListDeliveries(e.Ctx, herald.DeliveryFilter{Tenant: "acme", Instance: "live", Limit: 45})
		e.must(err)
		if len(page) != 45 || next != "" {
			e.Errorf("a page of exactly all: %d, next %q", len(page), next)
		}
		page, next, err = e.S.ListDeliveries(e.Ctx, herald.DeliveryFilter{Tenant: "acme", Instance: "live", Limit: 10000})
		e.must(err)
		if len(page) != 45 || next != "" {
			e.Errorf("limit over the maximum: %d", len(page))
		}

		count := func(f herald.DeliveryFilter) int {
			f.Tenant, f.Instance, f.Limit = "acme", "live", 4
			return len(e.deliveries(f))
		}
		for name, tc := range map[string]struct {
			f    herald.DeliveryFilter
			want int
		}{
			"webhook":           {herald.DeliveryFilter{Webhook: "created"}, 15},
			"subtype":           {herald.DeliveryFilter{EventSubtype: "PATIENT_UPDATED"}, 15},
			"entity":            {herald.DeliveryFilter{EventEntity: "PATIENT"}, 45},
			"other entity":      {herald.DeliveryFilter{EventEntity: "CDT"}, 0},
			"status":            {herald.DeliveryFilter{Status: herald.StatusPending}, 45},
			"event":             {herald.DeliveryFilter{EventID: all[0]}, 2},
			"from":              {herald.DeliveryFilter{From: Epoch.Add(20 * time.Minute)}, 15},
			"to":                {herald.DeliveryFilter{To: Epoch.Add(10 * time.Minute)}, 15},
			"from to":           {herald.DeliveryFilter{From: Epoch.Add(10 * time.Minute), To: Epoch.Add(20 * time.Minute)}, 15},
			"from to webhook":   {herald.DeliveryFilter{Webhook: "patients", From: Epoch.Add(10 * time.Minute), To: Epoch.Add(20 * time.Minute)}, 10},
			"webhook + subtype": {herald.DeliveryFilter{Webhook: "patients", EventSubtype: "PATIENT_CREATED"}, 15},
			"unknown webhook":   {herald.DeliveryFilter{Webhook: "nope"}, 0},
		} {
			if got := count(tc.f); got != tc.want {
				e.Errorf("%s: %d deliveries, want %d", name, got, tc.want)
			}
		}
		// Filters hold across pages and pages do not overlap.
		seen := map[string]bool{}
		for _, d := range e.deliveries(herald.DeliveryFilter{Tenant: "acme", Instance: "live", Webhook: "patients", Limit: 3}) {
			if d.Webhook != "patients" || seen[d.ID] {
				e.Fatalf("page item %s", jsonString(d))
			}
			seen[d.ID] = true
		}
		if len(seen) != 30 {
			e.Errorf("patients has %d deliveries, want 30", len(seen))
		}

		// Another instance's deliveries never show.
		if ds := e.deliveries(herald.DeliveryFilter{Tenant: "acme", Instance: "sandbox"}); len(ds) != 0 {
			e.Errorf("sandbox lists %d deliveries", len(ds))
		}
		for _, bad := range []string{"garbage", "ZDE6ZXZ0X3g", "!!!"} {
			_, _, err := e.S.ListDeliveries(e.Ctx, herald.DeliveryFilter{Tenant: "acme", Instance: "live", Cursor: bad})
			e.wantCode(err, herald.EINVALID, "cursor is not valid; pass the nextCursor of the previous page.")
		}
		_, _, err = e.S.ListDeliveries(e.Ctx, herald.DeliveryFilter{Tenant: "acme", Instance: "live", Status: "LOST"})
		e.wantCode(err, herald.EINVALID)
		_, _, err = e.S.ListDeliveries(e.Ctx, herald.DeliveryFilter{Tenant: "acme", Instance: "prod"})
		e.wantCode(err, herald.ENOTFOUND, `instance "prod" of tenant "acme" not found.`)
		_, err = e.S.GetDelivery(e.Ctx, "acme", "sandbox", everything[0].ID)
		e.wantCode(err, herald.ENOTFOUND)
		_, err = e.S.GetDelivery(e.Ctx, "acme", "live", "dlv_nope")
		e.wantCode(err, herald.ENOTFOUND, `"dlv_nope" not found`)
	})

	register("DeactivateFailing", func(e *env) {
		hooks := e.setup("acme", "live",
			hook{name: "dead", triggers: []herald.Trigger{entity("PATIENT")}},
			hook{name: "flaky", triggers: []herald.Trigger{entity("PATIENT")}},
			hook{name: "quiet", triggers: []herald.Trigger{entity("PATIENT")}},
			hook{name: "healthy", triggers: []herald.Trigger{entity("PATIENT")}})
		fail := func(name string, at time.Time) herald.AttemptResult {
			return e.attemptFor(name, at, herald.StatusRetrying)
		}
		ok := func(name string, at time.Time) herald.AttemptResult {
			return e.attemptFor(name, at, herald.StatusDelivered)
		}
		day := 24 * time.Hour
		t0 := Epoch
		e.must(e.S.RecordAttempts(e.Ctx, []herald.AttemptResult{fail("dead", t0), fail("flaky", t0), fail("quiet", t0), ok("healthy", t0)}))
		e.Clock.Advance(2 * day)
		t1 := e.Clock.Now()
		// flaky recovers (success then failure), quiet is no longer tried.
		e.must(e.S.RecordAttempts(e.Ctx, []herald.AttemptResult{fail("dead", t1), ok("flaky", t1), fail("flaky", t1.Add(time.Second)), ok("healthy", t1)}))
		e.create(event("acme", "live", "PATIENT_CREATED"))

		got, err := e.S.DeactivateFailing(e.Ctx, t1.Add(-day), "failing for a day")
		e.must(err)
		if len(got) != 1 || got[0].Name != "dead" || got[0].Active || got[0].DeactivatedReason != "failing for a day" || got[0].ID != hooks["dead"].ID {
			e.Fatalf("DeactivateFailing = %s, want only dead", jsonString(got))
		}
		open := statuses(e.deliveries(herald.DeliveryFilter{Tenant: "acme", Instance: "live", Webhook: "dead"}))
		if open[herald.StatusPending]+open[herald.StatusRetrying]+open[herald.StatusSent] != 0 || open[herald.StatusCancelled] == 0 {
			e.Errorf("dead webhook's deliveries = %v, want open ones cancelled", open)
		}
		var names []string
		hs, _ := e.S.ListWebhooks(e.Ctx, "acme", "live")
		for _, w := range hs {
			if w.Active {
				names = append(names, w.Name)
			}
		}
		if !slices.Equal(names, []string{"flaky", "healthy", "quiet"}) {
			e.Errorf("active after DeactivateFailing: %v", names)
		}
		if again, _ := e.S.DeactivateFailing(e.Ctx, t1.Add(-day), ""); len(again) != 0 {
			e.Errorf("second run deactivated %d", len(again))
		}
	})
}

// attemptFor makes a new event for webhook name, claims its delivery and
// returns a result for it, leaving the other webhooks' deliveries alone.
func (e *env) attemptFor(name string, at time.Time, status string) herald.AttemptResult {
	e.Helper()
	e.create(event("acme", "live", "PATIENT_CREATED"))
	hs, err := e.S.ListWebhooks(e.Ctx, "acme", "live")
	e.must(err)
	var exclude []string
	for _, w := range hs {
		if w.Name != name {
			exclude = append(exclude, w.ID)
		}
	}
	jobs := e.claim("n1", 1, 1, exclude...)
	if len(jobs) != 1 {
		e.Fatalf("nothing to claim for %s", name)
	}
	code := 500
	if status == herald.StatusDelivered {
		code = 200
	}
	return herald.AttemptResult{DeliveryID: jobs[0].Delivery.ID, Attempt: herald.Attempt{StartedAt: at, StatusCode: code}, Status: status,
		NextAttemptAt: at.Add(time.Hour)}
}
