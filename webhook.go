package herald

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Trigger selects the events a webhook listens for: every event of an
// entity, or one subtype. Exactly one of the two is set.
type Trigger struct {
	EventEntity  string `json:"eventEntity,omitempty"`
	EventSubtype string `json:"eventSubtype,omitempty"`
}

// Matches reports whether the trigger selects e.
func (t Trigger) Matches(e *Event) bool {
	if t.EventSubtype != "" {
		return t.EventSubtype == e.Subtype
	}
	return t.EventEntity == e.Entity
}

// MatchesAny reports whether any trigger selects e.
func MatchesAny(triggers []Trigger, e *Event) bool {
	return slices.ContainsFunc(triggers, func(t Trigger) bool { return t.Matches(e) })
}

// DesignerWebhook is a webhook as defined in a tenant's designer draft.
// Nothing reaches an instance until the draft is published.
type DesignerWebhook struct {
	Name      string    `json:"name"`
	Title     string    `json:"title"`
	Triggers  []Trigger `json:"triggers"`
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`
}

// Validate returns an EINVALID error naming the first bad field.
func (w *DesignerWebhook) Validate() error {
	if err := ValidateName("name", w.Name); err != nil {
		return err
	}
	if strings.TrimSpace(w.Title) == "" {
		return FieldErrorf("title", "title is required: a short human name such as \"Patient sync\".")
	}
	if len(w.Title) > 200 {
		return FieldErrorf("title", "title is %d characters long; the limit is 200.", len(w.Title))
	}
	if len(w.Triggers) == 0 {
		return FieldErrorf("triggers", "triggers needs at least one trigger, such as {\"eventSubtype\":\"PATIENT_CREATED\"} or {\"eventEntity\":\"CDT\"}.")
	}
	for i, t := range w.Triggers {
		field := fmt.Sprintf("triggers[%d]", i)
		switch {
		case t.EventEntity != "" && t.EventSubtype != "":
			return FieldErrorf(field, "%s sets both eventEntity and eventSubtype; set one (a subtype already implies its entity).", field)
		case t.EventSubtype != "":
			if _, ok := Catalog.EntityOf(t.EventSubtype); !ok {
				return FieldErrorf(field+".eventSubtype", "%s.eventSubtype %q is not in the event catalog (see GET /v1/catalog).", field, t.EventSubtype)
			}
		case t.EventEntity != "":
			if !Catalog.HasEntity(t.EventEntity) {
				return FieldErrorf(field+".eventEntity", "%s.eventEntity %q is not in the event catalog; known entities: %s.", field, t.EventEntity, strings.Join(Catalog.EntityNames(), ", "))
			}
		default:
			return FieldErrorf(field, "%s is empty; set eventEntity or eventSubtype.", field)
		}
	}
	return nil
}

// DesignerWebhookUpdate is a PATCH of a designer webhook: nil fields keep
// their values.
type DesignerWebhookUpdate struct {
	Title    *string    `json:"title"`
	Triggers *[]Trigger `json:"triggers"`
}

// DraftChange is one pending change of a designer draft against the last
// published version.
type DraftChange struct {
	Action  string           `json:"action"` // "created", "updated" or "deleted"
	Name    string           `json:"name"`
	Webhook *DesignerWebhook `json:"webhook,omitempty"` // nil when deleted
}

// DesignerVersion is an immutable published snapshot of a tenant's designer.
type DesignerVersion struct {
	Version     int               `json:"version"`
	Comment     string            `json:"comment"`
	PublishedAt time.Time         `json:"publishedAt"`
	PublishedBy string            `json:"publishedBy,omitempty"`
	Webhooks    []DesignerWebhook `json:"webhooks,omitempty"`
}

// DesignerService edits a tenant's draft and publishes it.
type DesignerService interface {
	// CreateDesignerWebhook adds a webhook to the draft. ECONFLICT if the
	// name is taken in the draft, ENOTFOUND if the tenant is unknown.
	CreateDesignerWebhook(ctx context.Context, tenant string, w *DesignerWebhook) error
	// GetDesignerWebhook returns a webhook of the draft, or ENOTFOUND.
	GetDesignerWebhook(ctx context.Context, tenant, name string) (*DesignerWebhook, error)
	// ListDesignerWebhooks returns the draft's webhooks sorted by name.
	ListDesignerWebhooks(ctx context.Context, tenant string) ([]*DesignerWebhook, error)
	// UpdateDesignerWebhook merges upd into a draft webhook, validates the
	// result and returns it.
	UpdateDesignerWebhook(ctx context.Context, tenant, name string, upd DesignerWebhookUpdate) (*DesignerWebhook, error)
	// DeleteDesignerWebhook removes a webhook from the draft; instances keep
	// it until the draft is published.
	DeleteDesignerWebhook(ctx context.Context, tenant, name string) error
	// Draft returns the changes of the draft against the last published
	// version, sorted by name; empty when there are none.
	Draft(ctx context.Context, tenant string) ([]DraftChange, error)
	// Publish snapshots the draft as the next version and applies it to
	// every instance of the tenant: new webhooks appear inactive with a fresh
	// signing secret, changed ones get their new title and triggers, deleted
	// ones are deactivated and removed. ECONFLICT when nothing changed.
	Publish(ctx context.Context, tenant, comment, by string) (*DesignerVersion, error)
	// ListVersions returns the published versions, newest first, without
	// their webhooks; ENOTFOUND for an unknown tenant.
	ListVersions(ctx context.Context, tenant string) ([]*DesignerVersion, error)
}

// Payload formats.
const (
	FormatWelkin   = "welkin"   // flat: eventId, timestamp and the selected fields at the top level
	FormatStandard = "standard" // {type, timestamp, data:{...the rest...}}
)

// Predefined payload fields, as Welkin names them.
const (
	FieldEventEntity  = "EVENT_ENTITY"
	FieldEventSubtype = "EVENT_SUBTYPE"
	FieldSourceID     = "SOURCE_ID"
	FieldSourceName   = "SOURCE_NAME"
	FieldPatientID    = "PATIENT_ID"
	FieldTenantName   = "TENANT_NAME"
	FieldInstanceName = "INSTANCE_NAME"
	FieldURL          = "URL"
	FieldInitiatedBy  = "INITIATED_BY" // the five initiatedBy* fields
	FieldData         = "DATA"         // the event's data object; may carry health data
)

// PredefinedFields lists every predefined field in payload order.
var PredefinedFields = []string{FieldEventEntity, FieldEventSubtype, FieldSourceID, FieldSourceName,
	FieldPatientID, FieldTenantName, FieldInstanceName, FieldURL, FieldInitiatedBy, FieldData}

// DefaultPredefinedFields are selected on a new webhook: everything but
// INITIATED_BY and DATA (minimum necessary).
var DefaultPredefinedFields = []string{FieldEventEntity, FieldEventSubtype, FieldSourceID, FieldSourceName,
	FieldPatientID, FieldTenantName, FieldInstanceName, FieldURL}

// PayloadConfig says what a webhook's body looks like.
type PayloadConfig struct {
	Format           string      `json:"format"`
	PredefinedFields []string    `json:"predefinedFields"`
	CustomFields     []NameValue `json:"customFields"`
}

// PayloadUpdate is a PATCH of a PayloadConfig: nil fields keep their values.
type PayloadUpdate struct {
	Format           *string      `json:"format"`
	PredefinedFields *[]string    `json:"predefinedFields"`
	CustomFields     *[]NameValue `json:"customFields"`
}

// Webhook is a published webhook as one instance sees it: where to send,
// how, and whether it is active.
type Webhook struct {
	ID       string    `json:"-"`
	Tenant   string    `json:"tenant"`
	Instance string    `json:"instance"`
	Name     string    `json:"name"`
	Title    string    `json:"title"`
	Triggers []Trigger `json:"triggers"`
	// Version is the designer version this webhook was last published in.
	Version int `json:"version"`

	URL             string        `json:"url"`
	Headers         []NameValue   `json:"headers"`
	QueryParameters []NameValue   `json:"queryParameters"`
	Payload         PayloadConfig `json:"payload"`
	TimeoutSeconds  int           `json:"timeoutSeconds"`
	// ClientCertificate is the certificate chain (PEM) Herald presents to a
	// receiver that asks for a TLS client certificate (mutual TLS); "" for
	// none. It is set together with ClientKey.
	ClientCertificate string `json:"clientCertificate"`
	// ClientKey is ClientCertificate's private key (PEM): a credential. It
	// is write-only: the JSON form carries only hasClientKey.
	ClientKey PrivateKeyPEM `json:"-"`
	// Signing says how requests are signed (hmac-sha256 by default).
	Signing SigningConfig `json:"signing"`
	// Ordering is how its deliveries are ordered: OrderingNone (the
	// default), OrderingPatient or OrderingSource (ordering.go).
	Ordering string `json:"ordering"`
	// RateLimitPerSecond caps the requests sent to the webhook per second,
	// across all nodes (pace.go); nil for no limit.
	RateLimitPerSecond *int `json:"rateLimitPerSecond"`
	// Pace is how the node that answers paces the webhook now; read-only,
	// set by the API from the engine, absent where there is none.
	Pace *WebhookPace `json:"pace,omitempty"`

	Active bool `json:"active"`
	// DeactivatedReason says why an inactive webhook was deactivated
	// ("410 Gone from the receiver", "deactivated by admin"...); "" if never.
	DeactivatedReason string     `json:"deactivatedReason,omitempty"`
	DeactivatedAt     *time.Time `json:"deactivatedAt,omitempty"`
	// Health is the webhook's failure record, kept as attempt results are
	// written; read-only.
	Health WebhookHealthRecord `json:"health"`

	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`
}

// MarshalJSON writes w with "hasClientKey" in place of its client key,
// which never leaves Herald.
func (w Webhook) MarshalJSON() ([]byte, error) {
	type plain Webhook // without this method
	return json.Marshal(struct {
		plain
		HasClientKey bool `json:"hasClientKey"`
	}{plain(w), w.ClientKey != ""})
}

// PrivateKeyPEM is a private key in PEM form: a credential. It prints,
// logs and marshals as "[redacted]", so no log line or answer can carry
// it by accident; string(k) is the key.
type PrivateKeyPEM string

// String returns "[redacted]", or "" for no key.
func (k PrivateKeyPEM) String() string {
	if k == "" {
		return ""
	}
	return "[redacted]"
}

// GoString returns what String does, for %#v.
func (k PrivateKeyPEM) GoString() string { return k.String() }

// LogValue returns what String does, for log/slog.
func (k PrivateKeyPEM) LogValue() slog.Value { return slog.StringValue(k.String()) }

// MarshalJSON writes what String does.
func (k PrivateKeyPEM) MarshalJSON() ([]byte, error) { return json.Marshal(k.String()) }

// Limits of a webhook's client certificate and key, in bytes: a chain of a
// few certificates, and one key.
const (
	maxClientCertificate = 64 << 10
	maxClientKey         = 16 << 10
)

// Default and limit of a webhook's request timeout.
const (
	DefaultTimeoutSeconds = 30
	MaxTimeoutSeconds     = 120
)

// WebhookUpdate is a PATCH of an admin webhook: nil fields keep their values,
// also inside Payload.
type WebhookUpdate struct {
	URL             *string        `json:"url"`
	Headers         *[]NameValue   `json:"headers"`
	QueryParameters *[]NameValue   `json:"queryParameters"`
	Payload         *PayloadUpdate `json:"payload"`
	TimeoutSeconds  *int           `json:"timeoutSeconds"`
	// ClientCertificate and ClientKey set the TLS client certificate and
	// its key (PEM) together; "" clears them.
	ClientCertificate *string `json:"clientCertificate"`
	ClientKey         *string `json:"clientKey"`
	// Signing changes the signing algorithm; the store then makes a new
	// key of the new kind and keeps the old one signing for
	// DefaultSigningGrace.
	Signing *SigningUpdate `json:"signing"`
	// Ordering sets Webhook.Ordering.
	Ordering *string `json:"ordering"`
	// RateLimitPerSecond sets the webhook's rate limit; null clears it.
	RateLimitPerSecond RateLimitUpdate `json:"rateLimitPerSecond,omitzero"`
}

// Apply merges u into w.
func (u WebhookUpdate) Apply(w *Webhook) {
	if u.URL != nil {
		w.URL = strings.TrimSpace(*u.URL)
	}
	if u.Headers != nil {
		w.Headers = mergePairs(w.Headers, *u.Headers, true)
	}
	if u.QueryParameters != nil {
		w.QueryParameters = mergePairs(w.QueryParameters, *u.QueryParameters, false)
	}
	if u.TimeoutSeconds != nil {
		w.TimeoutSeconds = *u.TimeoutSeconds
	}
	if u.ClientCertificate != nil {
		w.ClientCertificate = pemText(*u.ClientCertificate)
	}
	if u.ClientKey != nil {
		w.ClientKey = PrivateKeyPEM(pemText(*u.ClientKey))
	}
	u.Signing.apply(&w.Signing)
	if u.Ordering != nil {
		w.Ordering = *u.Ordering
	}
	if u.RateLimitPerSecond.Set {
		w.RateLimitPerSecond = u.RateLimitPerSecond.Value
	}
	if p := u.Payload; p != nil {
		if p.Format != nil {
			w.Payload.Format = *p.Format
		}
		if p.PredefinedFields != nil {
			w.Payload.PredefinedFields = *p.PredefinedFields
		}
		if p.CustomFields != nil {
			w.Payload.CustomFields = *p.CustomFields
		}
	}
}

// maskPrefix starts every masked value. Its characters are not allowed in
// a header value, so a masked value is never taken for a real one.
const maskPrefix = "••••"

// MaskValue returns v as answers and pages show a secret value: the mask
// and, for values long enough that it gives little away, the last four
// characters ("••••-123"); "" stays "". It counts characters, not bytes,
// so a mask never ends in part of one (which JSON would show as U+FFFD,
// and which sent back would then mask nothing).
func MaskValue(v string) string {
	r := []rune(v)
	switch {
	case v == "":
		return ""
	case len(r) >= 12:
		return maskPrefix + string(r[len(r)-4:])
	}
	return maskPrefix
}

// IsMasked reports whether v has the form of a masked value.
func IsMasked(v string) bool { return strings.HasPrefix(v, maskPrefix) }

// secretWords mark a header or query parameter name as holding a credential.
var secretWords = []string{"token", "secret", "key", "password", "auth", "cookie", "signature", "credential"}

// SecretByDefault reports whether a header or query parameter of this name
// is secret when the update does not say: Authorization, Cookie, X-Api-Key
// and every name containing token, secret, key, password (and a few more
// words that name credentials).
func SecretByDefault(name string) bool {
	n := strings.ToLower(name)
	for _, w := range secretWords {
		if strings.Contains(n, w) {
			return true
		}
	}
	return false
}

// IsSecret reports whether nv's value is secret: as marked, or by its name.
func (nv NameValue) IsSecret() bool {
	if nv.Secret != FlagUnset {
		return nv.Secret == FlagTrue
	}
	return SecretByDefault(nv.Name)
}

// Masked returns a copy of w for showing: the value of every secret header
// and query parameter masked. Only an admin's explicit reveal shows one.
func (w *Webhook) Masked() *Webhook {
	c := *w
	c.Headers = maskPairs(w.Headers)
	c.QueryParameters = maskPairs(w.QueryParameters)
	return &c
}

func maskPairs(list []NameValue) []NameValue {
	if list == nil {
		return nil
	}
	out := make([]NameValue, len(list))
	for i, nv := range list {
		secret := nv.IsSecret()
		out[i] = NameValue{Name: nv.Name, Value: nv.Value, Secret: FlagOf(secret)}
		if secret {
			out[i].Value = MaskValue(nv.Value)
		}
	}
	return out
}

// mergePairs returns the new list of headers or query parameters: each
// item's secret flag decided (when not given: as the stored item of that
// name had it, else by its name), and a masked
// value that is the mask of the stored value of the same name replaced by
// the stored value, so a form or a GET-modify-PATCH that sends back what
// it was shown keeps the secret. Each stored value restores one masked
// value, in order: two headers of one name whose masks look alike keep a
// value each.
func mergePairs(stored, next []NameValue, fold bool) []NameValue {
	out := make([]NameValue, len(next))
	restored := make([]bool, len(stored))
	for i, nv := range next {
		if nv.Secret == FlagUnset {
			// A form that does not say keeps what the API marked.
			for _, old := range stored {
				if old.Name == nv.Name || (fold && strings.EqualFold(old.Name, nv.Name)) {
					nv.Secret = old.Secret
					break
				}
			}
		}
		nv.Secret = FlagOf(nv.IsSecret())
		if IsMasked(nv.Value) {
			for j, old := range stored {
				same := old.Name == nv.Name || (fold && strings.EqualFold(old.Name, nv.Name))
				if same && !restored[j] && old.IsSecret() && MaskValue(old.Value) == nv.Value {
					nv.Value, restored[j] = old.Value, true
					break
				}
			}
		}
		out[i] = nv
	}
	return out
}

// pemText is s as a PEM file has it: no white space around it, one
// newline at the end; "" stays "".
func pemText(s string) string {
	if s = strings.TrimSpace(s); s != "" {
		s += "\n"
	}
	return s
}

// RequireHTTPS returns an EINVALID error naming url when u sets a URL that
// is not https://: what a server started with --require-https-destinations
// accepts. Clearing the URL is allowed.
func (u WebhookUpdate) RequireHTTPS() error {
	if u.URL == nil {
		return nil
	}
	raw := strings.TrimSpace(*u.URL)
	if raw == "" || raw == ListenURL {
		return nil // listen: dials nothing
	}
	if v, err := url.Parse(raw); err == nil && strings.EqualFold(v.Scheme, "https") {
		return nil
	}
	return FieldErrorf("url", "url must start with https://: this Herald sends only over HTTPS (it is started with --require-https-destinations), so %q would never be delivered.", raw)
}

// reservedHeaders are set by Herald on every request and cannot be configured.
var reservedHeaders = []string{"content-type", "content-length", "user-agent", "host",
	"webhook-id", "webhook-timestamp", "webhook-signature", "transfer-encoding", "connection"}

// Validate returns an EINVALID error naming the first bad admin setting.
// An empty URL is valid (the webhook cannot be activated until it has
// one), and so is ListenURL.
func (w *Webhook) Validate() error {
	if w.URL != "" && w.URL != ListenURL {
		if len(w.URL) >= len(ListenURL) && strings.EqualFold(w.URL[:len(ListenURL)], ListenURL) {
			return FieldErrorf("url", "url %q is not valid: to hand deliveries to herald listen, the url is exactly %q, with nothing after it.", w.URL, ListenURL)
		}
		if err := ValidateURL("url", w.URL); err != nil {
			return err
		}
	}
	for i, h := range w.Headers {
		field := fmt.Sprintf("headers[%d].name", i)
		if !validHeaderName(h.Name) {
			return FieldErrorf(field, "%s %q is not a valid HTTP header name (letters, digits and !#$%%&'*+-.^_`|~).", field, h.Name)
		}
		if slices.Contains(reservedHeaders, strings.ToLower(h.Name)) {
			return FieldErrorf(field, "%s %q is set by Herald on every request and cannot be configured.", field, h.Name)
		}
		if !validHeaderValue(h.Value) {
			return FieldErrorf(fmt.Sprintf("headers[%d].value", i), "headers[%d].value must not contain line breaks, NUL or other control characters (a tab is fine).", i)
		}
		if IsMasked(h.Value) {
			return errMasked(fmt.Sprintf("headers[%d].value", i))
		}
	}
	for i, q := range w.QueryParameters {
		if q.Name == "" {
			return FieldErrorf(fmt.Sprintf("queryParameters[%d].name", i), "queryParameters[%d].name is required.", i)
		}
		if IsMasked(q.Value) {
			return errMasked(fmt.Sprintf("queryParameters[%d].value", i))
		}
	}
	switch w.Payload.Format {
	case FormatWelkin, FormatStandard:
	default:
		return FieldErrorf("payload.format", "payload.format %q is not known; use \"welkin\" or \"standard\".", w.Payload.Format)
	}
	for i, f := range w.Payload.PredefinedFields {
		if !slices.Contains(PredefinedFields, f) {
			return FieldErrorf(fmt.Sprintf("payload.predefinedFields[%d]", i), "payload.predefinedFields[%d] %q is not a predefined field; choose from %s.", i, f, strings.Join(PredefinedFields, ", "))
		}
	}
	for i, c := range w.Payload.CustomFields {
		field := fmt.Sprintf("payload.customFields[%d].name", i)
		if c.Name == "" {
			return FieldErrorf(field, "%s is required.", field)
		}
		if reservedPayloadKey(c.Name) {
			return FieldErrorf(field, "%s %q would overwrite a predefined payload field; choose another name.", field, c.Name)
		}
		if c.Secret != FlagUnset {
			return FieldErrorf(fmt.Sprintf("payload.customFields[%d].secret", i), "payload.customFields[%d].secret cannot be set: custom fields are sent in every payload, so they are not secret; put credentials in a header.", i)
		}
	}
	if w.TimeoutSeconds < 1 || w.TimeoutSeconds > MaxTimeoutSeconds {
		return FieldErrorf("timeoutSeconds", "timeoutSeconds must be between 1 and %d; it is %d.", MaxTimeoutSeconds, w.TimeoutSeconds)
	}
	if err := validateOrdering(w.Ordering); err != nil {
		return err
	}
	if err := w.Signing.validate(); err != nil {
		return err
	}
	if err := validateRateLimit(w.RateLimitPerSecond); err != nil {
		return err
	}
	return validateClientPair(w.ClientCertificate, w.ClientKey)
}

// errMasked is the error for a masked value that masks no stored value.
func errMasked(field string) error {
	return FieldErrorf(field, "%s is a masked value (as answers show secrets) that does not match the stored value of that name; send the real value, or send back exactly what GET showed to keep the stored one.", field)
}

// validateClientPair returns an EINVALID error naming clientCertificate or
// clientKey unless both are empty, or cert is a PEM chain of certificates
// (and nothing else: a key pasted there would be shown by every GET) and
// key is the matching private key.
func validateClientPair(cert string, key PrivateKeyPEM) error {
	switch {
	case cert == "" && key == "":
		return nil
	case len(cert) > maxClientCertificate:
		return FieldErrorf("clientCertificate", "clientCertificate is %d bytes long; the limit is %d KiB.", len(cert), maxClientCertificate>>10)
	case len(key) > maxClientKey:
		return FieldErrorf("clientKey", "clientKey is %d bytes long; the limit is %d KiB.", len(key), maxClientKey>>10)
	case cert == "":
		return FieldErrorf("clientCertificate", "clientCertificate is required with clientKey: the PEM certificate (-----BEGIN CERTIFICATE-----) that goes with the key.")
	case key == "":
		return FieldErrorf("clientKey", "clientKey is required with clientCertificate: the PEM private key of the certificate (-----BEGIN PRIVATE KEY-----).")
	}
	rest := []byte(cert)
	for n := 0; ; n++ {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			if n == 0 || strings.TrimSpace(string(rest)) != "" {
				return FieldErrorf("clientCertificate", "clientCertificate must be one or more PEM certificates (-----BEGIN CERTIFICATE-----) and nothing else.")
			}
			break
		}
		if b.Type != "CERTIFICATE" {
			return FieldErrorf("clientCertificate", "clientCertificate holds a %s block; it must hold only certificates (put the private key in clientKey, which is never shown again).", b.Type)
		}
		if _, err := x509.ParseCertificate(b.Bytes); err != nil {
			return FieldErrorf("clientCertificate", "clientCertificate's certificate %d does not parse: %v.", n+1, err)
		}
	}
	if _, err := tls.X509KeyPair([]byte(cert), []byte(key)); err != nil {
		if b, _ := pem.Decode([]byte(key)); b == nil || !strings.HasSuffix(b.Type, "PRIVATE KEY") {
			return FieldErrorf("clientKey", "clientKey must be a PEM private key (-----BEGIN PRIVATE KEY-----, RSA or EC PRIVATE KEY).")
		}
		return FieldErrorf("clientKey", "clientKey does not go with clientCertificate: %v.", strings.TrimPrefix(err.Error(), "tls: "))
	}
	return nil
}

// ValidateURL returns an EINVALID error naming field unless raw is an
// absolute http or https URL with a host and no user info or fragment.
// Whether the host is an allowed destination is decided at dial time.
func ValidateURL(field, raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return FieldErrorf(field, "%s %q is not a valid URL: %v.", field, raw, unwrapURLError(err))
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return FieldErrorf(field, "%s must start with https:// or http://; %q does not.", field, raw)
	}
	if u.Host == "" || u.Hostname() == "" {
		return FieldErrorf(field, "%s %q has no host name.", field, raw)
	}
	if u.User != nil {
		return FieldErrorf(field, "%s must not carry a user name or password; send credentials in a header instead.", field)
	}
	if u.Fragment != "" {
		return FieldErrorf(field, "%s must not have a #fragment.", field)
	}
	if p := u.Port(); p != "" {
		if n, err := net.LookupPort("tcp", p); err != nil || n == 0 { // "0" and "00" alike
			return FieldErrorf(field, "%s has an invalid port %q.", field, p)
		}
	}
	if len(raw) > 2048 {
		return FieldErrorf(field, "%s is %d characters long; the limit is 2048.", field, len(raw))
	}
	// Written out again (as it is stored and sent) it must still parse: a
	// byte that is not ASCII in an IPv6 zone, for one, is escaped into
	// what the parser then refuses.
	if _, err := url.Parse(u.String()); err != nil {
		return FieldErrorf(field, "%s %q has characters that cannot be written in a URL (%v); percent-encode them.", field, raw, unwrapURLError(err))
	}
	return nil
}

func unwrapURLError(err error) error {
	if ue, ok := err.(*url.Error); ok {
		return ue.Err
	}
	return err
}

// validHeaderValue reports whether net/http sends s as a header value: no
// control character but tab. A value it refuses would fail every attempt.
func validHeaderValue(s string) bool {
	return !strings.ContainsFunc(s, func(r rune) bool { return r < ' ' && r != '\t' || r == 0x7f })
}

func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("!#$%&'*+-.^_`|~", r)) {
			return false
		}
	}
	return true
}

// WebhookSecret is a signing key: a "whsec_" secret (hmac-sha256) or a
// "whsk_" ed25519 private key (ed25519), which no answer ever carries. The
// current key has no expiry; a rotated-out key is still used to sign
// until ExpiresAt.
type WebhookSecret struct {
	Secret    string     `json:"secret"`
	ExpiresAt *time.Time `json:"expiresAt,omitempty"`
}

// SigningKeys returns the secrets' values in order (the current secret
// first, as WebhookSecrets returns them): what signs a request.
func SigningKeys(secrets []WebhookSecret) []string {
	keys := make([]string, len(secrets))
	for i, s := range secrets {
		keys[i] = s.Secret
	}
	return keys
}

// WebhookService manages the published webhooks of an instance.
type WebhookService interface {
	// ListWebhooks returns the webhooks of an instance sorted by name;
	// ENOTFOUND for an unknown tenant or instance.
	ListWebhooks(ctx context.Context, tenant, instance string) ([]*Webhook, error)
	// GetWebhook returns one webhook of an instance, or ENOTFOUND.
	GetWebhook(ctx context.Context, tenant, instance, name string) (*Webhook, error)
	// UpdateWebhook merges upd, validates the result, stores and returns it.
	// Clearing the URL of an active webhook is EUNPROCESSABLE.
	UpdateWebhook(ctx context.Context, tenant, instance, name string, upd WebhookUpdate) (*Webhook, error)
	// ActivateWebhook makes a webhook receive events from now on.
	// EUNPROCESSABLE when it has no URL.
	ActivateWebhook(ctx context.Context, tenant, instance, name string) (*Webhook, error)
	// DeactivateWebhook stops a webhook: its PENDING, RETRYING and SENT
	// deliveries become CANCELLED (recoverable), and no new ones are made.
	// An empty reason is stored as "deactivated by admin".
	DeactivateWebhook(ctx context.Context, tenant, instance, name, reason string) (*Webhook, error)
	// WebhookSecrets returns the current secret first, then rotated-out
	// secrets still within their grace period.
	WebhookSecrets(ctx context.Context, tenant, instance, name string) ([]WebhookSecret, error)
	// RotateWebhookSecret makes a new current key of the webhook's signing
	// algorithm; the old ones keep signing for at most grace (zero: they
	// all stop at once, as for a leaked key). Returns the new key: a
	// "whsec_" secret, or for ed25519 the "whsk_" private key, whose public
	// key (signature.PublicKey) is all an answer may show.
	RotateWebhookSecret(ctx context.Context, tenant, instance, name string, grace time.Duration) (string, error)
	// RecoverWebhook re-queues the webhook's FAILED and CANCELLED deliveries
	// created at or after since, as PENDING and due now. EUNPROCESSABLE if
	// the webhook is inactive. Returns how many were re-queued.
	RecoverWebhook(ctx context.Context, tenant, instance, name string, since time.Time) (int, error)
	// RetryWebhookNow makes the webhook's RETRYING deliveries due now,
	// keeping their attempts and retry windows: what waited for a `herald
	// listen` goes as soon as one connects. ENOTFOUND for an unknown
	// webhook. Returns how many were made due.
	RetryWebhookNow(ctx context.Context, tenant, instance, name string) (int, error)
}

// DefaultBreakerThreshold is how many consecutive failed attempts open a
// webhook's circuit breaker unless the engine is configured otherwise:
// from then on it is sent one request at a time until one succeeds.
const DefaultBreakerThreshold = 5

// Webhook health states, as WebhookHealthRecord.State names them.
const (
	HealthHealthy = "healthy" // its last attempt delivered, or none was made
	HealthFailing = "failing" // attempts failed since the last that delivered
	HealthProbing = "probing" // DefaultBreakerThreshold or more of them in a row: sent one at a time
)

// WebhookHealthRecord is what the store keeps of a webhook's failures: when
// its current run of failed attempts began and how many there are. From
// these its answer shows a state (State). The engine's breaker counts on
// each node for itself (see the dispatch package); the stored count is all
// nodes' together, so "probing" is what the breaker does when the engine
// runs with the default threshold.
type WebhookHealthRecord struct {
	// FailingSince is when the first attempt failed after the last that
	// delivered; nil when none failed since.
	FailingSince *time.Time
	// ConsecutiveFailures counts the attempts that failed since then.
	ConsecutiveFailures int
}

// State is healthy, failing or probing.
func (h WebhookHealthRecord) State() string {
	switch {
	case h.FailingSince == nil:
		return HealthHealthy
	case h.ConsecutiveFailures >= DefaultBreakerThreshold:
		return HealthProbing
	}
	return HealthFailing
}

// MarshalJSON writes h as {"state", "failingSince", "consecutiveFailures"}.
func (h WebhookHealthRecord) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		State               string     `json:"state"`
		FailingSince        *time.Time `json:"failingSince,omitempty"`
		ConsecutiveFailures int        `json:"consecutiveFailures"`
	}{h.State(), h.FailingSince, h.ConsecutiveFailures})
}
