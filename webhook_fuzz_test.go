package herald_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/heraldhooks/herald"
)

// transportRefuses returns what net/http's Transport says of a POST to
// target with one header before it would dial ("" if nothing): the
// request's context is cancelled first, so nothing is ever sent.
func transportRefuses(t *testing.T, target, name, value string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, nil)
	if err != nil {
		return err.Error()
	}
	if name != "" {
		req.Header.Add(name, value)
	}
	resp, err := (&http.Transport{}).RoundTrip(req)
	if resp != nil {
		resp.Body.Close()
		t.Fatalf("a cancelled request to %q got an answer", target)
	}
	if errors.Is(err, context.Canceled) {
		return ""
	}
	return err.Error()
}

// wantFieldError fails unless err is an EINVALID *herald.Error (a 400)
// naming one of fields and saying something.
func wantFieldError(t *testing.T, err error, fields ...string) {
	t.Helper()
	var he *herald.Error
	if !errors.As(err, &he) || he.Code != herald.EINVALID || he.Message == "" {
		t.Fatalf("refused with %#v, want an EINVALID herald error with a message", err)
	}
	for _, f := range fields {
		if he.Field == f {
			return
		}
	}
	t.Fatalf("refusal %q names field %q, want one of %q", he.Message, he.Field, fields)
}

// FuzzValidateURL: a refused URL is a 400 naming the field; an accepted
// one is an absolute http(s) URL with a host, without user info or
// fragment, that net/http can send to, and that reads back the same when
// written out again.
func FuzzValidateURL(f *testing.F) {
	for _, s := range []string{"https://example.com/hooks/patients", "http://127.0.0.1:8080/hook?x=1", "https://[::1]:443/",
		"https://[fe80::1%25eth0]/", "HTTPS://EXAMPLE.COM", "https://example.com:0/", "https://example.com:65536/",
		"https://user:pw@example.com/", "https://example.com/#frag", "ftp://example.com/", "example.com/hook", "https:///path",
		"https://:443/", "http://%41/", "https://exa mple.com/", "https://example.com/\x7f", "http://0x7f.1/", "https://example.com/" + strings.Repeat("a", 2048),
		"", " https://example.com ", "https://example.com/path%zz", "//example.com", "https://example.com:/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		err := herald.ValidateURL("url", raw)
		if err != nil {
			wantFieldError(t, err, "url")
			return
		}
		u, perr := url.Parse(raw)
		if perr != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" || u.User != nil ||
			u.Fragment != "" || len(raw) > 2048 {
			t.Fatalf("ValidateURL accepted %q (%v)", raw, perr)
		}
		if p := u.Port(); p != "" {
			if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
				t.Fatalf("ValidateURL accepted %q with port %q", raw, p)
			}
		}
		if why := transportRefuses(t, raw, "", ""); why != "" {
			t.Fatalf("ValidateURL accepted %q, which net/http refuses: %s", raw, why)
		}
		again := u.String()
		if len(again) <= 2048 {
			if err := herald.ValidateURL("url", again); err != nil {
				t.Fatalf("ValidateURL accepted %q but not %q, the same URL written out: %v", raw, again, err)
			}
		}
	})
}

// FuzzWebhookHeaders: a header or query parameter that Webhook.Validate
// refuses is a 400 naming it; a header it accepts is one net/http sends
// (a header net/http refuses would fail every attempt) and is not one of
// Herald's own.
func FuzzWebhookHeaders(f *testing.F) {
	for _, s := range [][4]string{{"Authorization", "Bearer abc", "api_key", "k"}, {"X-Tenant", "acme", "a b", "c&d=e"},
		{"X-Bad Name", "v", "q", "v"}, {"Content-Type", "text/plain", "q", "v"}, {"webhook-id", "x", "q", "v"},
		{"X-Line", "a\r\nInjected: 1", "q", "v"}, {"X-Nul", "a\x00b", "q", "v"}, {"X-Ctl", "a\x01b", "q", "v"},
		{"X-Del", "a\x7fb", "q", "v"}, {"X-Tab", "a\tb", "q", "v"}, {"X-Utf8", "café", "q", "v"}, {"X-Masked", "••••1234", "q", "v"},
		{"", "v", "q", "v"}, {"X-Ok", "v", "", "v"}, {"X-Ok", "v", "q", "••••"}, {"Ünïcode", "v", "q", "v"}, {"X-Ok", " spaced ", "q", "v"}} {
		f.Add(s[0], s[1], s[2], s[3])
	}
	f.Fuzz(func(t *testing.T, name, value, qname, qvalue string) {
		w := &herald.Webhook{URL: "https://example.com/hook", TimeoutSeconds: 30,
			Payload:         herald.PayloadConfig{Format: herald.FormatWelkin},
			Headers:         []herald.NameValue{{Name: name, Value: value}},
			QueryParameters: []herald.NameValue{{Name: qname, Value: qvalue}}}
		if err := w.Validate(); err != nil {
			wantFieldError(t, err, "headers[0].name", "headers[0].value", "queryParameters[0].name", "queryParameters[0].value")
			return
		}
		for _, own := range []string{"Content-Type", "Content-Length", "User-Agent", "Host", "Webhook-Id", "Webhook-Timestamp",
			"Webhook-Signature", "Transfer-Encoding", "Connection"} {
			if strings.EqualFold(name, own) {
				t.Fatalf("Validate accepted header %q, which Herald sets itself", name)
			}
		}
		target := w.URL + "?" + url.QueryEscape(qname) + "=" + url.QueryEscape(qvalue)
		if why := transportRefuses(t, target, name, value); why != "" {
			t.Fatalf("Validate accepted header %q: %q and query parameter %q, which net/http refuses: %s", name, value, qname, why)
		}
	})
}
