package dispatch_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/heraldhooks/herald"
	"github.com/heraldhooks/herald/dispatch"
	"github.com/heraldhooks/herald/heraldtest"
	"github.com/heraldhooks/herald/heraldtest/storekit"
	"github.com/heraldhooks/herald/netguard"
	"github.com/heraldhooks/herald/queue"
	"github.com/heraldhooks/herald/sqlstore"
	"github.com/heraldhooks/herald/storetest"
	"github.com/prometheus/client_golang/prometheus"
)

func TestDeliversEveryEventOnceSigned(t *testing.T) {
	rc := newReceiver(t, nil)
	db, hooks := mustStore(t, hook{
		name:    "wh-sync",
		url:     rc.URL + "/hooks?source=herald",
		headers: []herald.NameValue{{Name: "X-Api-Key", Value: "k-123"}},
		query:   []herald.NameValue{{Name: "team", Value: "care ops"}},
	})
	wh := hooks["wh-sync"]
	e, _ := mustRun(t, testConfig(t, db))

	const n = 25
	ids := mustCreateEvents(t, e, n)
	ds := waitStatus(t, db, "wh-sync", n, 10*time.Second, herald.StatusDelivered)
	waitIdle(t, e)

	verifier, err := standardwebhooks.NewWebhook(wh.secret)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, r := range rc.Requests() {
		id := r.Header.Get("webhook-id")
		seen[id]++
		if err := verifier.Verify(r.Body, r.Header); err != nil {
			t.Errorf("request for %s: signature does not verify with the Standard Webhooks library: %v", id, err)
		}
		ts, _ := strconv.ParseInt(r.Header.Get("webhook-timestamp"), 10, 64)
		if d := time.Since(time.Unix(ts, 0)); d < -time.Second || d > time.Minute {
			t.Errorf("webhook-timestamp %d is %s from now", ts, d)
		}
		for h, want := range map[string]string{
			"Content-Type": "application/json",
			"User-Agent":   "Herald/" + herald.Version,
			"X-Api-Key":    "k-123",
		} {
			if got := r.Header.Get(h); got != want {
				t.Errorf("%s = %q, want %q", h, got, want)
			}
		}
		if r.Query != "source=herald&team=care+ops" {
			t.Errorf("query = %q, want the URL's own query then the configured parameters", r.Query)
		}
		var body map[string]any
		if err := json.Unmarshal(r.Body, &body); err != nil {
			t.Fatalf("body %s: %v", r.Body, err)
		}
		if body["eventId"] != id || body["eventSubtype"] != "PATIENT_CREATED" || body["tenantName"] != tenant || body["patientId"] != "pat-1" {
			t.Errorf("body %s does not describe event %s", r.Body, id)
		}
	}
	for _, id := range ids {
		if seen[id] != 1 {
			t.Errorf("event %s reached the receiver %d times, want once", id, seen[id])
		}
	}
	if len(seen) != n {
		t.Errorf("receiver saw %d distinct webhook-ids, want %d", len(seen), n)
	}
	for _, d := range ds {
		if len(d.Attempts) != 1 || d.Attempts[0].StatusCode != 200 || d.Attempts[0].Error != "" || d.WaitReason != "" {
			t.Errorf("delivery %s: attempts %+v, wait reason %q; want one clean 200", d.ID, d.Attempts, d.WaitReason)
		}
	}
}

func TestRetriesUntilTheReceiverRecovers(t *testing.T) {
	rc := newReceiver(t, func(w http.ResponseWriter, _ *http.Request, req *heraldtest.Request) {
		if req.N == 1 {
			http.Error(w, "database migration in progress", http.StatusInternalServerError)
			return
		}
		fmt.Fprint(w, `{"ok":true}`)
	})
	db, _ := mustStore(t, hook{name: "wh-flaky", url: rc.URL})
	cfg := testConfig(t, db)
	reg := prometheus.NewRegistry()
	cfg.Registerer = reg
	cfg.Schedule = []time.Duration{0, 100 * time.Millisecond}
	cfg.Jitter = -1
	e, _ := mustRun(t, cfg)

	mustCreateEvents(t, e, 1)
	d := waitStatus(t, db, "wh-flaky", 1, 10*time.Second, herald.StatusDelivered)[0]
	if len(d.Attempts) != 2 {
		t.Fatalf("attempts = %+v, want 2", d.Attempts)
	}
	a1, a2 := d.Attempts[0], d.Attempts[1]
	if a1.N != 1 || a1.StatusCode != 500 || a1.Error != "receiver answered 500 Internal Server Error" ||
		!strings.Contains(a1.ResponseBody, "database migration in progress") {
		t.Errorf("first attempt = %+v", a1)
	}
	if a2.N != 2 || a2.StatusCode != 200 || a2.Error != "" || a2.ResponseBody != `{"ok":true}` {
		t.Errorf("second attempt = %+v", a2)
	}
	if gap := a2.StartedAt.Sub(a1.StartedAt); gap < 100*time.Millisecond {
		t.Errorf("retry came %s after the first attempt; the schedule says 100ms", gap)
	}
	for outcome, want := range map[string]float64{"retrying": 1, "delivered": 1, "failed": 0} {
		if got := counter(t, reg, "herald_delivery_attempts_total", map[string]string{"outcome": outcome}); got != want {
			t.Errorf("herald_delivery_attempts_total{outcome=%q} = %g, want %g", outcome, got, want)
		}
	}
	got := rc.Requests()
	if got[0].Header.Get("webhook-id") != got[1].Header.Get("webhook-id") {
		t.Errorf("webhook-id changed between attempts: %q then %q", got[0].Header.Get("webhook-id"), got[1].Header.Get("webhook-id"))
	}
}

func TestGoneDeactivatesTheWebhook(t *testing.T) {
	rc := newReceiver(t, func(w http.ResponseWriter, _ *http.Request, _ *heraldtest.Request) { w.WriteHeader(http.StatusGone) })
	db, _ := mustStore(t, hook{name: "wh-gone", url: rc.URL})
	e, _ := mustRun(t, testConfig(t, db))

	mustCreateEvents(t, e, 1)
	d := waitStatus(t, db, "wh-gone", 1, 10*time.Second, herald.StatusFailed)[0]
	if !strings.Contains(d.WaitReason, "410 Gone") || !strings.Contains(d.WaitReason, "deactivated") {
		t.Errorf("wait reason = %q, want it to say 410 Gone and deactivated", d.WaitReason)
	}
	w, err := db.GetWebhook(context.Background(), tenant, instance, "wh-gone")
	if err != nil {
		t.Fatal(err)
	}
	if w.Active || !strings.HasPrefix(w.DeactivatedReason, "receiver answered 410 Gone at 20") {
		t.Errorf("webhook active=%v reason %q; want inactive, reason \"receiver answered 410 Gone at <time>\"", w.Active, w.DeactivatedReason)
	}
	if rc.Count() != 1 {
		t.Errorf("receiver got %d requests, want 1: 410 must stop retries", rc.Count())
	}
}

func TestRedirectIsNotFollowed(t *testing.T) {
	elsewhere := newReceiver(t, nil)
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, _ *heraldtest.Request) {
		http.Redirect(w, r, elsewhere.URL+"/new-home", http.StatusFound)
	})
	db, _ := mustStore(t, hook{name: "wh-moved", url: rc.URL})
	e, _ := mustRun(t, testConfig(t, db))

	mustCreateEvents(t, e, 1)
	d := waitStatus(t, db, "wh-moved", 1, 10*time.Second, herald.StatusRetrying)[0]
	want := "redirect to " + elsewhere.URL + "/new-home not followed"
	if len(d.Attempts) != 1 || d.Attempts[0].StatusCode != 302 || d.Attempts[0].Error != want {
		t.Errorf("attempts = %+v, want one 302 with error %q", d.Attempts, want)
	}
	if !strings.HasPrefix(d.WaitReason, want+" on attempt 1; next attempt at ") {
		t.Errorf("wait reason = %q", d.WaitReason)
	}
	if elsewhere.Count() != 0 {
		t.Errorf("the redirect target got %d requests", elsewhere.Count())
	}
}

func TestRetryAfterIsHonoured(t *testing.T) {
	rc := newReceiver(t, func(w http.ResponseWriter, _ *http.Request, _ *heraldtest.Request) {
		w.Header().Set("Retry-After", "120")
		w.WriteHeader(http.StatusServiceUnavailable)
	})
	db, _ := mustStore(t, hook{name: "wh-busy", url: rc.URL})
	e, _ := mustRun(t, testConfig(t, db))

	mustCreateEvents(t, e, 1)
	d := waitStatus(t, db, "wh-busy", 1, 10*time.Second, herald.StatusRetrying)[0]
	a := d.Attempts[0]
	end := a.StartedAt.Add(time.Duration(a.DurationMs+1) * time.Millisecond)
	if d.NextAttemptAt == nil || d.NextAttemptAt.Before(a.StartedAt.Add(120*time.Second)) || d.NextAttemptAt.After(end.Add(120*time.Second+time.Second)) {
		t.Errorf("next attempt at %v; want 120s after the attempt at %s, as Retry-After asked", d.NextAttemptAt, a.StartedAt)
	}
	if !strings.HasPrefix(d.WaitReason, "receiver answered 503 Service Unavailable on attempt 1; next attempt at ") ||
		!strings.HasSuffix(d.WaitReason, "(as Retry-After asked)") {
		t.Errorf("wait reason = %q", d.WaitReason)
	}
}

func TestTimeoutIsRecorded(t *testing.T) {
	rc := newReceiver(t, heraldtest.Hang)
	db, _ := mustStore(t, hook{name: "wh-slow", url: rc.URL, timeout: 1})
	e, _ := mustRun(t, testConfig(t, db))

	mustCreateEvents(t, e, 1)
	d := waitStatus(t, db, "wh-slow", 1, 10*time.Second, herald.StatusRetrying)[0]
	a := d.Attempts[0]
	if a.Error != "no answer within 1s" || a.StatusCode != 0 || a.DurationMs < 1000 || a.DurationMs > 3000 {
		t.Errorf("attempt = %+v; want error \"no answer within 1s\" after about 1000ms", a)
	}
	if !strings.HasPrefix(d.WaitReason, "no answer within 1s on attempt 1; next attempt at ") {
		t.Errorf("wait reason = %q", d.WaitReason)
	}
}

func TestRefusesLoopbackByDefault(t *testing.T) {
	rc := newReceiver(t, nil)
	db, hooks := mustStore(t, hook{name: "wh-local", url: rc.URL})
	cfg := testConfig(t, db)
	cfg.Destinations = netguard.Policy{}
	e, _ := mustRun(t, cfg)

	mustCreateEvents(t, e, 1)
	d := waitStatus(t, db, "wh-local", 1, 10*time.Second, herald.StatusRetrying)[0]
	want := "destination 127.0.0.1 is a loopback address; Herald refuses non-public destinations unless started with --allow-destination <CIDR> naming its range or --allow-private-destinations"
	if a := d.Attempts[0]; a.Error != want || a.StatusCode != 0 {
		t.Errorf("attempt = %+v, want error %q", a, want)
	}
	if !strings.HasPrefix(d.WaitReason, want+" on attempt 1; next attempt at ") {
		t.Errorf("wait reason = %q", d.WaitReason)
	}

	// The test action goes through the same guard.
	wh := hooks["wh-local"]
	a, err := e.TestWebhook(context.Background(), wh.Webhook, []string{wh.secret})
	if err != nil {
		t.Fatal(err)
	}
	if a.Error != want {
		t.Errorf("test attempt error = %q, want %q", a.Error, want)
	}
	if rc.Count() != 0 {
		t.Errorf("the loopback receiver got %d requests", rc.Count())
	}
}

func TestTestWebhookSendsPlaceholders(t *testing.T) {
	rc := newReceiver(t, func(w http.ResponseWriter, _ *http.Request, _ *heraldtest.Request) { fmt.Fprint(w, "thanks") })
	db, hooks := mustStore(t, hook{name: "wh-try", url: rc.URL})
	e, err := dispatch.New(testConfig(t, db)) // no Run: the test action needs none
	if err != nil {
		t.Fatal(err)
	}
	wh := hooks["wh-try"]
	rotated := herald.NewSigningSecret()
	a, err := e.TestWebhook(context.Background(), wh.Webhook, []string{rotated, wh.secret})
	if err != nil {
		t.Fatal(err)
	}
	if a.N != 1 || a.StatusCode != 200 || a.ResponseBody != "thanks" || a.Error != "" || a.StartedAt.IsZero() {
		t.Errorf("attempt = %+v", a)
	}
	got := rc.Requests()
	if len(got) != 1 {
		t.Fatalf("receiver got %d requests, want 1", len(got))
	}
	var body map[string]any
	if err := json.Unmarshal(got[0].Body, &body); err != nil {
		t.Fatal(err)
	}
	if body["sourceId"] != "SOURCE_ID" || body["eventSubtype"] != "EVENT_SUBTYPE" || body["tenantName"] != tenant || body["instanceName"] != instance {
		t.Errorf("body = %s, want placeholders with the real tenant and instance", got[0].Body)
	}
	// Both secrets sign: a receiver on either one accepts the request.
	for _, s := range []string{rotated, wh.secret} {
		v, _ := standardwebhooks.NewWebhook(s)
		if err := v.Verify(got[0].Body, got[0].Header); err != nil {
			t.Errorf("signature does not verify with one of the secrets: %v", err)
		}
	}

	wh.URL = ""
	if _, err := e.TestWebhook(context.Background(), wh.Webhook, nil); herald.ErrorCode(err) != herald.EUNPROCESSABLE {
		t.Errorf("test of a webhook without URL: err = %v, want unprocessable", err)
	}
}

// TestTestWebhookReportsFailures checks the words an admin reads when the
// receiver is not there, and that a long answer is cut to MaxResponseBody
// without breaking a character.
func TestTestWebhookReportsFailures(t *testing.T) {
	db, _ := mustStore(t)
	e, err := dispatch.New(testConfig(t, db))
	if err != nil {
		t.Fatal(err)
	}
	secret := herald.NewSigningSecret()
	w := &herald.Webhook{Tenant: tenant, Instance: instance, Name: "wh-try", TimeoutSeconds: 5,
		Payload: herald.PayloadConfig{Format: herald.FormatWelkin, PredefinedFields: herald.DefaultPredefinedFields}}

	// A port nobody listens on.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	w.URL = "http://" + ln.Addr().String() + "/hook"
	ln.Close()
	a, err := e.TestWebhook(context.Background(), w, []string{secret})
	if err != nil || a.Error != "connection refused" || a.StatusCode != 0 {
		t.Errorf("attempt = %+v, %v; want error \"connection refused\"", a, err)
	}

	long := newReceiver(t, func(w http.ResponseWriter, _ *http.Request, _ *heraldtest.Request) {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, "x"+strings.Repeat("é", 8<<10)) // 2-byte characters, cut mid-character at 4 KiB
	})
	w.URL = long.URL
	a, err = e.TestWebhook(context.Background(), w, []string{secret})
	if err != nil {
		t.Fatal(err)
	}
	if a.StatusCode != 400 || a.Error != "receiver answered 400 Bad Request" {
		t.Errorf("attempt status %d error %q", a.StatusCode, a.Error)
	}
	if len(a.ResponseBody) != herald.MaxResponseBody-1 || !utf8.ValidString(a.ResponseBody) {
		t.Errorf("response body of %d bytes (valid UTF-8: %v); want the first %d bytes less the split character",
			len(a.ResponseBody), utf8.ValidString(a.ResponseBody), herald.MaxResponseBody)
	}
}

// TestSlowReceiverDoesNotDelayOthers: a receiver that never answers holds
// at most PerWebhookInFlight senders, and another webhook's events all go
// through meanwhile, at most FastWebhookInFlight at once.
func TestSlowReceiverDoesNotDelayOthers(t *testing.T) {
	slow := newReceiver(t, heraldtest.Hang)
	fast := newReceiver(t, nil)
	db, _ := mustStore(t, hook{name: "wh-slow", url: slow.URL, timeout: 30}, hook{name: "wh-fast", url: fast.URL})
	cfg := testConfig(t, db)
	reg := prometheus.NewRegistry()
	cfg.Registerer = reg
	cfg.Concurrency = 6
	cfg.PerWebhookInFlight = 2
	cfg.FastWebhookInFlight = 3
	cfg.DrainTimeout = 100 * time.Millisecond
	e, _ := mustRun(t, cfg)

	const n = 40
	mustCreateEvents(t, e, n) // each event goes to both webhooks
	waitStatus(t, db, "wh-fast", n, 10*time.Second, herald.StatusDelivered)
	waitFor(t, 5*time.Second, "the slow receiver to be saturated", func() bool { return slow.Count() == 2 })

	if fast.Count() != n {
		t.Errorf("fast receiver got %d requests, want %d", fast.Count(), n)
	}
	maxSlow := slow.MaxInFlight()
	if maxSlow != 2 || slow.Count() != 2 {
		t.Errorf("slow receiver: %d requests, at most %d at once; want 2 (PerWebhookInFlight)", slow.Count(), maxSlow)
	}
	maxFast := fast.MaxInFlight()
	if maxFast > 3 {
		t.Errorf("fast receiver saw %d requests at once; FastWebhookInFlight is 3", maxFast)
	}
	waitFor(t, 5*time.Second, "only the slow receiver's requests to be in flight", func() bool {
		return metric(t, reg, "herald_deliveries_in_flight", nil).GetGauge().GetValue() == 2
	})
}

// TestGroupCommit: concurrent API requests are stored in a few
// transactions, and each caller gets its own results.
func TestGroupCommit(t *testing.T) {
	rc := newReceiver(t, nil)
	db, _ := mustStore(t, hook{name: "wh-sync", url: rc.URL})
	cfg := testConfig(t, db)
	reg := prometheus.NewRegistry()
	cfg.Registerer = reg
	cfg.IngestMaxWait = 20 * time.Millisecond
	cfg.IngestMaxBatch = 50
	e, _ := mustRun(t, cfg)

	const callers = 200
	var (
		wg    sync.WaitGroup
		start = make(chan struct{})
		ids   sync.Map
	)
	for i := range callers {
		wg.Go(func() {
			<-start
			ev := &herald.Event{TenantName: tenant, InstanceName: instance, Subtype: "PATIENT_CREATED", Entity: "PATIENT",
				SourceID: fmt.Sprintf("pat-%d", i)}
			res, err := e.CreateEvents(context.Background(), []*herald.Event{ev})
			if err != nil || len(res) != 1 || res[0].Err != nil || res[0].Deliveries != 1 || res[0].EventID != ev.ID {
				t.Errorf("caller %d: results %+v, err %v; want its own event with one delivery", i, res, err)
				return
			}
			ids.Store(res[0].EventID, i)
		})
	}
	close(start)
	wg.Wait()

	distinct := 0
	ids.Range(func(any, any) bool { distinct++; return true })
	if distinct != callers {
		t.Errorf("%d distinct event ids for %d callers", distinct, callers)
	}
	commits, events := histogram(t, reg, "herald_ingest_batch_size")
	if events != callers {
		t.Errorf("group commits stored %g events, want %d", events, callers)
	}
	if commits > callers/10 || commits < callers/50 {
		t.Errorf("%d callers took %d store transactions; want them coalesced into batches of at most 50", callers, commits)
	}
	waitStatus(t, db, "wh-sync", callers, 10*time.Second, herald.StatusDelivered)
}

func TestGroupCommitFailsEveryCallerOfTheBatch(t *testing.T) {
	db, _ := mustStore(t)
	cfg := testConfig(t, db)
	reg := prometheus.NewRegistry()
	cfg.Registerer = reg
	cfg.IngestMaxWait = 200 * time.Millisecond
	e, err := dispatch.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	db.Close() // the database goes away

	var wg sync.WaitGroup
	for range 5 {
		wg.Go(func() {
			ev := &herald.Event{TenantName: tenant, InstanceName: instance, Subtype: "PATIENT_CREATED", Entity: "PATIENT"}
			if res, err := e.CreateEvents(context.Background(), []*herald.Event{ev}); err == nil {
				t.Errorf("CreateEvents on a closed database = %+v, nil; want an error", res)
			}
		})
	}
	wg.Wait()
	if commits, events := histogram(t, reg, "herald_ingest_batch_size"); commits != 1 || events != 5 {
		t.Errorf("%d store calls for %g events; want the five callers in one failed batch", commits, events)
	}
}

func TestGracefulStopReleasesClaims(t *testing.T) {
	var answer sync.Map // set "ok" to let requests through
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, _ *heraldtest.Request) {
		if _, ok := answer.Load("ok"); !ok {
			<-r.Context().Done()
		}
	})
	db, _ := mustStore(t, hook{name: "wh-sync", url: rc.URL})
	cfg := testConfig(t, db)
	cfg.DrainTimeout = 200 * time.Millisecond
	e, stop := mustRun(t, cfg)

	mustCreateEvents(t, e, 3)
	waitFor(t, 5*time.Second, "the three requests to be in flight", func() bool { return rc.Count() == 3 })
	for _, d := range deliveries(t, db, "wh-sync") {
		if d.Status != herald.StatusSent {
			t.Fatalf("delivery %s is %s while its request is in flight, want SENT", d.ID, d.Status)
		}
	}
	stop()

	for _, d := range deliveries(t, db, "wh-sync") {
		if d.Status != herald.StatusPending || len(d.Attempts) != 0 || d.NextAttemptAt == nil || d.NextAttemptAt.After(time.Now()) {
			t.Errorf("after a graceful stop: %s is %s, next at %v, attempts %+v; want PENDING, due now, no attempt (the stop was not the receiver's fault)",
				d.ID, d.Status, d.NextAttemptAt, d.Attempts)
		}
	}

	// The next engine sends them at once.
	answer.Store("ok", true)
	cfg.Registerer = prometheus.NewRegistry()
	mustRun(t, cfg)
	waitStatus(t, db, "wh-sync", 3, 10*time.Second, herald.StatusDelivered)
}

// TestClaimsAheadOfSenders: the engine claims more than its senders can
// take at once and keeps the rest in a local queue (twice
// PerWebhookInFlight per webhook), so a finishing sender starts the next
// job without waiting for a claim, while the per-webhook limit on requests
// in flight holds. A graceful stop releases the queued jobs with the rest.
func TestClaimsAheadOfSenders(t *testing.T) {
	var answer atomic.Bool // let requests through
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, _ *heraldtest.Request) {
		if !answer.Load() {
			<-r.Context().Done()
		}
	})
	db, _ := mustStore(t, hook{name: "wh-sync", url: rc.URL})
	cfg := testConfig(t, db)
	reg := prometheus.NewRegistry()
	cfg.Registerer = reg
	cfg.Concurrency, cfg.PerWebhookInFlight, cfg.FastWebhookInFlight = 4, 2, 2
	cfg.DrainTimeout = 200 * time.Millisecond
	e, stop := mustRun(t, cfg)

	const n = 20
	mustCreateEvents(t, e, n)
	gauge := func(name string) float64 { return metric(t, reg, name, nil).GetGauge().GetValue() }
	// The queue is sized 4 (2 x PerWebhookInFlight), and never holds more:
	// a claim topping it up and a write handing jobs off reserve their room
	// before they run (TestSchedulerClaimAndHandoffRace).
	waitFor(t, 5*time.Second, "2 requests in flight and 4 jobs queued", func() bool {
		return rc.Count() == 2 && gauge("herald_deliveries_in_flight") == 2 && gauge("herald_deliveries_queued") == 4
	})
	if got := statuses(deliveries(t, db, "wh-sync")); got[herald.StatusSent] != 6 || got[herald.StatusPending] != n-6 {
		t.Errorf("statuses = %v; want 6 SENT (2 in flight, 4 queued), the rest PENDING", got)
	}
	stop()
	for _, d := range deliveries(t, db, "wh-sync") {
		if d.Status != herald.StatusPending || len(d.Attempts) != 0 || d.NextAttemptAt == nil || d.NextAttemptAt.After(time.Now()) {
			t.Errorf("after a graceful stop: %s is %s, next at %v, attempts %+v; want PENDING, due now, no attempt",
				d.ID, d.Status, d.NextAttemptAt, d.Attempts)
		}
	}
	if rc.Count() != 2 {
		t.Errorf("receiver got %d requests, want the 2 in flight: queued jobs must not start during the drain", rc.Count())
	}

	answer.Store(true)
	rc.ResetMaxInFlight()
	cfg.Registerer = prometheus.NewRegistry()
	mustRun(t, cfg)
	waitStatus(t, db, "wh-sync", n, 10*time.Second, herald.StatusDelivered)
	maxIn := rc.MaxInFlight()
	if maxIn > 2 {
		t.Errorf("receiver saw %d requests at once; PerWebhookInFlight is 2", maxIn)
	}
}

// TestStaleQueuedJobIsClaimedAgain: a job that waited in its queue longer
// than a few seconds (behind a slow request) is not started with the
// webhook as it was at its claim; it is released and claimed again afresh,
// and sent once.
func TestStaleQueuedJobIsClaimedAgain(t *testing.T) {
	unblock := make(chan struct{})
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, req *heraldtest.Request) {
		if req.N == 1 {
			select {
			case <-unblock:
			case <-r.Context().Done():
			}
		}
	})
	db, _ := mustStore(t, hook{name: "wh-sync", url: rc.URL, timeout: 30})
	clock := heraldtest.NewRunningClock() // the engine's, moved ahead below
	cfg := testConfig(t, db)
	reg := prometheus.NewRegistry()
	cfg.Registerer = reg
	cfg.Now = clock.Now
	cfg.Concurrency, cfg.PerWebhookInFlight = 1, 1
	cfg.Lease = 10 * time.Minute
	e, _ := mustRun(t, cfg)

	mustCreateEvents(t, e, 2)
	waitFor(t, 5*time.Second, "one request in flight and one job queued", func() bool {
		return rc.Count() == 1 && metric(t, reg, "herald_deliveries_queued", nil).GetGauge().GetValue() == 1
	})
	// The queued job has now waited 6s.
	clock.Advance(6 * time.Second)
	close(unblock)
	ds := waitStatus(t, db, "wh-sync", 2, 10*time.Second, herald.StatusDelivered)
	for _, d := range ds {
		if len(d.Attempts) != 1 {
			t.Errorf("delivery %s has %d attempts, want 1", d.ID, len(d.Attempts))
		}
	}
	if rc.Count() != 2 {
		t.Errorf("receiver got %d requests, want 2", rc.Count())
	}
	for name, want := range map[string]float64{"herald_queue_dropped_total": 1, "herald_orphaned_claims_released_total": 1} {
		if got := counter(t, reg, name, nil); got != want {
			t.Errorf("%s = %g, want %g", name, got, want)
		}
	}
	waitIdle(t, e)
}

// TestGoneEmptiesTheQueue: after a 410 Gone, the webhook's queued jobs are
// not sent; recording the 410 cancels them with the webhook's other
// deliveries.
func TestGoneEmptiesTheQueue(t *testing.T) {
	rc := newReceiver(t, func(w http.ResponseWriter, _ *http.Request, _ *heraldtest.Request) { w.WriteHeader(http.StatusGone) })
	db, _ := mustStore(t, hook{name: "wh-gone", url: rc.URL})
	cfg := testConfig(t, db)
	cfg.PerWebhookInFlight, cfg.FastWebhookInFlight = 1, 1 // one request at a time, two queued
	e, _ := mustRun(t, cfg)

	mustCreateEvents(t, e, 3)
	ds := waitStatus(t, db, "wh-gone", 3, 10*time.Second, herald.StatusFailed, herald.StatusCancelled)
	if got := statuses(ds); got[herald.StatusFailed] != 1 || got[herald.StatusCancelled] != 2 {
		t.Errorf("statuses = %v, want the one sent FAILED and the other two CANCELLED", got)
	}
	if rc.Count() != 1 {
		t.Errorf("receiver got %d requests, want 1: nothing more after 410 Gone", rc.Count())
	}
	waitIdle(t, e)
}

// TestLeaseTakeover: a node claims deliveries and dies without recording
// anything; once its lease runs out, another node sends them.
func TestLeaseTakeover(t *testing.T) {
	rc := newReceiver(t, nil)
	db, _ := mustStore(t, hook{name: "wh-sync", url: rc.URL})
	ctx := context.Background()

	// Events stored, then claimed by a node that crashes right after.
	crashed, err := dispatch.New(testConfig(t, db))
	if err != nil {
		t.Fatal(err)
	}
	mustCreateEvents(t, crashed, 4)
	now := time.Now()
	jobs, err := db.ClaimDeliveries(ctx, queue.ClaimRequest{Owner: "node-crashed", Now: now, LeaseUntil: now.Add(time.Minute), Limit: 10, PerWebhook: 10})
	if err != nil || len(jobs) != 4 {
		t.Fatalf("claim as the doomed node: %d jobs, %v", len(jobs), err)
	}

	// A node whose clock is past the lease takes them over.
	cfg := testConfig(t, db)
	cfg.Owner = "node-survivor"
	cfg.Now = func() time.Time { return time.Now().Add(time.Minute + 31*time.Second) } // the lease plus the 30s timeout
	mustRun(t, cfg)
	ds := waitStatus(t, db, "wh-sync", 4, 10*time.Second, herald.StatusDelivered)
	for _, d := range ds {
		if len(d.Attempts) != 1 {
			t.Errorf("delivery %s has attempts %+v, want the survivor's one", d.ID, d.Attempts)
		}
	}
	if rc.Count() != 4 {
		t.Errorf("receiver got %d requests, want 4", rc.Count())
	}
}

// TestLostClaimIsReleased: a claim commits in the database but its answer
// never reaches the engine, as when the connection to PostgreSQL breaks
// around the commit. Once the database answers again, the engine releases
// what that claim took, long before the lease would have run out, and
// keeps the claim it is still working on.
func TestLostClaimIsReleased(t *testing.T) {
	unblock := make(chan struct{})
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, req *heraldtest.Request) {
		if req.N == 1 {
			select { // the first request stays in flight until the end
			case <-unblock:
			case <-r.Context().Done():
			}
		}
	})
	e, db, store, reg := runLossy(t, rc)

	inFlight := mustCreateEvents(t, e, 1)[0]
	waitFor(t, 5*time.Second, "the first request to be in flight", func() bool { return rc.Count() == 1 })

	store.lose.Store(true)
	// Stored by another node, so they are PENDING for this one to claim.
	other := make([]*herald.Event, 3)
	for i := range other {
		other[i] = &herald.Event{TenantName: tenant, InstanceName: instance, Entity: "PATIENT", Subtype: "PATIENT_CREATED"}
	}
	if _, err := db.CreateEvents(context.Background(), other); err != nil {
		t.Fatal(err)
	}
	var lost []string
	select {
	case lost = <-store.lost:
	case <-time.After(5 * time.Second):
		t.Fatal("no claim of the three new deliveries")
	}
	if len(lost) != 3 {
		t.Fatalf("the lost claim took %d deliveries, want 3", len(lost))
	}
	waitFor(t, 10*time.Second, "the deliveries of the lost claim to be delivered", func() bool {
		for _, id := range lost {
			if d, err := db.GetDelivery(context.Background(), tenant, instance, id); err != nil || d.Status != herald.StatusDelivered {
				return false
			}
		}
		return true
	})
	// The delivery in flight kept its claim: not released, not sent twice.
	for _, d := range deliveries(t, db, "wh-sync") {
		if d.EventID == inFlight && d.Status != herald.StatusSent {
			t.Errorf("the delivery in flight is %s, want SENT: its claim was released under it", d.Status)
		}
	}
	close(unblock)
	waitStatus(t, db, "wh-sync", 4, 10*time.Second, herald.StatusDelivered)
	seen := map[string]int{}
	for _, r := range rc.Requests() {
		seen[r.Header.Get("webhook-id")]++
	}
	if len(seen) != 4 || rc.Count() != 4 {
		t.Errorf("receiver got %d requests for %d events, want each of the 4 once", rc.Count(), len(seen))
	}
	if got := counter(t, reg, "herald_orphaned_claims_released_total", nil); got != 3 {
		t.Errorf("herald_orphaned_claims_released_total = %g, want 3", got)
	}
	waitIdle(t, e)
}

// TestLostHandoffIsReleased: a write that stores events and claims their
// deliveries for this node commits, but its answer is lost. The producer
// gets an error (and would retry), the events are stored all the same, and
// the engine releases the deliveries the write claimed for it, so they are
// sent promptly instead of after the lease.
func TestLostHandoffIsReleased(t *testing.T) {
	rc := newReceiver(t, nil)
	e, db, store, reg := runLossy(t, rc)

	store.loseWrite.Store(true)
	events := make([]*herald.Event, 3)
	for i := range events {
		events[i] = &herald.Event{TenantName: tenant, InstanceName: instance, Entity: "PATIENT", Subtype: "PATIENT_CREATED"}
	}
	if _, err := e.CreateEvents(context.Background(), events); err == nil {
		t.Fatal("CreateEvents succeeded; want the injected error")
	}
	lost := <-store.lost
	waitStatus(t, db, "wh-sync", 3, 10*time.Second, herald.StatusDelivered)
	if rc.Count() != 3 {
		t.Errorf("receiver got %d requests, want 3", rc.Count())
	}
	if got := counter(t, reg, "herald_orphaned_claims_released_total", nil); got != float64(len(lost)) {
		t.Errorf("herald_orphaned_claims_released_total = %g, want %d", got, len(lost))
	}
	waitIdle(t, e)
}

// runLossy runs an engine on a lossyStore with one webhook sending to rc,
// and a lease far beyond the test: only a release can explain a prompt
// delivery.
func runLossy(t *testing.T, rc *heraldtest.Receiver) (*dispatch.Engine, *sqlstore.DB, *lossyStore, *prometheus.Registry) {
	t.Helper()
	db, _ := mustStore(t, hook{name: "wh-sync", url: rc.URL})
	store := &lossyStore{DB: db, lost: make(chan []string, 1)}
	cfg := testConfig(t, db)
	cfg.Store = store
	cfg.Lease = time.Hour
	reg := prometheus.NewRegistry()
	cfg.Registerer = reg
	e, _ := mustRun(t, cfg)
	return e, db, store, reg
}

// TestRetriesForADayThenFails walks one delivery through the default
// schedule on a test clock shared by the store and the engine: the
// receiver always fails, and the delivery is FAILED once the next attempt
// would fall outside the 24h window.
func TestRetriesForADayThenFails(t *testing.T) {
	rc := newReceiver(t, func(w http.ResponseWriter, _ *http.Request, _ *heraldtest.Request) {
		w.WriteHeader(http.StatusBadGateway)
	})
	clock := heraldtest.NewClock(time.Now())
	db := storekit.OpenSQLite(t, sqlstore.Config{Now: clock.Now})
	mustSetup(t, db, hook{name: "wh-down", url: rc.URL})
	cfg := testConfig(t, db)
	cfg.Now = clock.Now
	cfg.Jitter = -1 // the waits are exact, so the count of attempts is known
	e, _ := mustRun(t, cfg)

	mustCreateEvents(t, e, 1)
	first := clock.Now()
	var d *herald.Delivery
	for n := 1; ; n++ {
		waitFor(t, 10*time.Second, fmt.Sprintf("attempt %d to be recorded", n), func() bool {
			d = deliveries(t, db, "wh-down")[0]
			return len(d.Attempts) == n && d.Status != herald.StatusSent
		})
		if d.Status != herald.StatusRetrying {
			break
		}
		if !strings.HasPrefix(d.WaitReason, fmt.Sprintf("receiver answered 502 Bad Gateway on attempt %d; next attempt at ", n)) {
			t.Errorf("wait reason after attempt %d = %q", n, d.WaitReason)
		}
		clock.Advance(d.NextAttemptAt.Sub(clock.Now()))
		e.Wake()
	}
	if d.Status != herald.StatusFailed || d.NextAttemptAt != nil {
		t.Fatalf("delivery is %s, next at %v; want FAILED, due never", d.Status, d.NextAttemptAt)
	}
	// 0, 5s, 30s, 2m, 10m, 30m, 1h, 2h, 4h, 8h, 8h: the eleventh attempt is
	// 23h42m35s after the first, and 8h more would pass the window.
	if len(d.Attempts) != 11 {
		t.Errorf("%d attempts, want 11", len(d.Attempts))
	}
	if last := d.Attempts[len(d.Attempts)-1].StartedAt.Sub(first); last.Round(time.Second) != 23*time.Hour+42*time.Minute+35*time.Second {
		t.Errorf("last attempt %s after the first, want 23h42m35s", last)
	}
	if !strings.HasPrefix(d.WaitReason, "receiver answered 502 Bad Gateway on attempt 11; gave up: the next attempt would have been after ") ||
		!strings.Contains(d.WaitReason, "the end of the 24h retry window that began at "+first.UTC().Format(time.RFC3339)) {
		t.Errorf("wait reason = %q", d.WaitReason)
	}
	if rc.Count() != 11 {
		t.Errorf("receiver got %d requests, want 11", rc.Count())
	}
}

// TestResendStartsTheScheduleOver: a resend starts a fresh retry window,
// and with it the schedule: the first failure after it waits 5s, however
// many attempts were made before.
func TestResendStartsTheScheduleOver(t *testing.T) {
	rc := newReceiver(t, func(w http.ResponseWriter, _ *http.Request, _ *heraldtest.Request) {
		w.WriteHeader(http.StatusBadGateway)
	})
	clock := heraldtest.NewClock(time.Now())
	db := storekit.OpenSQLite(t, sqlstore.Config{Now: clock.Now})
	mustSetup(t, db, hook{name: "wh-down", url: rc.URL})
	cfg := testConfig(t, db)
	cfg.Now = clock.Now
	cfg.Jitter = -1
	e, _ := mustRun(t, cfg)

	mustCreateEvents(t, e, 1)
	var d *herald.Delivery
	attempt := func(n int) time.Duration {
		t.Helper()
		waitFor(t, 10*time.Second, fmt.Sprintf("attempt %d to be recorded", n), func() bool {
			d = deliveries(t, db, "wh-down")[0]
			return len(d.Attempts) == n && d.Status == herald.StatusRetrying
		})
		return d.NextAttemptAt.Sub(d.Attempts[n-1].StartedAt)
	}
	for n, want := range []time.Duration{5 * time.Second, 30 * time.Second, 2 * time.Minute} {
		if got := attempt(n + 1); got != want {
			t.Fatalf("wait after attempt %d = %s, want %s", n+1, got, want)
		}
		if n < 2 {
			clock.Advance(d.NextAttemptAt.Sub(clock.Now()))
			e.Wake()
		}
	}
	if _, err := db.ResendDelivery(context.Background(), tenant, instance, d.ID); err != nil {
		t.Fatal(err)
	}
	if got := attempt(4); got != 5*time.Second {
		t.Fatalf("wait after the first attempt since the resend = %s, want 5s: the schedule starts over (reason %q)", got, d.WaitReason)
	}
	clock.Advance(d.NextAttemptAt.Sub(clock.Now()))
	e.Wake()
	if got := attempt(5); got != 30*time.Second {
		t.Errorf("wait after the second attempt since the resend = %s, want 30s (reason %q)", got, d.WaitReason)
	}
}

func TestMaintainerRunsWhenLeader(t *testing.T) {
	rc := newReceiver(t, nil)
	db, _ := mustStore(t, hook{name: "wh-sync", url: rc.URL})
	e, _ := mustRun(t, testConfig(t, db))
	mustCreateEvents(t, e, 3)
	waitStatus(t, db, "wh-sync", 3, 10*time.Second, herald.StatusDelivered)

	runs := make(chan dispatch.MaintenanceRun, 10)
	reg := prometheus.NewRegistry()
	m, err := dispatch.NewMaintainer(dispatch.MaintainerConfig{
		Store:      db,
		Lead:       db.TryLead,
		Now:        func() time.Time { return time.Now().Add(31 * 24 * time.Hour) }, // past the retention
		Logger:     testLogger(t),
		Interval:   time.Hour,
		PurgeBatch: 2, // the purge loops in batches
		Registerer: reg,
		OnRun:      func(r dispatch.MaintenanceRun) { runs <- r },
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- m.Run(ctx) }()
	var run dispatch.MaintenanceRun
	select {
	case run = <-runs:
	case <-time.After(10 * time.Second):
		t.Fatal("no maintenance run")
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v", err)
	}
	if !run.Leader || run.Err != nil || run.PurgedDeliveries != 3 {
		t.Errorf("run = %+v; want the leader to purge the 3 delivered deliveries", run)
	}
	if ds := deliveries(t, db, "wh-sync"); len(ds) != 0 {
		t.Errorf("%d deliveries left after the purge", len(ds))
	}
	if got := counter(t, reg, "herald_maintenance_runs_total", map[string]string{"role": "leader"}); got != 1 {
		t.Errorf("herald_maintenance_runs_total{role=leader} = %g, want 1", got)
	}

	// A node that does not lead does nothing.
	follower, err := dispatch.NewMaintainer(dispatch.MaintainerConfig{
		Store: db, Lead: func(context.Context) (bool, error) { return false, nil },
		Logger: testLogger(t), Registerer: prometheus.NewRegistry(),
	})
	if err != nil {
		t.Fatal(err)
	}
	if r := follower.RunOnce(context.Background()); r.Leader || r.Err != nil || r.PurgedDeliveries != 0 {
		t.Errorf("follower run = %+v, want nothing done", r)
	}
}

// TestMaintainerPurgesEveryFinalState: past retention, deliveries that
// ended (DELIVERED, FAILED, CANCELLED) go with their attempts and events; a
// delivery still owed stays, however old, and so does its event.
func TestMaintainerPurgesEveryFinalState(t *testing.T) {
	ctx := context.Background()
	clock := heraldtest.NewClock(storetest.Epoch)
	db := storekit.OpenSQLite(t, sqlstore.Config{Now: clock.Now})
	hooks := mustSetup(t, db, hook{name: "wh", url: "https://receiver.example/wh"}, hook{name: "gone", url: "https://receiver.example/gone"})
	var events []*herald.Event
	for range 3 {
		events = append(events, &herald.Event{TenantName: tenant, InstanceName: instance, Entity: "PATIENT", Subtype: "PATIENT_CREATED"})
	}
	if _, err := db.CreateEvents(ctx, events); err != nil {
		t.Fatal(err)
	}
	claim := func(exclude string) map[string]*queue.Job { // by event id
		now := clock.Now()
		jobs, err := db.ClaimDeliveries(ctx, queue.ClaimRequest{Owner: "n1", Now: now, LeaseUntil: now.Add(time.Minute),
			Limit: 10, PerWebhook: 10, ExcludeWebhooks: []string{hooks[exclude].ID}})
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]*queue.Job{}
		for _, j := range jobs {
			out[j.Delivery.EventID] = j
		}
		return out
	}
	wh, gone := claim("gone"), claim("wh")
	result := func(j *queue.Job, status string) herald.AttemptResult {
		return herald.AttemptResult{DeliveryID: j.Delivery.ID, Attempt: herald.Attempt{StartedAt: clock.Now(), StatusCode: 503},
			Status: status, NextAttemptAt: clock.Now().Add(40 * 24 * time.Hour)}
	}
	failed, retrying, delivered := wh[events[0].ID], wh[events[1].ID], wh[events[2].ID]
	err := db.RecordAttempts(ctx, []herald.AttemptResult{result(failed, herald.StatusFailed), result(retrying, herald.StatusRetrying),
		result(delivered, herald.StatusDelivered), result(gone[events[0].ID], herald.StatusRetrying)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.DeactivateWebhook(ctx, tenant, instance, "gone", "retired"); err != nil { // its three are CANCELLED
		t.Fatal(err)
	}

	clock.Advance(31 * 24 * time.Hour)
	m, err := dispatch.NewMaintainer(dispatch.MaintainerConfig{Store: db, Now: clock.Now, Logger: testLogger(t),
		PurgeBatch: 2, Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	run := m.RunOnce(ctx)
	if run.Err != nil || run.PurgedDeliveries != 5 || run.PurgedAttempts != 3 || run.PurgedEvents != 2 {
		t.Errorf("run = %+v; want 5 deliveries (FAILED, DELIVERED, 3 CANCELLED), 3 attempts, 2 events", run)
	}
	if got := statuses(deliveries(t, db, "")); len(got) != 1 || got[herald.StatusRetrying] != 1 {
		t.Errorf("left after retention: %v, want the RETRYING one", got)
	}
	if d, err := db.GetDelivery(ctx, tenant, instance, retrying.Delivery.ID); err != nil || len(d.Attempts) != 1 {
		t.Errorf("the RETRYING delivery: %+v, %v; want it with its attempt", d, err)
	}
	if _, err := db.GetEvent(ctx, tenant, instance, events[1].ID); err != nil {
		t.Errorf("the RETRYING delivery's event: %v", err)
	}
	for _, ev := range []*herald.Event{events[0], events[2]} {
		if _, err := db.GetEvent(ctx, tenant, instance, ev.ID); herald.ErrorCode(err) != herald.ENOTFOUND {
			t.Errorf("event of finished deliveries after retention: %v, want not found", err)
		}
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	db, _ := mustStore(t)
	for _, tc := range []struct {
		name  string
		mod   func(*dispatch.Config)
		field string // the error names Config.<field>
	}{
		{"no store", func(c *dispatch.Config) { c.Store = nil }, "Store"},
		{"negative concurrency", func(c *dispatch.Config) { c.Concurrency = -1 }, "Concurrency"},
		{"negative in-flight", func(c *dispatch.Config) { c.PerWebhookInFlight = -1 }, "PerWebhookInFlight"},
		{"negative lease", func(c *dispatch.Config) { c.Lease = -time.Second }, "Lease"},
		{"lease within the queue wait", func(c *dispatch.Config) { c.Lease = 5 * time.Second }, "Lease"},
		{"negative poll", func(c *dispatch.Config) { c.PollInterval = -time.Second }, "PollInterval"},
		{"negative retry window", func(c *dispatch.Config) { c.RetryWindow = -time.Hour }, "RetryWindow"},
		{"negative batch", func(c *dispatch.Config) { c.IngestMaxBatch = -1 }, "IngestMaxBatch"},
		{"negative writers", func(c *dispatch.Config) { c.Writers = -1 }, "Writers"},
		{"negative ingest wait", func(c *dispatch.Config) { c.IngestMaxWait = -time.Millisecond }, "IngestMaxWait"},
		{"negative drain", func(c *dispatch.Config) { c.DrainTimeout = -time.Second }, "DrainTimeout"},
		{"schedule ends at 0", func(c *dispatch.Config) { c.Schedule = []time.Duration{0, time.Second, 0} }, "Schedule"},
		{"schedule with a negative wait", func(c *dispatch.Config) { c.Schedule = []time.Duration{-time.Second, time.Second} }, "Schedule"},
		{"jitter 1", func(c *dispatch.Config) { c.Jitter = 1 }, "Jitter"},
	} {
		cfg := testConfig(t, db)
		tc.mod(&cfg)
		_, err := dispatch.New(cfg)
		if err == nil || !strings.Contains(err.Error(), "Config."+tc.field+" ") {
			t.Errorf("%s: New = %v, want an error naming Config.%s", tc.name, err, tc.field)
		}
	}
	// Two engines cannot share one registry: their metrics would collide.
	cfg := testConfig(t, db)
	if _, err := dispatch.New(cfg); err != nil {
		t.Fatal(err)
	}
	if _, err := dispatch.New(cfg); err == nil || !strings.Contains(err.Error(), "Registerer") {
		t.Errorf("second engine on one registry: err = %v", err)
	}
}

// TestOverflowIsClaimedWithoutWaitingForThePoll: a burst larger than the
// queues is handed off as far as they have room and the rest left
// PENDING; as the queues drain, the claim loop takes the rest at once,
// not at its next poll (a minute here, and no store wake-ups).
func TestOverflowIsClaimedWithoutWaitingForThePoll(t *testing.T) {
	rc := newReceiver(t, nil)
	db, _ := mustStore(t, hook{name: "wh-sync", url: rc.URL})
	cfg := testConfig(t, db)
	reg := prometheus.NewRegistry()
	cfg.Registerer = reg
	cfg.Concurrency, cfg.PerWebhookInFlight, cfg.FastWebhookInFlight = 2, 1, 1 // all queues together: 128 jobs
	cfg.PollInterval = time.Minute
	cfg.Wake = make(chan struct{}) // no store wake-ups
	e, _ := mustRun(t, cfg)

	// One event first, so the claim loop has made its first claim and
	// sleeps on its poll when the burst comes.
	mustCreateEvents(t, e, 1)
	waitStatus(t, db, "wh-sync", 1, 5*time.Second, herald.StatusDelivered)
	const n = 300
	mustCreateEvents(t, e, n)
	waitStatus(t, db, "wh-sync", n+1, 10*time.Second, herald.StatusDelivered)
	handedOff := counter(t, reg, "herald_deliveries_handed_off_total", nil)
	if handedOff == 0 || handedOff >= n {
		t.Errorf("%g of %d deliveries handed off; want some, and the rest claimed", handedOff, n+1)
	}
	if rc.Count() != n+1 {
		t.Errorf("receiver got %d requests, want %d", rc.Count(), n+1)
	}
	// Every first attempt's wait is observed once, handed off or claimed.
	if lags, _ := histogram(t, reg, "herald_queue_lag_seconds"); lags != n+1 {
		t.Errorf("herald_queue_lag_seconds counted %d deliveries, want %d", lags, n+1)
	}
}

// TestMaintainerAudit: maintenance records the webhooks it deactivates in
// the audit trail as the system, purges entries past the audit retention
// (apart from event retention), and logs the chain head.
func TestMaintainerAudit(t *testing.T) {
	ctx := context.Background()
	clock := heraldtest.NewClock(storetest.Epoch)
	db := storekit.OpenSQLite(t, sqlstore.Config{Now: clock.Now})
	for i := range 3 {
		if err := db.AppendAudit(ctx, &herald.AuditEntry{ActorType: herald.ActorAPIClient, Actor: "admin", Action: fmt.Sprintf("test.%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	clock.Advance(7 * 365 * 24 * time.Hour) // past the audit retention
	hooks := mustSetup(t, db, hook{name: "wh", url: "https://receiver.example/wh"})
	// Every attempt fails for six days: the webhook is deactivated.
	if _, err := db.CreateEvents(ctx, []*herald.Event{{TenantName: tenant, InstanceName: instance, Entity: "PATIENT", Subtype: "PATIENT_CREATED"}}); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if i > 0 {
			clock.Advance(6 * 24 * time.Hour)
		}
		now := clock.Now()
		jobs, err := db.ClaimDeliveries(ctx, queue.ClaimRequest{Owner: "n1", Now: now, LeaseUntil: now.Add(time.Minute), Limit: 10, PerWebhook: 10})
		if err != nil || len(jobs) != 1 || jobs[0].Webhook.ID != hooks["wh"].ID {
			t.Fatalf("claim: %v %v", jobs, err)
		}
		if err := db.RecordAttempts(ctx, []herald.AttemptResult{{DeliveryID: jobs[0].Delivery.ID, Attempt: herald.Attempt{StartedAt: now, StatusCode: 500},
			Status: herald.StatusRetrying, NextAttemptAt: now.Add(6 * 24 * time.Hour)}}); err != nil {
			t.Fatal(err)
		}
	}
	var logs strings.Builder
	var mu sync.Mutex
	m, err := dispatch.NewMaintainer(dispatch.MaintainerConfig{Store: db, Audit: db, Now: clock.Now, Registerer: prometheus.NewRegistry(),
		Logger: slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
			mu.Lock()
			defer mu.Unlock()
			return logs.Write(p)
		}), nil))})
	if err != nil {
		t.Fatal(err)
	}
	run := m.RunOnce(ctx)
	if run.Err != nil || len(run.Deactivated) != 1 || run.PurgedAudit != 3 {
		t.Fatalf("run = %+v; want the webhook deactivated and the 3 old audit entries purged", run)
	}
	entries, _, err := db.ListAudit(ctx, herald.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Action != "webhook.deactivate" || entries[0].ActorType != herald.ActorSystem ||
		entries[0].Target != "webhook wh" || entries[0].Seq != 4 || !strings.Contains(string(entries[0].Diff), "failing since") {
		t.Fatalf("audit after the run: %+v", entries)
	}
	head, err := db.AuditHead(ctx)
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	logged := logs.String()
	mu.Unlock()
	if want := fmt.Sprintf("head=%d:%s", head.Seq, head.Hash); !strings.Contains(logged, "audit chain head") || !strings.Contains(logged, want) {
		t.Fatalf("log does not give the chain head %s:\n%s", want, logged)
	}
	// The audit entries are kept by their own retention, not the events'.
	clock.Advance(40 * 24 * time.Hour)
	if run := m.RunOnce(ctx); run.Err != nil || run.PurgedAudit != 0 {
		t.Fatalf("second run = %+v; want the recent entry kept", run)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
