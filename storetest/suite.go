package storetest

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/heraldhooks/herald"
	"github.com/heraldhooks/herald/heraldtest"
	"github.com/heraldhooks/herald/queue"
)

// env is what each subtest gets: its store, clock and helpers.
type env struct {
	*testing.T
	S      UnderTest
	rewrap func(context.Context) error // Store.Rewrap
	Clock  *heraldtest.Clock
	Ctx    context.Context
}

type testCase struct {
	name string
	fn   func(e *env)
}

// suite is filled by the test files' init functions, one per area.
var suite []testCase

func register(name string, fn func(e *env)) { suite = append(suite, testCase{name, fn}) }

// must fails the test on err.
func (e *env) must(err error) {
	e.Helper()
	if err != nil {
		e.Fatal(err)
	}
}

// wantCode fails unless err carries code; with msg, also unless the message
// contains it.
func (e *env) wantCode(err error, code string, msg ...string) {
	e.Helper()
	if got := herald.ErrorCode(err); got != code {
		e.Fatalf("error %v: code %q, want %q", err, got, code)
	}
	for _, m := range msg {
		if !strings.Contains(herald.ErrorMessage(err), m) {
			e.Fatalf("error message %q does not contain %q", herald.ErrorMessage(err), m)
		}
	}
}

// hook describes a webhook for setup.
type hook struct {
	name     string
	triggers []herald.Trigger
	inactive bool
}

func subtype(s string) herald.Trigger { return herald.Trigger{EventSubtype: s} }
func entity(s string) herald.Trigger  { return herald.Trigger{EventEntity: s} }

// setup creates tenant and instance (if new), publishes hooks in the
// designer, gives each a URL and activates those not marked inactive. It
// returns the instance's webhooks by name.
func (e *env) setup(tenant, instance string, hooks ...hook) map[string]*herald.Webhook {
	e.Helper()
	if _, err := e.S.GetTenant(e.Ctx, tenant); herald.ErrorCode(err) == herald.ENOTFOUND {
		_, err = e.S.CreateTenant(e.Ctx, tenant)
		e.must(err)
	}
	if _, err := e.S.GetInstance(e.Ctx, tenant, instance); herald.ErrorCode(err) == herald.ENOTFOUND {
		_, err = e.S.CreateInstance(e.Ctx, tenant, instance)
		e.must(err)
	}
	for _, h := range hooks {
		e.must(e.S.CreateDesignerWebhook(e.Ctx, tenant, &herald.DesignerWebhook{Name: h.name, Title: "Hook " + h.name, Triggers: h.triggers}))
	}
	if len(hooks) > 0 {
		_, err := e.S.Publish(e.Ctx, tenant, "setup", "suite")
		e.must(err)
	}
	out := map[string]*herald.Webhook{}
	for _, h := range hooks {
		url := "https://example.com/hooks/" + h.name
		w, err := e.S.UpdateWebhook(e.Ctx, tenant, instance, h.name, herald.WebhookUpdate{URL: &url})
		e.must(err)
		if !h.inactive {
			w, err = e.S.ActivateWebhook(e.Ctx, tenant, instance, h.name)
			e.must(err)
		}
		out[h.name] = w
	}
	return out
}

// event returns a valid event of the given subtype.
func event(tenant, instance, sub string) *herald.Event {
	ev := &herald.Event{TenantName: tenant, InstanceName: instance, Subtype: sub, SourceID: "src-1", PatientID: "pat-1"}
	if err := ev.Validate(""); err != nil {
		panic(err)
	}
	return ev
}

// create stores events and fails on any error, including per-event ones.
func (e *env) create(events ...*herald.Event) []herald.EventResult {
	e.Helper()
	res, err := e.S.CreateEvents(e.Ctx, events)
	e.must(err)
	if len(res) != len(events) {
		e.Fatalf("CreateEvents returned %d results for %d events", len(res), len(events))
	}
	for i, r := range res {
		if r.Err != nil {
			e.Fatalf("event %d: %v", i, r.Err)
		}
	}
	return res
}

// claim claims with sensible defaults: now, a one-minute lease.
func (e *env) claim(owner string, limit, perWebhook int, exclude ...string) []*queue.Job {
	e.Helper()
	now := e.Clock.Now()
	jobs, err := e.S.ClaimDeliveries(e.Ctx, queue.ClaimRequest{Owner: owner, Now: now, LeaseUntil: now.Add(time.Minute),
		Limit: limit, PerWebhook: perWebhook, ExcludeWebhooks: exclude})
	e.must(err)
	return jobs
}

// deliveries lists every delivery of an instance matching f, all pages.
func (e *env) deliveries(f herald.DeliveryFilter) []*herald.Delivery {
	e.Helper()
	var out []*herald.Delivery
	for {
		page, next, err := e.S.ListDeliveries(e.Ctx, f)
		e.must(err)
		out = append(out, page...)
		if next == "" {
			return out
		}
		f.Cursor = next
	}
}

func (e *env) delivery(tenant, instance, id string) *herald.Delivery {
	e.Helper()
	d, err := e.S.GetDelivery(e.Ctx, tenant, instance, id)
	e.must(err)
	return d
}

// statuses counts deliveries by status.
func statuses(ds []*herald.Delivery) map[string]int {
	out := map[string]int{}
	for _, d := range ds {
		out[d.Status]++
	}
	return out
}

func ids(jobs []*queue.Job) []string {
	var out []string
	for _, j := range jobs {
		out = append(out, j.Delivery.ID)
	}
	slices.Sort(out)
	return out
}

func jsonString(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func ptr[T any](v T) *T { return &v }
