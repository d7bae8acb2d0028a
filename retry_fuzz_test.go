package herald_test

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/heraldhooks/herald"
)

// FuzzRetryAfter: whatever a receiver puts in Retry-After, the wait is
// never negative, never zero (a busy loop), and never longer than the
// schedule's longest wait (or MinRetryAfter, the floor, for a schedule
// shorter than it); a delay in seconds reads back as itself, and an HTTP
// date as the time until it.
func FuzzRetryAfter(f *testing.F) {
	now := time.Date(2026, 11, 26, 17, 0, 0, 0, time.UTC)
	for _, v := range []string{"", "0", "120", " 30 ", "36000", "86400", "18446744073709551615", "99999999999999999999",
		"-1", "+5", "1.5", "1e3", "0x10", "soon", now.Add(45 * time.Minute).Format(http.TimeFormat),
		now.Add(-time.Hour).Format(http.TimeFormat), "Thursday, 26-Nov-26 17:45:00 GMT", "Thu Nov 26 17:45:00 2026",
		"Fri, 31 Dec 9999 23:59:59 GMT", "Mon, 01 Jan 0001 00:00:00 GMT", "Thu, 26 Nov 2026 17:45:00 PST"} {
		f.Add(v, int64(0), uint16(1), 0.5)
	}
	f.Add("120", int64(-1e9), uint16(7), 0.999)
	f.Fuzz(func(t *testing.T, v string, shift int64, n uint16, rnd float64) {
		now := now.Add(time.Duration(shift%(1<<50)) * time.Second)
		d, ok := herald.ParseRetryAfter(v, now)
		if d < 0 || (!ok && d != 0) {
			t.Fatalf("ParseRetryAfter(%q) = %v, %v", v, d, ok)
		}
		trimmed := strings.TrimSpace(v)
		if secs, err := strconv.ParseUint(trimmed, 10, 64); err == nil {
			if !ok || (secs < 1<<32 && d != time.Duration(secs)*time.Second) {
				t.Fatalf("ParseRetryAfter(%q) = %v, %v; want %ds", v, d, ok, secs)
			}
		} else if when, err := http.ParseTime(trimmed); err == nil {
			if !ok || d != max(when.Sub(now), 0) {
				t.Fatalf("ParseRetryAfter(%q) = %v, %v; want the time until %s", v, d, ok, when)
			}
		} else if ok {
			t.Fatalf("ParseRetryAfter(%q) read %v from something neither seconds nor an HTTP date", v, d)
		}
		if ok && d < 1<<32*time.Second {
			// A wait reads back the same when written as seconds.
			if back, _ := herald.ParseRetryAfter(strconv.FormatInt(int64(d/time.Second), 10), now); back != d.Truncate(time.Second) {
				t.Fatalf("ParseRetryAfter(%q) = %v, but %v written as seconds reads %v", v, d, d, back)
			}
		}

		if rnd < 0 || rnd >= 1 || rnd != rnd {
			rnd = 0.5
		}
		for _, p := range []herald.RetryPolicy{herald.DefaultRetryPolicy,
			{Schedule: []time.Duration{0, 100 * time.Millisecond, 250 * time.Millisecond}, Window: time.Minute, Jitter: 0.2}} {
			longest := slices.Max(p.Schedule)
			w, why := p.Wait(int(n)%20+1, v, now, rnd)
			if w <= 0 || w > max(longest, herald.MinRetryAfter)+time.Duration(float64(longest)*p.Jitter) {
				t.Fatalf("Wait(Retry-After %q) = %v with a longest wait of %v", v, w, longest)
			}
			if ok && (w > max(longest, herald.MinRetryAfter) || why == "") {
				t.Fatalf("Wait(Retry-After %q) = %v %q; the receiver's wait is capped at %v", v, w, why, longest)
			}
		}
	})
}
