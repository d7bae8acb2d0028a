package herald_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/heraldhooks/herald"
)

var testEpoch = time.Date(2026, 11, 26, 17, 0, 0, 0, time.UTC)

// wantField fails unless err is EINVALID naming field, in Field and in
// its message; field "" wants no error at all.
func wantField(t *testing.T, err error, field string) {
	t.Helper()
	if field == "" {
		if err != nil {
			t.Fatalf("error %v, want none", err)
		}
		return
	}
	var he *herald.Error
	if !errors.As(err, &he) || he.Code != herald.EINVALID || he.Field != field {
		t.Fatalf("error %#v, want EINVALID naming %q", err, field)
	}
	if !strings.Contains(he.Message, field) {
		t.Errorf("message %q does not name %s", he.Message, field)
	}
}

// validWebhook returns admin settings that pass Validate.
func validWebhook() *herald.Webhook {
	return &herald.Webhook{URL: "https://example.com/hooks", TimeoutSeconds: 30,
		Payload: herald.PayloadConfig{Format: herald.FormatWelkin, PredefinedFields: herald.DefaultPredefinedFields}}
}

func TestWebhookValidate(t *testing.T) {
	for _, tc := range []struct {
		name  string
		mod   func(w *herald.Webhook)
		field string // "" when valid
	}{
		{"valid", func(w *herald.Webhook) {}, ""},
		{"no URL yet", func(w *herald.Webhook) { w.URL = "" }, ""},
		{"http URL with a port and query", func(w *herald.Webhook) { w.URL = "http://127.0.0.1:8080/in?x=1" }, ""},
		{"listen URL", func(w *herald.Webhook) { w.URL = herald.ListenURL }, ""},
		{"listen URL with more after it", func(w *herald.Webhook) { w.URL = "listen://laptop" }, "url"},
		{"URL without scheme", func(w *herald.Webhook) { w.URL = "example.com/hooks" }, "url"},
		{"URL of another scheme", func(w *herald.Webhook) { w.URL = "ftp://example.com/" }, "url"},
		{"URL that does not parse", func(w *herald.Webhook) { w.URL = "https://exa mple.com/%zz" }, "url"},
		{"URL without host", func(w *herald.Webhook) { w.URL = "https:///path" }, "url"},
		{"URL with a password", func(w *herald.Webhook) { w.URL = "https://user:pw@example.com/" }, "url"},
		{"URL with a fragment", func(w *herald.Webhook) { w.URL = "https://example.com/#frag" }, "url"},
		{"URL with port 0", func(w *herald.Webhook) { w.URL = "https://example.com:0/" }, "url"},
		{"URL with a port too high", func(w *herald.Webhook) { w.URL = "https://example.com:70000/" }, "url"},
		{"URL too long", func(w *herald.Webhook) { w.URL = "https://example.com/" + strings.Repeat("a", 2048) }, "url"},
		{"header", func(w *herald.Webhook) { w.Headers = []herald.NameValue{{Name: "X-Tenant", Value: "acme"}} }, ""},
		{"header name with a space", func(w *herald.Webhook) { w.Headers = []herald.NameValue{{Name: "X Tenant", Value: "a"}} }, "headers[0].name"},
		{"header name empty", func(w *herald.Webhook) {
			w.Headers = []herald.NameValue{{Name: "X-A", Value: "a"}, {Name: "", Value: "b"}}
		}, "headers[1].name"},
		{"header Herald sets", func(w *herald.Webhook) { w.Headers = []herald.NameValue{{Name: "Webhook-Signature", Value: "v1,x"}} }, "headers[0].name"},
		{"header value with a line break", func(w *herald.Webhook) {
			w.Headers = []herald.NameValue{{Name: "X-A", Value: "a\r\nX-Evil: 1"}}
		}, "headers[0].value"},
		{"header value masked", func(w *herald.Webhook) { w.Headers = []herald.NameValue{{Name: "X-A", Value: "••••1234"}} }, "headers[0].value"},
		{"query parameter without name", func(w *herald.Webhook) { w.QueryParameters = []herald.NameValue{{Value: "v"}} }, "queryParameters[0].name"},
		{"query parameter masked", func(w *herald.Webhook) {
			w.QueryParameters = []herald.NameValue{{Name: "token", Value: "••••"}}
		}, "queryParameters[0].value"},
		{"standard format", func(w *herald.Webhook) { w.Payload.Format = herald.FormatStandard }, ""},
		{"unknown format", func(w *herald.Webhook) { w.Payload.Format = "xml" }, "payload.format"},
		{"no format", func(w *herald.Webhook) { w.Payload.Format = "" }, "payload.format"},
		{"unknown predefined field", func(w *herald.Webhook) {
			w.Payload.PredefinedFields = []string{herald.FieldData, "PATIENT_NAME"}
		}, "payload.predefinedFields[1]"},
		{"custom field", func(w *herald.Webhook) { w.Payload.CustomFields = []herald.NameValue{{Name: "env", Value: "test"}} }, ""},
		{"custom field without name", func(w *herald.Webhook) { w.Payload.CustomFields = []herald.NameValue{{Value: "x"}} }, "payload.customFields[0].name"},
		{"custom field over a predefined one", func(w *herald.Webhook) {
			w.Payload.CustomFields = []herald.NameValue{{Name: "patientId", Value: "x"}}
		}, "payload.customFields[0].name"},
		{"custom field named type", func(w *herald.Webhook) { w.Payload.CustomFields = []herald.NameValue{{Name: "type", Value: "x"}} }, "payload.customFields[0].name"},
		{"custom field marked secret", func(w *herald.Webhook) {
			w.Payload.CustomFields = []herald.NameValue{{Name: "key", Value: "x", Secret: herald.FlagTrue}}
		}, "payload.customFields[0].secret"},
		{"timeout 0", func(w *herald.Webhook) { w.TimeoutSeconds = 0 }, "timeoutSeconds"},
		{"timeout at the limit", func(w *herald.Webhook) { w.TimeoutSeconds = herald.MaxTimeoutSeconds }, ""},
		{"timeout over the limit", func(w *herald.Webhook) { w.TimeoutSeconds = herald.MaxTimeoutSeconds + 1 }, "timeoutSeconds"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := validWebhook()
			tc.mod(w)
			wantField(t, w.Validate(), tc.field)
		})
	}
}

func TestDesignerWebhookValidate(t *testing.T) {
	for _, tc := range []struct {
		name  string
		w     herald.DesignerWebhook
		field string
	}{
		{"valid", herald.DesignerWebhook{Name: "wh-sync", Title: "Sync", Triggers: []herald.Trigger{{EventSubtype: "PATIENT_CREATED"}, {EventEntity: "CDT"}}}, ""},
		{"bad name", herald.DesignerWebhook{Name: "WH", Title: "Sync", Triggers: []herald.Trigger{{EventEntity: "CDT"}}}, "name"},
		{"blank title", herald.DesignerWebhook{Name: "wh", Title: "  ", Triggers: []herald.Trigger{{EventEntity: "CDT"}}}, "title"},
		{"title too long", herald.DesignerWebhook{Name: "wh", Title: strings.Repeat("t", 201), Triggers: []herald.Trigger{{EventEntity: "CDT"}}}, "title"},
		{"no triggers", herald.DesignerWebhook{Name: "wh", Title: "T"}, "triggers"},
		{"trigger with both", herald.DesignerWebhook{Name: "wh", Title: "T", Triggers: []herald.Trigger{{EventEntity: "PATIENT", EventSubtype: "PATIENT_CREATED"}}}, "triggers[0]"},
		{"empty trigger", herald.DesignerWebhook{Name: "wh", Title: "T", Triggers: []herald.Trigger{{EventEntity: "CDT"}, {}}}, "triggers[1]"},
		{"unknown subtype", herald.DesignerWebhook{Name: "wh", Title: "T", Triggers: []herald.Trigger{{EventSubtype: "PATIENT_EXPLODED"}}}, "triggers[0].eventSubtype"},
		{"unknown entity", herald.DesignerWebhook{Name: "wh", Title: "T", Triggers: []herald.Trigger{{EventEntity: "SPACESHIP"}}}, "triggers[0].eventEntity"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantField(t, tc.w.Validate(), tc.field)
		})
	}
	// The message for an unknown entity lists the known ones, so the
	// designer can pick.
	w := herald.DesignerWebhook{Name: "wh", Title: "T", Triggers: []herald.Trigger{{EventEntity: "SPACESHIP"}}}
	if err := w.Validate(); !strings.Contains(herald.ErrorMessage(err), "PATIENT") || !strings.Contains(herald.ErrorMessage(err), "CDT") {
		t.Errorf("unknown entity: %q does not list the known entities", herald.ErrorMessage(err))
	}
}

func TestTriggersMatch(t *testing.T) {
	created := &herald.Event{Entity: "PATIENT", Subtype: "PATIENT_CREATED"}
	cdt := &herald.Event{Entity: "CDT", Subtype: "CDT_UPDATED"}
	for _, tc := range []struct {
		name     string
		triggers []herald.Trigger
		e        *herald.Event
		want     bool
	}{
		{"subtype", []herald.Trigger{{EventSubtype: "PATIENT_CREATED"}}, created, true},
		{"other subtype of the entity", []herald.Trigger{{EventSubtype: "PATIENT_UPDATED"}}, created, false},
		{"entity", []herald.Trigger{{EventEntity: "PATIENT"}}, created, true},
		{"other entity", []herald.Trigger{{EventEntity: "PATIENT"}}, cdt, false},
		{"any of several", []herald.Trigger{{EventSubtype: "PATIENT_UPDATED"}, {EventEntity: "CDT"}}, cdt, true},
		{"none", nil, created, false},
	} {
		if got := herald.MatchesAny(tc.triggers, tc.e); got != tc.want {
			t.Errorf("%s: MatchesAny = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// Secret headers and query parameters are masked wherever they are shown,
// and a form or GET-modify-PATCH that sends the mask back keeps the stored
// value; a mask of anything else is refused, never stored.
func TestSecretValuesMaskedAndKept(t *testing.T) {
	for _, tc := range []struct{ v, want string }{
		{"", ""}, {"short", "••••"}, {"elevenchars", "••••"}, {"Bearer abc-1234", "••••1234"},
	} {
		if got := herald.MaskValue(tc.v); got != tc.want {
			t.Errorf("MaskValue(%q) = %q, want %q", tc.v, got, tc.want)
		}
	}
	for name, want := range map[string]bool{
		"Authorization": true, "Cookie": true, "X-Api-Key": true, "x-session-token": true, "X-Hub-Signature": true,
		"client_secret": true, "X-Tenant": false, "Accept-Language": false, "format": false,
	} {
		if got := herald.SecretByDefault(name); got != want {
			t.Errorf("SecretByDefault(%q) = %v, want %v", name, got, want)
		}
	}

	stored := validWebhook()
	stored.Headers = []herald.NameValue{
		{Name: "Authorization", Value: "Bearer token-9876"},                     // secret by its name
		{Name: "X-Tenant", Value: "acme"},                                       // not secret
		{Name: "X-Shared", Value: "shared-value-5555", Secret: herald.FlagTrue}, // marked secret
		{Name: "X-Api-Key", Value: "not-really-1111", Secret: herald.FlagFalse}, // marked not secret
	}
	stored.QueryParameters = []herald.NameValue{{Name: "token", Value: "query-secret-4242"}}

	shown := stored.Masked()
	want := []herald.NameValue{
		{Name: "Authorization", Value: "••••9876", Secret: herald.FlagTrue},
		{Name: "X-Tenant", Value: "acme", Secret: herald.FlagFalse},
		{Name: "X-Shared", Value: "••••5555", Secret: herald.FlagTrue},
		{Name: "X-Api-Key", Value: "not-really-1111", Secret: herald.FlagFalse},
	}
	if b, _ := json.Marshal(shown.Headers); string(b) != mustJSON(t, want) {
		t.Errorf("masked headers %s, want %s", b, mustJSON(t, want))
	}
	if q := shown.QueryParameters[0]; q.Value != "••••4242" {
		t.Errorf("masked query parameter %+v", q)
	}
	if stored.Headers[0].Value != "Bearer token-9876" {
		t.Errorf("Masked changed the stored webhook: %+v", stored.Headers[0])
	}

	// What was shown, sent back with one change, keeps every secret (the
	// header name's case may differ: header names fold).
	back := shown.Headers
	back[0].Name, back[0].Secret = "authorization", herald.FlagUnset
	back[1].Value = "acme-2"
	qs := shown.QueryParameters
	next := *stored
	herald.WebhookUpdate{Headers: &back, QueryParameters: &qs}.Apply(&next)
	if err := next.Validate(); err != nil {
		t.Fatalf("sending back what was shown: %v", err)
	}
	if next.Headers[0].Value != "Bearer token-9876" || next.Headers[0].Secret != herald.FlagTrue ||
		next.Headers[1].Value != "acme-2" || next.Headers[2].Value != "shared-value-5555" ||
		next.QueryParameters[0].Value != "query-secret-4242" {
		t.Errorf("after sending back the masks: headers %+v, query %+v", next.Headers, next.QueryParameters)
	}

	// A mask of another value, or under another name, is refused.
	for _, tc := range []struct {
		name  string
		upd   herald.WebhookUpdate
		field string
	}{
		{"mask of another value", herald.WebhookUpdate{Headers: &[]herald.NameValue{{Name: "Authorization", Value: "••••0000"}}}, "headers[0].value"},
		{"mask under another name", herald.WebhookUpdate{Headers: &[]herald.NameValue{{Name: "X-Tenant", Value: "acme"}, {Name: "X-Other", Value: "••••9876"}}}, "headers[1].value"},
		{"query names do not fold", herald.WebhookUpdate{QueryParameters: &[]herald.NameValue{{Name: "TOKEN", Value: "••••4242"}}}, "queryParameters[0].value"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := *stored
			tc.upd.Apply(&w)
			wantField(t, w.Validate(), tc.field)
		})
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestWebhookUpdateApplyMerges(t *testing.T) {
	w := validWebhook()
	w.Payload.CustomFields = []herald.NameValue{{Name: "env", Value: "prod"}}
	url, timeout, format := "  https://example.org/new \n", 10, herald.FormatStandard
	herald.WebhookUpdate{URL: &url, TimeoutSeconds: &timeout, Payload: &herald.PayloadUpdate{Format: &format}}.Apply(w)
	if w.URL != "https://example.org/new" || w.TimeoutSeconds != 10 || w.Payload.Format != herald.FormatStandard {
		t.Errorf("after the update: %+v", w)
	}
	// Absent fields, also inside payload, keep their values.
	if len(w.Payload.PredefinedFields) != len(herald.DefaultPredefinedFields) || len(w.Payload.CustomFields) != 1 {
		t.Errorf("payload fields not given were changed: %+v", w.Payload)
	}
	fields, custom := []string{herald.FieldData}, []herald.NameValue{}
	herald.WebhookUpdate{Payload: &herald.PayloadUpdate{PredefinedFields: &fields, CustomFields: &custom}}.Apply(w)
	if len(w.Payload.PredefinedFields) != 1 || len(w.Payload.CustomFields) != 0 || w.Payload.Format != herald.FormatStandard {
		t.Errorf("after the payload update: %+v", w.Payload)
	}
}

func TestRequireHTTPS(t *testing.T) {
	str := func(s string) *string { return &s }
	for _, tc := range []struct {
		url   *string
		field string
	}{
		{nil, ""}, {str(""), ""}, {str(" https://example.com/ "), ""}, {str("HTTPS://example.com/"), ""},
		{str("http://example.com/"), "url"}, {str("example.com"), "url"},
		{str(herald.ListenURL), ""}, {str("listen:x"), "url"},
	} {
		err := herald.WebhookUpdate{URL: tc.url}.RequireHTTPS()
		if tc.field == "" && err != nil || tc.field != "" && herald.ErrorCode(err) != herald.EINVALID {
			t.Errorf("RequireHTTPS(%v) = %v, want field %q", tc.url, err, tc.field)
		}
		if tc.field != "" && !strings.Contains(herald.ErrorMessage(err), "--require-https-destinations") {
			t.Errorf("RequireHTTPS: %q does not name the flag that refuses it", herald.ErrorMessage(err))
		}
	}
}

// The audit trail keeps what changed in a webhook's settings, and never a
// credential: header and query values, URL user info and query values and
// the client key are redacted, the certificate named by a fingerprint.
func TestWebhookAuditDiff(t *testing.T) {
	cert, key := clientPair(t, "herald-client")
	before := validWebhook()
	before.URL = "https://example.com/in?token=abc123"
	before.Headers = []herald.NameValue{{Name: "Authorization", Value: "Bearer s3cret"}}
	if d := herald.WebhookAuditDiff(before, before); len(d) != 0 {
		t.Errorf("diff of unchanged settings = %v, want empty", d)
	}

	after := *before
	after.URL = "https://user:pw@example.org/in?token=def456&x=1"
	after.Headers = []herald.NameValue{{Name: "Authorization", Value: "Bearer n3w"}}
	after.QueryParameters = []herald.NameValue{{Name: "sig", Value: "q-secret"}}
	after.TimeoutSeconds = 10
	after.ClientCertificate, after.ClientKey = cert, herald.PrivateKeyPEM(key)
	d := herald.WebhookAuditDiff(before, &after)
	b, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	for _, secret := range []string{"abc123", "def456", "user", "pw@", "s3cret", "n3w", "q-secret", "PRIVATE KEY", "BEGIN CERTIFICATE"} {
		if strings.Contains(text, secret) {
			t.Errorf("audit diff %s holds %q", text, secret)
		}
	}
	for _, field := range []string{"url", "headers", "queryParameters", "timeoutSeconds", "clientCertificate", "clientKey"} {
		if _, ok := d[field]; !ok {
			t.Errorf("audit diff %s does not name the change of %s", text, field)
		}
	}
	if _, ok := d["payload"]; ok {
		t.Errorf("audit diff %s names the unchanged payload", text)
	}
	if c := d["url"].(herald.AuditChange); c.Old != "https://example.com/in?token=%5Bredacted%5D" ||
		c.New != "https://%5Bredacted%5D@example.org/in?token=%5Bredacted%5D&x=%5Bredacted%5D" {
		t.Errorf("url change = %+v", c)
	}
	if c := d["clientCertificate"].(herald.AuditChange); c.Old != "" || !strings.HasPrefix(c.New.(string), "sha256:") {
		t.Errorf("certificate change = %+v, want a fingerprint", c)
	}
	if c := d["clientKey"].(herald.AuditChange); c.Old != "" || c.New != herald.Redacted {
		t.Errorf("key change = %+v", c)
	}
	if herald.AuditURL("") != "" || herald.AuditURL("https://exa mple.com/%zz") != herald.Redacted {
		t.Errorf("AuditURL of nothing or of a URL that does not parse")
	}
}

func TestFlagJSON(t *testing.T) {
	type item struct {
		Secret herald.Flag `json:"secret,omitempty"`
	}
	for _, tc := range []struct {
		in   string
		want herald.Flag
		out  string
	}{
		{`{}`, herald.FlagUnset, `{}`},
		{`{"secret":null}`, herald.FlagUnset, `{}`},
		{`{"secret":true}`, herald.FlagTrue, `{"secret":true}`},
		{`{"secret":false}`, herald.FlagFalse, `{"secret":false}`},
	} {
		var it item
		if err := json.Unmarshal([]byte(tc.in), &it); err != nil || it.Secret != tc.want {
			t.Errorf("unmarshal %s = %v, %v; want %v", tc.in, it.Secret, err, tc.want)
		}
		if b, _ := json.Marshal(it); string(b) != tc.out {
			t.Errorf("marshal %v = %s, want %s", it.Secret, b, tc.out)
		}
	}
	var it item
	if err := json.Unmarshal([]byte(`{"secret":"yes"}`), &it); err == nil {
		t.Error(`"yes" accepted as a flag`)
	}
}

// The test action sends Welkin's placeholders with the real tenant and
// instance names.
func TestPlaceholderEvent(t *testing.T) {
	e := herald.PlaceholderEvent("acme", "sandbox", testEpoch)
	body, err := herald.PayloadConfig{Format: herald.FormatWelkin, PredefinedFields: herald.PredefinedFields}.Render(e)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]any{
		"tenantName": "acme", "instanceName": "sandbox", "sourceId": "SOURCE_ID", "eventSubtype": "EVENT_SUBTYPE",
		"eventEntity": "EVENT_ENTITY", "patientId": "PATIENT_ID", "initiatedBy": "INITIATED_BY", "timestamp": "2026-11-26T17:00:00.000Z",
	} {
		if got[k] != want {
			t.Errorf("%s = %v, want %v (body %s)", k, got[k], want, body)
		}
	}
	if !strings.HasPrefix(e.ID, "evt_") {
		t.Errorf("event id %q", e.ID)
	}
}
