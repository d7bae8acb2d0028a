package webui_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"testing"

	"github.com/heraldhooks/herald/dispatch"
	"github.com/heraldhooks/herald/sqlstore"
	"github.com/heraldhooks/herald/webui"
	"github.com/prometheus/client_golang/prometheus"
)

// TestWebhookPageShowsPaceAndRateLimit: the webhook page shows this
// node's pace and the rate limit (none at first); an admin sets the limit
// in the settings form, a bad one is refused naming the field, and an
// empty one removes it.
func TestWebhookPageShowsPaceAndRateLimit(t *testing.T) {
	e := mustEnv(t, func(c *webui.Config, store *sqlstore.DB) {
		eng, err := dispatch.New(dispatch.Config{Store: store, Registerer: prometheus.NewRegistry(),
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			t.Fatal(err)
		}
		c.Pacer = eng
	})
	b := e.browser()
	b.signIn("admin")
	path := "/ui/t/acme/i/sandbox/webhooks/wh"
	status, _, page := b.get(path)
	wantPage(t, "a fresh webhook", status, page, 200, "Pace on this node: up to <strong>8</strong> of 8 requests at once; 0 in flight now.", "Rate limit: none.")

	save := func(limit string) (int, string) {
		status, _, body := b.post(path, url.Values{"csrf": {b.csrf(path)}, "url": {"https://example.com/hook"}, "format": {"welkin"},
			"timeout": {"30"}, "rate_limit": {limit}})
		return status, body
	}
	if status, body := save("20"); status != http.StatusSeeOther {
		t.Fatalf("save a limit of 20: %d\n%.2000s", status, body)
	}
	_, _, page = b.get(path)
	wantPage(t, "after setting 20", 200, page, 200, "Rate limit: <strong>20</strong> requests per second across all nodes.", `name="rate_limit" value="20"`)
	if w, err := e.store.GetWebhook(context.Background(), "acme", "sandbox", "wh"); err != nil || w.RateLimitPerSecond == nil || *w.RateLimitPerSecond != 20 {
		t.Fatalf("the stored limit is not 20: %v", err)
	}
	status, body := save("0")
	wantPage(t, "a limit of 0", status, body, 400, "rateLimitPerSecond must be between 1 and 10000", `id="rate_limit" name="rate_limit" value="0"`)
	status, body = save("many")
	wantPage(t, "a limit of many", status, body, 400, `The rate limit must be a whole number of requests per second, from 1 to 10000, or empty for none; "many" is not.`)
	if status, body := save(""); status != http.StatusSeeOther {
		t.Fatalf("save no limit: %d\n%.2000s", status, body)
	}
	_, _, page = b.get(path)
	wantPage(t, "after clearing it", 200, page, 200, "Rate limit: none.")
}
