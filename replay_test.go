package herald_test

import (
	"errors"
	"testing"
	"time"

	"github.com/heraldhooks/herald"
)

func TestValidateReplayWindow(t *testing.T) {
	now := time.Date(2026, 11, 26, 17, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	for _, tc := range []struct {
		name         string
		since, until time.Time
		retention    time.Duration
		field        string
		wantUntil    time.Time
	}{
		{"until defaults to now", now.Add(-time.Hour), time.Time{}, day, "", now},
		{"a window in the past", now.Add(-2 * time.Hour), now.Add(-time.Hour), day, "", now.Add(-time.Hour)},
		{"since is required", time.Time{}, now, day, "since", time.Time{}},
		{"until in the future", now.Add(-time.Hour), now.Add(time.Second), day, "until", time.Time{}},
		{"since equal to until", now.Add(-time.Hour), now.Add(-time.Hour), day, "since", time.Time{}},
		{"since after until", now.Add(-time.Hour), now.Add(-2 * time.Hour), day, "since", time.Time{}},
		{"since before the retention", now.Add(-day - time.Second), time.Time{}, day, "since", time.Time{}},
		{"since at the retention", now.Add(-day), time.Time{}, day, "", now},
		{"no retention: any past since", now.Add(-1000 * day), time.Time{}, 0, "", now},
	} {
		_, until, err := herald.ValidateReplayWindow(tc.since, tc.until, now, tc.retention)
		if tc.field == "" {
			if err != nil || !until.Equal(tc.wantUntil) {
				t.Errorf("%s: until %v, %v; want %v, nil", tc.name, until, err, tc.wantUntil)
			}
			continue
		}
		var he *herald.Error
		if !errors.As(err, &he) || he.Code != herald.EINVALID || he.Field != tc.field {
			t.Errorf("%s: %v, want EINVALID naming %s", tc.name, err, tc.field)
		}
	}
}

// TestReplayRule: an event its webhook selects gets a new delivery unless
// one of its deliveries to the webhook is DELIVERED or owed; the
// selection is the ingest's (PlanEvent): the triggers, and an active
// webhook.
func TestReplayRule(t *testing.T) {
	for _, tc := range []struct {
		statuses []string
		want     bool
	}{
		{nil, true},
		{[]string{herald.StatusFailed}, true},
		{[]string{herald.StatusCancelled, herald.StatusFailed}, true},
		{[]string{herald.StatusDelivered}, false},
		{[]string{herald.StatusPending}, false},
		{[]string{herald.StatusSent}, false},
		{[]string{herald.StatusRetrying}, false},
		{[]string{herald.StatusHeld}, false}, // owed: waits for the one before it of its key
		{[]string{herald.StatusFailed, herald.StatusDelivered}, false},
	} {
		if got := herald.ReplayWants(tc.statuses); got != tc.want {
			t.Errorf("ReplayWants(%v) = %v, want %v", tc.statuses, got, tc.want)
		}
	}
	w := &herald.Webhook{Active: true, Triggers: []herald.Trigger{{EventSubtype: "PATIENT_CREATED"}, {EventEntity: "CDT"}}}
	for _, tc := range []struct {
		e    herald.Event
		want bool
	}{
		{herald.Event{Entity: "PATIENT", Subtype: "PATIENT_CREATED"}, true},
		{herald.Event{Entity: "PATIENT", Subtype: "PATIENT_UPDATED"}, false},
		{herald.Event{Entity: "CDT", Subtype: "CDT_UPDATED"}, true},
	} {
		if got := herald.ReplaySelects(w, &tc.e); got != tc.want {
			t.Errorf("ReplaySelects(%s/%s) = %v, want %v", tc.e.Entity, tc.e.Subtype, got, tc.want)
		}
	}
	w.Active = false
	if herald.ReplaySelects(w, &herald.Event{Entity: "CDT", Subtype: "CDT_UPDATED"}) {
		t.Error("an inactive webhook selects an event")
	}
}
