package herald_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/heraldhooks/herald"
)

// TestWebhookHealthState: a webhook's answer names its health from the
// stored record: healthy with no failure since the last delivery, failing
// after one, probing from DefaultBreakerThreshold failures in a row.
func TestWebhookHealthState(t *testing.T) {
	since := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		h    herald.WebhookHealthRecord
		want string
	}{
		{herald.WebhookHealthRecord{}, `{"state":"healthy","consecutiveFailures":0}`},
		{herald.WebhookHealthRecord{FailingSince: &since, ConsecutiveFailures: 1}, `{"state":"failing","failingSince":"2026-11-30T12:00:00Z","consecutiveFailures":1}`},
		{herald.WebhookHealthRecord{FailingSince: &since, ConsecutiveFailures: herald.DefaultBreakerThreshold - 1}, `{"state":"failing","failingSince":"2026-11-30T12:00:00Z","consecutiveFailures":4}`},
		{herald.WebhookHealthRecord{FailingSince: &since, ConsecutiveFailures: herald.DefaultBreakerThreshold}, `{"state":"probing","failingSince":"2026-11-30T12:00:00Z","consecutiveFailures":5}`},
	} {
		b, err := json.Marshal(herald.Webhook{Health: tt.h})
		if err != nil {
			t.Fatal(err)
		}
		var got struct{ Health json.RawMessage }
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatal(err)
		}
		if string(got.Health) != tt.want {
			t.Errorf("health %+v marshals as %s, want %s", tt.h, got.Health, tt.want)
		}
	}
}
