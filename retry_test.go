package herald_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/heraldhooks/herald"
)

func TestRetryPolicyDecide(t *testing.T) {
	p := herald.DefaultRetryPolicy
	t0 := time.Date(2026, 11, 26, 17, 0, 0, 0, time.UTC) // first attempt
	now := t0.Add(10 * time.Minute)                      // this attempt ended
	at := func(d time.Duration) time.Time { return now.Add(d) }

	tests := []struct {
		name       string
		n          int        // attempt number, counting every attempt on record
		first      *time.Time // the retry window's first attempt; nil: this is it
		window     int        // attempts in the window before this one
		status     int
		err        string
		retryAfter string
		rnd        float64

		wantStatus     string
		wantNext       time.Time
		wantReason     string // exact when set
		wantReasonHas  []string
		wantDeactivate string
	}{
		{name: "2xx delivers", n: 1, status: 204, rnd: 0.5, wantStatus: herald.StatusDelivered},
		{name: "first failure waits 5s", n: 1, status: 500, err: "receiver answered 500 Internal Server Error", rnd: 0.5,
			wantStatus: herald.StatusRetrying, wantNext: at(5 * time.Second),
			wantReason: "receiver answered 500 Internal Server Error on attempt 1; next attempt at 2026-11-26T17:10:05Z"},
		{name: "third failure waits 2m minus 20% at the low end", n: 3, first: &t0, window: 2, status: 503, err: "receiver answered 503 Service Unavailable", rnd: 0,
			wantStatus: herald.StatusRetrying, wantNext: at(96 * time.Second),
			wantReason: "receiver answered 503 Service Unavailable on attempt 3; next attempt at 2026-11-26T17:11:36Z"},
		{name: "jitter high end", n: 2, first: &t0, window: 1, err: "connection refused", rnd: 0.75,
			wantStatus: herald.StatusRetrying, wantNext: at(33 * time.Second),
			wantReason: "connection refused on attempt 2; next attempt at 2026-11-26T17:10:33Z"},
		{name: "the last wait repeats", n: 15, first: &t0, window: 14, err: "timed out after 30s", rnd: 0.5,
			wantStatus: herald.StatusRetrying, wantNext: at(8 * time.Hour)},
		{name: "Retry-After seconds replaces the schedule", n: 1, status: 429, err: "receiver answered 429 Too Many Requests", retryAfter: "120", rnd: 0,
			wantStatus: herald.StatusRetrying, wantNext: at(2 * time.Minute),
			wantReason: "receiver answered 429 Too Many Requests on attempt 1; next attempt at 2026-11-26T17:12:00Z (as Retry-After asked)"},
		{name: "Retry-After HTTP date", n: 1, status: 503, err: "receiver answered 503 Service Unavailable", retryAfter: at(45 * time.Minute).Format(http.TimeFormat), rnd: 0,
			wantStatus: herald.StatusRetrying, wantNext: at(45 * time.Minute)},
		{name: "Retry-After past date waits the floor", n: 1, status: 503, err: "x", retryAfter: now.Add(-time.Hour).Format(http.TimeFormat), rnd: 0,
			wantStatus: herald.StatusRetrying, wantNext: at(time.Second)},
		{name: "Retry-After 0 waits the floor", n: 1, status: 503, err: "x", retryAfter: "0", rnd: 0,
			wantStatus: herald.StatusRetrying, wantNext: at(time.Second)},
		{name: "Retry-After is capped at the longest wait", n: 1, status: 503, err: "receiver answered 503 Service Unavailable", retryAfter: "86400", rnd: 0,
			wantStatus: herald.StatusRetrying, wantNext: at(8 * time.Hour),
			wantReasonHas: []string{"Retry-After asked for 24h; capped at 8h"}},
		{name: "unreadable Retry-After falls back to the schedule", n: 1, status: 503, err: "x", retryAfter: "soon", rnd: 0.5,
			wantStatus: herald.StatusRetrying, wantNext: at(5 * time.Second)},
		{name: "410 Gone fails and deactivates", n: 2, first: &t0, window: 1, status: 410, err: "receiver answered 410 Gone", rnd: 0.5,
			wantStatus:     herald.StatusFailed,
			wantReason:     "receiver answered 410 Gone on attempt 2; the webhook was deactivated and no further attempt will be made",
			wantDeactivate: "receiver answered 410 Gone at 2026-11-26T17:09:30Z"},
		{name: "a next attempt past the window fails", n: 12, first: ptr(t0.Add(-20 * time.Hour)), window: 11, status: 500, err: "receiver answered 500 Internal Server Error", rnd: 0.5,
			wantStatus: herald.StatusFailed,
			wantReason: "receiver answered 500 Internal Server Error on attempt 12; gave up: the next attempt would have been after 2026-11-26T21:00:00Z, the end of the 24h retry window that began at 2026-11-25T21:00:00Z"},
		{name: "Retry-After cannot stretch the window", n: 3, first: ptr(t0.Add(-23 * time.Hour)), window: 2, status: 503, err: "x", retryAfter: "7200", rnd: 0.5,
			wantStatus: herald.StatusFailed},
		{name: "first attempt starts the window", n: 1, status: 500, err: "x", rnd: 0.5,
			wantStatus: herald.StatusRetrying, wantNext: at(5 * time.Second)},
		// Resend and recover start a fresh window: the schedule starts
		// over, however many attempts are on record.
		{name: "first attempt after a resend waits 5s", n: 12, status: 503, err: "receiver answered 503 Service Unavailable", rnd: 0.5,
			wantStatus: herald.StatusRetrying, wantNext: at(5 * time.Second),
			wantReason: "receiver answered 503 Service Unavailable on attempt 12; next attempt at 2026-11-26T17:10:05Z"},
		{name: "third attempt after a resend waits 2m", n: 14, first: ptr(t0.Add(5 * time.Minute)), window: 2, err: "connection refused", rnd: 0.5,
			wantStatus: herald.StatusRetrying, wantNext: at(2 * time.Minute)},
		{name: "a resent delivery's window ends 24h after its new first attempt", n: 20, first: ptr(t0.Add(-23 * time.Hour)), window: 9, err: "x", rnd: 0.5,
			wantStatus: herald.StatusFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := &herald.Delivery{ID: "dlv_1", AttemptCount: tt.n - 1, FirstAttemptAt: tt.first, WindowAttempts: tt.window}
			a := herald.Attempt{N: tt.n, StartedAt: now.Add(-30 * time.Second), StatusCode: tt.status, Error: tt.err}
			r := p.Decide(d, a, tt.retryAfter, now, tt.rnd)
			if r.DeliveryID != "dlv_1" || r.Attempt != a {
				t.Errorf("result carries delivery %q attempt %+v; want dlv_1 and the attempt as given", r.DeliveryID, r.Attempt)
			}
			if r.Status != tt.wantStatus {
				t.Errorf("Status = %s, want %s (reason %q)", r.Status, tt.wantStatus, r.WaitReason)
			}
			if !r.NextAttemptAt.Equal(tt.wantNext) {
				t.Errorf("NextAttemptAt = %s, want %s", r.NextAttemptAt, tt.wantNext)
			}
			if tt.wantReason != "" && r.WaitReason != tt.wantReason {
				t.Errorf("WaitReason =\n  %q\nwant\n  %q", r.WaitReason, tt.wantReason)
			}
			for _, s := range tt.wantReasonHas {
				if !strings.Contains(r.WaitReason, s) {
					t.Errorf("WaitReason %q does not contain %q", r.WaitReason, s)
				}
			}
			if r.DeactivateReason != tt.wantDeactivate {
				t.Errorf("DeactivateReason = %q, want %q", r.DeactivateReason, tt.wantDeactivate)
			}
			if r.Status == herald.StatusDelivered && r.WaitReason != "" {
				t.Errorf("a delivered delivery has wait reason %q", r.WaitReason)
			}
		})
	}
}

// TestRetryPolicyWholeDay walks a delivery that always fails through the
// default schedule on an injected clock, and checks it gives up after 24h
// with the waits the design promises.
func TestRetryPolicyWholeDay(t *testing.T) {
	p := herald.DefaultRetryPolicy
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	d := &herald.Delivery{ID: "dlv_1"}
	want := []time.Duration{5 * time.Second, 30 * time.Second, 2 * time.Minute, 10 * time.Minute, 30 * time.Minute,
		time.Hour, 2 * time.Hour, 4 * time.Hour, 8 * time.Hour, 8 * time.Hour} // the 8h wait repeats once before 24h
	// A whole day of failures; then a resend (a fresh window, the attempts
	// kept on record) and a whole day more, with the same waits.
	for day := range 2 {
		first := clock
		var waits []time.Duration
		for {
			if d.AttemptCount > 100 {
				t.Fatal("still retrying after 100 attempts")
			}
			a := herald.Attempt{N: d.AttemptCount + 1, StartedAt: clock, Error: "connection refused"}
			r := p.Decide(d, a, "", clock, 0.5)
			d.AttemptCount++
			if r.Status == herald.StatusFailed {
				if got := clock.Sub(first); got < 16*time.Hour || got > 24*time.Hour {
					t.Errorf("day %d: gave up %s after the first attempt; want within the 24h window, after its last 8h wait", day+1, got)
				}
				break
			}
			waits = append(waits, r.NextAttemptAt.Sub(clock))
			clock = r.NextAttemptAt
			d.WindowAttempts++
			d.FirstAttemptAt = &first
		}
		if !slices.Equal(waits, want) {
			t.Errorf("day %d: waits = %v, want %v", day+1, waits, want)
		}
		clock = clock.Add(time.Hour)
		d.FirstAttemptAt, d.WindowAttempts = nil, 0 // resend
	}
}

func TestJitterStaysInBounds(t *testing.T) {
	p := herald.DefaultRetryPolicy
	for _, rnd := range []float64{0, 0.1, 0.5, 0.9, 0.999999} {
		w, _ := p.Wait(4, "", time.Time{}, rnd)
		if w < 8*time.Minute || w > 12*time.Minute {
			t.Errorf("wait with rnd %g = %s, want 10m ± 20%%", rnd, w)
		}
	}
}

func TestFormatDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		24 * time.Hour: "24h", 90 * time.Minute: "1h30m", 2 * time.Minute: "2m", 30 * time.Second: "30s",
		time.Hour + time.Second: "1h0m1s", 1500 * time.Millisecond: "1.5s", 250 * time.Millisecond: "250ms",
	} {
		if got := herald.FormatDuration(d); got != want {
			t.Errorf("FormatDuration(%s) = %q, want %q", d, got, want)
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 26, 17, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		v    string
		want time.Duration
		ok   bool
	}{
		{"", 0, false},
		{"  ", 0, false},
		{"120", 2 * time.Minute, true},
		{" 7 ", 7 * time.Second, true},
		{"0", 0, true},
		{"-5", 0, false},
		{"1.5", 0, false},
		{"soon", 0, false},
		{"99999999999999999999", 0, false}, // beyond uint64: unreadable
		{"18446744073709551615", time.Duration(1<<63 - 1).Truncate(time.Second), true},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second, true},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0, true},
		{"Thu, 26 Nov 2026 17:00:30 GMT", 30 * time.Second, true},
		{"Thursday, 26-Nov-26 17:00:30 GMT", 30 * time.Second, true}, // RFC 850, which HTTP dates allow
	} {
		got, ok := herald.ParseRetryAfter(tt.v, now)
		if got != tt.want || ok != tt.ok {
			t.Errorf("ParseRetryAfter(%q) = %s, %v; want %s, %v", tt.v, got, ok, tt.want, tt.ok)
		}
	}
}

func ptr[T any](v T) *T { return &v }
