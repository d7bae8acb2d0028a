package storetest

import (
	"context"
	"time"

	"github.com/heraldhooks/herald"
	"github.com/heraldhooks/herald/queue"
)

// attemptAll claims every due delivery and records one attempt for each,
// started at the clock's time, with the status code code (0: no answer).
func (e *env) attemptAll(code int) []*queue.Job {
	e.Helper()
	jobs := e.claim("node", 100, 100)
	var results []herald.AttemptResult
	for _, j := range jobs {
		res := herald.AttemptResult{DeliveryID: j.Delivery.ID,
			Attempt: herald.Attempt{N: j.Delivery.AttemptCount + 1, StartedAt: e.Clock.Now(), DurationMs: 12, StatusCode: code}}
		switch {
		case code >= 200 && code < 300:
			res.Status = herald.StatusDelivered
		case code == 0:
			res.Attempt.Error = "connection refused"
			res.Status, res.NextAttemptAt, res.WaitReason = herald.StatusRetrying, e.Clock.Now(), "no answer"
		default:
			res.Status, res.NextAttemptAt, res.WaitReason = herald.StatusRetrying, e.Clock.Now(), "non-2xx"
		}
		results = append(results, res)
	}
	e.must(e.S.RecordAttempts(e.Ctx, results))
	return jobs
}

func init() {
	register("WebhookStats", func(e *env) {
		e.setup("acme", "live",
			hook{name: "busy", triggers: []herald.Trigger{entity("PATIENT")}},
			hook{name: "quiet", triggers: []herald.Trigger{entity("CDT")}})
		e.setup("globex", "live", hook{name: "busy", triggers: []herald.Trigger{entity("PATIENT")}})
		e.create(event("acme", "live", "PATIENT_CREATED"))
		e.attemptAll(500) // before since: not counted
		e.Clock.Advance(time.Hour)
		since := e.Clock.Now()
		e.attemptAll(0)   // the old delivery again, no answer
		e.attemptAll(200) // and again, delivered
		newer := e.create(event("acme", "live", "PATIENT_CREATED"), event("globex", "live", "PATIENT_CREATED"))
		e.attemptAll(503)

		stats, err := e.S.WebhookStats(e.Ctx, "acme", "live", since)
		e.must(err)
		if len(stats) != 2 || stats[0].Webhook != "busy" || stats[1].Webhook != "quiet" {
			e.Fatalf("stats = %s, want busy and quiet", jsonString(stats))
		}
		busy, quiet := stats[0], stats[1]
		if busy.Attempts != 3 || busy.Succeeded != 1 || busy.SuccessRate == nil || *busy.SuccessRate < 0.33 || *busy.SuccessRate > 0.34 {
			e.Errorf("busy = %s, want 3 attempts since %s, 1 succeeded", jsonString(busy), since)
		}
		if !busy.Since.Equal(since) {
			e.Errorf("busy.Since = %s, want %s", busy.Since, since)
		}
		if d := busy.LastDelivery; d == nil || d.EventID != newer[0].EventID || d.Status != herald.StatusRetrying || d.LastStatusCode != 503 {
			e.Errorf("busy.LastDelivery = %s, want the newest delivery, RETRYING after a 503", jsonString(d))
		}
		if quiet.Attempts != 0 || quiet.SuccessRate != nil || quiet.LastDelivery != nil {
			e.Errorf("quiet = %s, want no attempts, no rate, no delivery", jsonString(quiet))
		}
		_, err = e.S.WebhookStats(e.Ctx, "acme", "nope", since)
		e.wantCode(err, herald.ENOTFOUND, `instance "nope"`)
	})

	register("DeliveryTimeline", func(e *env) {
		e.setup("acme", "live",
			hook{name: "wh", triggers: []herald.Trigger{entity("PATIENT")}},
			hook{name: "other", triggers: []herald.Trigger{entity("PATIENT")}})
		from := e.Clock.Now()
		e.create(event("acme", "live", "PATIENT_CREATED"), event("acme", "live", "PATIENT_CREATED"))
		e.Clock.Advance(10 * time.Second)
		e.attemptAll(500) // minute 0: 2 rejected for wh (and 2 for other)
		e.Clock.Advance(2 * time.Minute)
		e.attemptAll(0) // minute 2: 2 unreachable
		e.Clock.Advance(30 * time.Second)
		e.attemptAll(204) // minute 2: 2 delivered
		e.Clock.Advance(5 * time.Minute)
		e.create(event("acme", "live", "PATIENT_CREATED"))
		e.attemptAll(200) // minute 7: after to, not counted

		to := from.Add(5 * time.Minute)
		got, err := e.S.DeliveryTimeline(e.Ctx, "acme", "live", "wh", from, to, time.Minute)
		e.must(err)
		want := []herald.TimelineBucket{
			{Start: from, Rejected: 2},
			{Start: from.Add(time.Minute)},
			{Start: from.Add(2 * time.Minute), Delivered: 2, Unreachable: 2},
			{Start: from.Add(3 * time.Minute)},
			{Start: from.Add(4 * time.Minute)},
		}
		if jsonString(got) != jsonString(want) {
			e.Errorf("timeline =\n%s\nwant\n%s", jsonString(got), jsonString(want))
		}

		_, err = e.S.DeliveryTimeline(e.Ctx, "acme", "live", "wh", from, to, time.Millisecond)
		e.wantCode(err, herald.EINVALID, "step must be a whole number of minutes")
		_, err = e.S.DeliveryTimeline(e.Ctx, "acme", "live", "wh", from, to, 90*time.Second)
		e.wantCode(err, herald.EINVALID, "step must be a whole number of minutes")
		_, err = e.S.DeliveryTimeline(e.Ctx, "acme", "live", "wh", to, from, time.Minute)
		e.wantCode(err, herald.EINVALID, "must be after from")
		_, err = e.S.DeliveryTimeline(e.Ctx, "acme", "live", "wh", from, from.Add(48*time.Hour), time.Minute)
		e.wantCode(err, herald.EINVALID, "2880 buckets")
		_, err = e.S.DeliveryTimeline(e.Ctx, "acme", "live", "nope", from, to, time.Minute)
		e.wantCode(err, herald.ENOTFOUND, `"nope"`)
	})

	register("FindEvents", func(e *env) {
		e.setup("acme", "live")
		e.setup("acme", "other")
		mk := func(instance, source string) string {
			ev := event("acme", instance, "PATIENT_CREATED")
			ev.SourceID = source
			e.Clock.Advance(time.Millisecond)
			return e.create(ev)[0].EventID
		}
		a1, b, a2 := mk("live", "pat-a"), mk("live", "pat-b"), mk("live", "pat-a")
		mk("other", "pat-a")

		got, err := e.S.FindEvents(e.Ctx, herald.EventQuery{Tenant: "acme", Instance: "live", SourceID: "pat-a"})
		e.must(err)
		if len(got) != 2 || got[0].ID != a2 || got[1].ID != a1 || got[0].SourceID != "pat-a" || got[0].Subtype != "PATIENT_CREATED" {
			e.Errorf("by source id: %s, want %s then %s", jsonString(got), a2, a1)
		}
		got, err = e.S.FindEvents(e.Ctx, herald.EventQuery{Tenant: "acme", Instance: "live", SourceID: "pat-a", Limit: 1})
		e.must(err)
		if len(got) != 1 || got[0].ID != a2 {
			e.Errorf("limit 1: %s, want %s", jsonString(got), a2)
		}
		got, err = e.S.FindEvents(e.Ctx, herald.EventQuery{Tenant: "acme", Instance: "live", ID: b})
		e.must(err)
		if len(got) != 1 || got[0].ID != b || got[0].SourceID != "pat-b" {
			e.Errorf("by id: %s, want %s", jsonString(got), b)
		}
		got, err = e.S.FindEvents(e.Ctx, herald.EventQuery{Tenant: "acme", Instance: "live", ID: b, SourceID: "pat-a"})
		e.must(err)
		if len(got) != 0 {
			e.Errorf("id and a source id it does not have: %s, want none", jsonString(got))
		}
		got, err = e.S.FindEvents(e.Ctx, herald.EventQuery{Tenant: "acme", Instance: "other", ID: b})
		e.must(err)
		if got == nil || len(got) != 0 {
			e.Errorf("another instance's event id: %s, want an empty list", jsonString(got))
		}
		_, err = e.S.FindEvents(e.Ctx, herald.EventQuery{Tenant: "acme", Instance: "live"})
		e.wantCode(err, herald.EINVALID, "event id or a source id")
		_, err = e.S.FindEvents(e.Ctx, herald.EventQuery{Tenant: "acme", Instance: "nope", SourceID: "x"})
		e.wantCode(err, herald.ENOTFOUND, `instance "nope"`)
	})

	register("PublishedVersion", func(e *env) {
		e.setup("acme", "live")
		_, err := e.S.PublishedVersion(e.Ctx, "acme")
		e.wantCode(err, herald.ENOTFOUND, "has not published")
		_, err = e.S.PublishedVersion(e.Ctx, "nope")
		e.wantCode(err, herald.ENOTFOUND, `tenant "nope"`)
		e.setup("acme", "live", hook{name: "wh", triggers: []herald.Trigger{entity("PATIENT")}})
		title := "Changed in the draft"
		_, err = e.S.UpdateDesignerWebhook(e.Ctx, "acme", "wh", herald.DesignerWebhookUpdate{Title: &title})
		e.must(err)
		v, err := e.S.PublishedVersion(e.Ctx, "acme")
		e.must(err)
		if v.Version != 1 || v.Comment != "setup" || len(v.Webhooks) != 1 || v.Webhooks[0].Title != "Hook wh" ||
			jsonString(v.Webhooks[0].Triggers) != `[{"eventEntity":"PATIENT"}]` {
			e.Errorf("published version = %s, want version 1 with wh as published, not as drafted", jsonString(v))
		}
	})
}

// attemptCountRower is implemented by stores whose tests can count the
// rows of attempt_counts (sqlstore, in its own tests).
type attemptCountRower interface {
	AttemptCountRows(ctx context.Context) (rows, minutes int, err error)
}

func init() {
	// Each write adds its own attempt-count rows; maintenance folds a
	// minute that is over into one row per webhook, leaving the stats and
	// the timeline as they were (issue 11, item 6.3).
	register("AttemptCountsFolded", func(e *env) {
		e.setup("acme", "live",
			hook{name: "wh", triggers: []herald.Trigger{entity("PATIENT")}},
			hook{name: "other", triggers: []herald.Trigger{entity("PATIENT")}})
		from := e.Clock.Now()
		codes := []int{200, 500, 0, 204, 410, 200}
		for i := range 12 {
			e.create(event("acme", "live", "PATIENT_CREATED"))
			e.Clock.Advance(time.Second)
			e.attemptAll(codes[i%len(codes)]) // one write, in minute 0
		}
		view := func() string {
			e.Helper()
			var out []any
			for _, wh := range []string{"wh", "other"} {
				tl, err := e.S.DeliveryTimeline(e.Ctx, "acme", "live", wh, from, from.Add(3*time.Minute), time.Minute)
				e.must(err)
				out = append(out, tl)
			}
			stats, err := e.S.WebhookStats(e.Ctx, "acme", "live", from)
			e.must(err)
			for _, s := range stats {
				out = append(out, s.Webhook, s.Attempts, s.Succeeded)
			}
			return jsonString(out)
		}
		rc, canCount := e.S.(attemptCountRower)
		rows := func(wantRows, wantMinutes int, when string) {
			e.Helper()
			if !canCount {
				return
			}
			r, m, err := rc.AttemptCountRows(e.Ctx)
			e.must(err)
			if r != wantRows || m != wantMinutes {
				e.Errorf("%s: attempt_counts has %d rows for %d webhooks and minutes, want %d for %d", when, r, m, wantRows, wantMinutes)
			}
		}
		before := view()
		rows(24, 2, "after 12 writes")

		// Minute 0 is not over: nothing is folded.
		_, err := e.S.PurgeFinished(e.Ctx, from.Add(-24*time.Hour), 0)
		e.must(err)
		rows(24, 2, "while the minute lasts")
		e.Clock.Advance(time.Minute)
		_, err = e.S.PurgeFinished(e.Ctx, from.Add(-24*time.Hour), 0)
		e.must(err)
		rows(2, 2, "once the minute is over")
		if got := view(); got != before {
			e.Errorf("after folding, stats and timelines =\n%s\nwant\n%s", got, before)
		}

		// A result written late for minute 0, and one in minute 1: the
		// next fold takes minute 0 again.
		e.create(event("acme", "live", "PATIENT_CREATED"))
		jobs := e.claim("node", 100, 100)
		var results []herald.AttemptResult
		for _, j := range jobs {
			results = append(results, herald.AttemptResult{DeliveryID: j.Delivery.ID, Status: herald.StatusDelivered,
				Attempt: herald.Attempt{N: j.Delivery.AttemptCount + 1, StartedAt: from.Add(50 * time.Second), DurationMs: 3, StatusCode: 200}})
		}
		e.must(e.S.RecordAttempts(e.Ctx, results))
		e.create(event("acme", "live", "PATIENT_CREATED"))
		e.attemptAll(500) // in minute 1
		before = view()
		rows(6, 4, "after late writes")
		e.Clock.Advance(time.Minute)
		_, err = e.S.PurgeFinished(e.Ctx, from.Add(-24*time.Hour), 0)
		e.must(err)
		rows(4, 4, "after the second fold")
		if got := view(); got != before {
			e.Errorf("after the second fold, stats and timelines =\n%s\nwant\n%s", got, before)
		}
	})
}
