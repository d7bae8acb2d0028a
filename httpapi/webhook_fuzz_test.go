package httpapi

import (
	"encoding/json"
	"reflect"
	"slices"
	"testing"

	"github.com/heraldhooks/herald"
)

// storedWebhook is a webhook as the store holds it before a PATCH: a URL,
// a secret header and query parameter, and the default payload.
func storedWebhook() *herald.Webhook {
	return &herald.Webhook{Tenant: "acme", Instance: "sandbox", Name: "wh-patient-sync", Title: "Patient sync",
		URL: "https://example.com/hooks/patients",
		Headers: []herald.NameValue{{Name: "Authorization", Value: "Bearer 0123456789abcdef", Secret: herald.FlagTrue},
			{Name: "X-Tenant", Value: "acme", Secret: herald.FlagFalse}},
		QueryParameters: []herald.NameValue{{Name: "api_key", Value: "k-0123456789", Secret: herald.FlagTrue}},
		Payload:         herald.PayloadConfig{Format: herald.FormatWelkin, PredefinedFields: herald.DefaultPredefinedFields},
		TimeoutSeconds:  herald.DefaultTimeoutSeconds}
}

// patchOf is the PATCH body a client sends after GET: every setting as the
// answer showed it (secret values masked).
func patchOf(t *testing.T, w *herald.Webhook) []byte {
	t.Helper()
	m := w.Masked()
	b, err := json.Marshal(map[string]any{"url": m.URL, "headers": m.Headers, "queryParameters": m.QueryParameters,
		"payload": m.Payload, "timeoutSeconds": m.TimeoutSeconds, "signing": m.Signing})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// applyPatch decodes body as PATCH .../webhooks/{name} does and merges it
// into a copy of w, validated as the store does.
func applyPatch(w *herald.Webhook, body []byte) (*herald.Webhook, error) {
	var upd herald.WebhookUpdate
	if err := unmarshalStrict(body, &upd, ""); err != nil {
		return nil, err
	}
	c := *w
	c.Headers, c.QueryParameters = slices.Clone(w.Headers), slices.Clone(w.QueryParameters)
	upd.Apply(&c)
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// FuzzWebhookPatch: the body of PATCH .../webhooks/{name}. A refused body
// is a 400 (naming the field when one is at fault). An accepted one gives
// a valid webhook that the same PATCH leaves as it is, and that a client
// sending back what GET showed (secret values masked) leaves as it is too:
// no masked value ever replaces a secret.
func FuzzWebhookPatch(f *testing.F) {
	for _, s := range []string{`{"url":"https://example.com/v2"}`, `{"url":""}`, `{"url":"ftp://x"}`, `{"timeoutSeconds":0}`, `{"timeoutSeconds":"30"}`,
		`{"headers":[{"name":"Authorization","value":"••••cdef"},{"name":"X-Tenant","value":"acme"}]}`,
		`{"headers":[{"name":"authorization","value":"••••cdef"}]}`, `{"headers":[{"name":"X-New","value":"••••"}]}`,
		`{"headers":[{"name":"X-Api-Key","value":"new-secret-value-1234"},{"name":"X-Api-Key","value":"other-secret-value-1234"}]}`,
		`{"headers":[{"name":"X-Flag","value":"v","secret":true}]}`, `{"headers":[{"name":"Content-Type","value":"x"}]}`,
		`{"queryParameters":[{"name":"api_key","value":"••••"},{"name":"API_KEY","value":"••••"}]}`, `{"queryParameters":[{"name":"","value":"v"}]}`,
		`{"payload":{"format":"standard"}}`, `{"payload":{"predefinedFields":["DATA","NOPE"]}}`, `{"payload":{"customFields":[{"name":"source","value":"herald"}]}}`,
		`{"payload":{"customFields":[{"name":"eventId","value":"x"}]}}`, `{"payload":{"customFields":[{"name":"k","value":"v","secret":false}]}}`,
		`{"signing":{"algorithm":"ed25519"}}`, `{"signing":{"algorithm":" hmac-sha256 "}}`, `{"signing":{"algorithm":"rsa"}}`,
		`{"clientCertificate":"","clientKey":""}`, `{"clientKey":"-----BEGIN PRIVATE KEY-----\nAA==\n-----END PRIVATE KEY-----"}`,
		`{"urll":"x"}`, `{}`, `[]`, `null`, `{"headers":null}`, `{"payload":null}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		stored := storedWebhook()
		w, err := applyPatch(stored, body)
		if err != nil {
			wantRefusal(t, err, []string{herald.EINVALID})
			return
		}
		again, err := applyPatch(w, body)
		if err != nil {
			t.Fatalf("PATCH %s accepted once, refused the second time: %v", body, err)
		}
		if !reflect.DeepEqual(again, w) {
			t.Fatalf("PATCH %s applied twice:\n once  %+v\n twice %+v", body, w, again)
		}
		shown := patchOf(t, w)
		back, err := applyPatch(w, shown)
		if err != nil {
			t.Fatalf("PATCH %s, then what GET showed sent back (%s), is refused: %v", body, shown, err)
		}
		if !reflect.DeepEqual(back.Headers, w.Headers) || !reflect.DeepEqual(back.QueryParameters, w.QueryParameters) ||
			!reflect.DeepEqual(back.Payload, w.Payload) || back.URL != w.URL || back.TimeoutSeconds != w.TimeoutSeconds || back.Signing != w.Signing {
			t.Fatalf("PATCH %s, then what GET showed sent back (%s):\n before %+v\n after  %+v", body, shown, w, back)
		}
	})
}
