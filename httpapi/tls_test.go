package httpapi_test

import (
	"strings"
	"testing"

	"github.com/heraldhooks/herald/heraldtest"
	"github.com/heraldhooks/herald/httpapi"
)

// A webhook's client certificate is set and cleared by PATCH; its key is
// write-only: no answer carries it, GET says only that there is one. A
// pair that does not parse or match is a 400 naming the field.
func TestWebhookClientCertificate(t *testing.T) {
	e := mustEnv(t)
	e.setup()
	wh := inst + "/webhooks/wh-patient-sync"
	ca := heraldtest.NewCA(t)
	pair, other := ca.Issue(t, "client"), ca.Issue(t, "other")
	keyLine := strings.Split(string(pair.KeyPEM), "\n")[1]

	resp := e.must(200, req{method: "PATCH", path: wh, token: e.admin, body: map[string]string{
		"clientCertificate": string(pair.CertPEM), "clientKey": string(pair.KeyPEM)}})
	for _, r := range []response{resp, e.must(200, req{method: "GET", path: wh, token: e.admin}), e.must(200, req{method: "GET", path: inst + "/webhooks", token: e.admin})} {
		if strings.Contains(r.String(), keyLine) || strings.Contains(r.String(), "clientKey") {
			t.Fatalf("an answer carries the client key: %s", r)
		}
	}
	got := e.must(200, req{method: "GET", path: wh, token: e.admin}).object(t)
	if got["clientCertificate"] != string(pair.CertPEM) || got["hasClientKey"] != true {
		t.Fatalf("GET after setting the pair: clientCertificate %v, hasClientKey %v", got["clientCertificate"], got["hasClientKey"])
	}

	for _, tc := range []struct {
		name  string
		body  map[string]string
		field string
		words string
	}{
		{"key of another certificate", map[string]string{"clientKey": string(other.KeyPEM)}, "clientKey", "does not go with clientCertificate"},
		{"certificate of another key", map[string]string{"clientCertificate": string(other.CertPEM)}, "clientKey", "does not go with clientCertificate"},
		{"certificate that is not PEM", map[string]string{"clientCertificate": "hello"}, "clientCertificate", "PEM certificates"},
		{"key in the certificate field", map[string]string{"clientCertificate": string(pair.CertPEM) + string(pair.KeyPEM)}, "clientCertificate", "only certificates"},
		{"key alone", map[string]string{"clientCertificate": "", "clientKey": string(pair.KeyPEM)}, "clientCertificate", "required"},
		{"certificate alone", map[string]string{"clientKey": ""}, "clientKey", "required"},
	} {
		r := e.must(400, req{method: "PATCH", path: wh, token: e.admin, body: tc.body})
		if ae := r.apiError(t); ae.Field != tc.field || !strings.Contains(ae.Message, tc.words) || strings.Contains(r.String(), keyLine) {
			t.Errorf("%s: %s; want a 400 on %s saying %q", tc.name, r, tc.field, tc.words)
		}
	}

	e.must(200, req{method: "PATCH", path: wh, token: e.admin, body: map[string]string{"clientCertificate": "", "clientKey": ""}})
	got = e.must(200, req{method: "GET", path: wh, token: e.admin}).object(t)
	if got["clientCertificate"] != "" || got["hasClientKey"] != false {
		t.Fatalf("GET after clearing: clientCertificate %v, hasClientKey %v", got["clientCertificate"], got["hasClientKey"])
	}
}

// With RequireHTTPSDestinations a PATCH that sets an http:// url is a 400
// naming url; https:// and clearing pass, and so does a PATCH that leaves
// the url alone.
func TestRequireHTTPSDestinations(t *testing.T) {
	e := mustEnv(t, func(c *httpapi.Config) { c.RequireHTTPSDestinations = true })
	e.setup()
	wh := inst + "/webhooks/wh-patient-sync"
	r := e.must(400, req{method: "PATCH", path: wh, token: e.admin, body: map[string]string{"url": " http://receiver.example/hooks"}})
	if ae := r.apiError(t); ae.Field != "url" || ae.Code != "invalid" || !strings.Contains(ae.Message, "url must start with https://") {
		t.Fatalf("http:// url: %s", r)
	}
	if got := e.must(200, req{method: "GET", path: wh, token: e.admin}).object(t); got["url"] != "https://receiver.example/hooks" {
		t.Fatalf("the refused url was stored: %v", got["url"])
	}
	e.must(200, req{method: "PATCH", path: wh, token: e.admin, body: map[string]string{"url": "HTTPS://receiver.example/v2"}})
	e.must(200, req{method: "PATCH", path: wh, token: e.admin, body: map[string]any{"timeoutSeconds": 10}})
}
