package webui

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/heraldhooks/herald"
	"github.com/heraldhooks/herald/access"
	"github.com/heraldhooks/herald/signature"
)

// statsWindow is how far back the webhook list's success rate looks.
const statsWindow = 24 * time.Hour

type webhookRow struct {
	Webhook *herald.Webhook
	Stats   *herald.WebhookStats
}

type webhooksData struct {
	Rows     []webhookRow
	Window   string
	CanStats bool
}

func (u *ui) webhooks(w http.ResponseWriter, r *http.Request) error {
	tenant, instance := r.PathValue("tenant"), r.PathValue("instance")
	list, err := u.store.ListWebhooks(r.Context(), tenant, instance)
	if err != nil {
		return err
	}
	d := webhooksData{Window: "24 h", CanStats: access.Can(state(r).principal, access.ReadEvents, tenant)}
	stats := map[string]*herald.WebhookStats{}
	if d.CanStats {
		all, err := u.store.WebhookStats(r.Context(), tenant, instance, u.now().Add(-statsWindow))
		if err != nil {
			return err
		}
		for _, s := range all {
			stats[s.Webhook] = s
		}
	}
	for _, wh := range list {
		d.Rows = append(d.Rows, webhookRow{Webhook: wh, Stats: stats[wh.Name]})
	}
	return u.render(w, r, http.StatusOK, "webhooks", "Webhooks", d)
}

// settingsForm is the admin settings form: what is stored, or what was
// posted when it was refused.
type settingsForm struct {
	URL     string
	Headers []herald.NameValue
	Query   []herald.NameValue
	Format  string
	Fields  []string
	Custom  []herald.NameValue
	Timeout string
	// Ordering is the webhook's ordering (herald.Orderings).
	Ordering string
	// RateLimit is rateLimitPerSecond as typed; "" for no limit.
	RateLimit string
	// ClientCertificate is the TLS client certificate (PEM). The key is
	// never shown: HasClientKey says whether one is stored.
	ClientCertificate string
	HasClientKey      bool
	ErrorSection      string // "url", "headers", "query", "format", "fields", "custom", "ordering", "timeout", "ratelimit", "tls"
	Error             string
	// Posted is true when the values are the refused ones just posted.
	Posted bool
}

// webhookData is the webhook page: its state, settings, chart, and the
// outcome of the form that was just posted, if any.
type webhookData struct {
	Webhook    *herald.Webhook
	Stats      *herald.WebhookStats
	Chart      *chart
	Form       settingsForm
	AllFields  []string
	Secret     string   // revealed or new secret, shown once on this answer
	SecretNew  bool     // Secret is the result of a rotation
	OldSecrets []string // expiry of rotated-out secrets still signing, as text
	// PublicKey is an ed25519 webhook's public key (whpk_...), shown to
	// whoever sees the page; PreviousKeys the expiry of rotated-out keys
	// still signing, as text. The private key is never shown.
	PublicKey    string
	PreviousKeys []string
	Test         *herald.Attempt
	Notice       string // the outcome of an action
	ActionError  string // why an action (activate, test, recover...) was refused
	RecoverFrom  string // the recover form's value
	// ReplayFrom and ReplayUntil are the replay form's values (default:
	// the last 24 h); Replays the webhook's latest replays.
	ReplayFrom, ReplayUntil string
	Replays                 []*herald.Replay
	Now                     time.Time
}

func blankRows(nv []herald.NameValue, n int) []herald.NameValue {
	out := append([]herald.NameValue{}, nv...)
	for range n {
		out = append(out, herald.NameValue{})
	}
	return out
}

func formOf(wh *herald.Webhook) settingsForm {
	f := settingsForm{URL: wh.URL, Headers: wh.Headers, Query: wh.QueryParameters, Format: wh.Payload.Format,
		Fields: wh.Payload.PredefinedFields, Custom: wh.Payload.CustomFields, Timeout: strconv.Itoa(wh.TimeoutSeconds),
		Ordering: herald.OrderingOrDefault(wh.Ordering), ClientCertificate: wh.ClientCertificate, HasClientKey: wh.ClientKey != ""}
	if wh.RateLimitPerSecond != nil {
		f.RateLimit = strconv.Itoa(*wh.RateLimitPerSecond)
	}
	return f
}

// webhookPage renders the webhook page with d filled in from the store
// where the caller left it empty.
func (u *ui) webhookPage(w http.ResponseWriter, r *http.Request, status int, d webhookData) error {
	tenant, instance, name := r.PathValue("tenant"), r.PathValue("instance"), r.PathValue("name")
	wh, err := u.store.GetWebhook(r.Context(), tenant, instance, name)
	if err != nil {
		return err
	}
	// Secret header and query parameter values are shown masked; the form
	// sends the mask back, which keeps the stored value.
	wh = wh.Masked()
	if u.pacer != nil {
		p := u.pacer.Pace(wh.ID)
		wh.Pace = &p
	}
	d.Webhook, d.AllFields, d.Now = wh, herald.PredefinedFields, u.now()
	if !d.Form.Posted {
		d.Form = formOf(wh)
	} else if _, ok := r.PostForm["client_certificate"]; !ok {
		d.Form.ClientCertificate = wh.ClientCertificate
	}
	d.Form.HasClientKey = wh.ClientKey != ""
	if d.Form.Ordering == "" { // posted by a form without the choice
		d.Form.Ordering = herald.OrderingOrDefault(wh.Ordering)
	}
	if d.ReplayFrom == "" && d.ReplayUntil == "" {
		now := u.now().UTC()
		d.ReplayFrom, d.ReplayUntil = now.Add(-24*time.Hour).Format("2006-01-02T15:04"), now.Add(time.Minute).Format("2006-01-02T15:04")
	}
	if access.Can(state(r).principal, access.ReadEvents, tenant) {
		if d.Replays, err = u.store.ListReplays(r.Context(), tenant, instance, name, 5); err != nil {
			return err
		}
	}
	if wh.Signing.Algorithm == herald.SigningEd25519 {
		secrets, err := u.store.WebhookSecrets(r.Context(), tenant, instance, name)
		if err != nil {
			return err
		}
		for i, s := range secrets {
			if i == 0 && signature.IsPrivateKey(s.Secret) {
				if d.PublicKey, err = signature.PublicKey(s.Secret); err != nil {
					return err
				}
			} else if i > 0 && s.ExpiresAt != nil {
				d.PreviousKeys = append(d.PreviousKeys, when(s.ExpiresAt))
			}
		}
	}
	d.Form.Headers, d.Form.Query, d.Form.Custom = blankRows(d.Form.Headers, 2), blankRows(d.Form.Query, 2), blankRows(d.Form.Custom, 2)
	if access.Can(state(r).principal, access.ReadEvents, tenant) {
		all, err := u.store.WebhookStats(r.Context(), tenant, instance, u.now().Add(-statsWindow))
		if err != nil {
			return err
		}
		for _, s := range all {
			if s.Webhook == name {
				d.Stats = s
			}
		}
		to := u.now().Truncate(time.Minute).Add(time.Minute)
		buckets, err := u.store.DeliveryTimeline(r.Context(), tenant, instance, name, to.Add(-chartMinutes*time.Minute), to, time.Minute)
		if err != nil {
			return err
		}
		d.Chart = newChart(buckets)
	}
	return u.render(w, r, status, "webhook", wh.Title, d)
}

func (u *ui) webhook(w http.ResponseWriter, r *http.Request) error {
	return u.webhookPage(w, r, http.StatusOK, webhookData{})
}

// pairs reads the name/value rows of a form, skipping rows left empty.
func pairs(r *http.Request, names, values string) []herald.NameValue {
	ns, vs := r.PostForm[names], r.PostForm[values]
	out := []herald.NameValue{}
	for i, n := range ns {
		v := ""
		if i < len(vs) {
			v = vs[i]
		}
		n = strings.TrimSpace(n)
		if n == "" && strings.TrimSpace(v) == "" {
			continue
		}
		out = append(out, herald.NameValue{Name: n, Value: v})
	}
	return out
}

// sectionOfField maps a validation error's field to the part of the
// settings form it is shown beside.
func sectionOfField(field string) string {
	switch {
	case strings.HasPrefix(field, "headers"):
		return "headers"
	case strings.HasPrefix(field, "queryParameters"):
		return "query"
	case strings.HasPrefix(field, "payload.customFields"):
		return "custom"
	case strings.HasPrefix(field, "payload.predefinedFields"):
		return "fields"
	case strings.HasPrefix(field, "payload.format"):
		return "format"
	case field == "timeoutSeconds":
		return "timeout"
	case field == "ordering":
		return "ordering"
	case field == "rateLimitPerSecond":
		return "ratelimit"
	case field == "clientCertificate", field == "clientKey":
		return "tls"
	default:
		return "url"
	}
}

func (u *ui) webhookUpdate(w http.ResponseWriter, r *http.Request) error {
	f := settingsForm{
		URL:       strings.TrimSpace(r.PostForm.Get("url")),
		Headers:   pairs(r, "header_name", "header_value"),
		Query:     pairs(r, "query_name", "query_value"),
		Format:    r.PostForm.Get("format"),
		Fields:    r.PostForm["field"],
		Custom:    pairs(r, "custom_name", "custom_value"),
		Timeout:   strings.TrimSpace(r.PostForm.Get("timeout")),
		RateLimit: strings.TrimSpace(r.PostForm.Get("rate_limit")),
	}
	if f.Fields == nil {
		f.Fields = []string{}
	}
	var err error
	timeout, convErr := strconv.Atoi(f.Timeout)
	upd := herald.WebhookUpdate{
		URL: &f.URL, Headers: &f.Headers, QueryParameters: &f.Query, TimeoutSeconds: &timeout,
		Payload: &herald.PayloadUpdate{Format: &f.Format, PredefinedFields: &f.Fields, CustomFields: &f.Custom},
	}
	if _, ok := r.PostForm["ordering"]; ok {
		f.Ordering = r.PostForm.Get("ordering")
		upd.Ordering = &f.Ordering
	}
	if _, ok := r.PostForm["client_certificate"]; ok {
		// An empty certificate removes the pair; an empty key keeps the
		// stored one (it is never sent to the browser).
		f.ClientCertificate = strings.TrimSpace(r.PostForm.Get("client_certificate"))
		upd.ClientCertificate = &f.ClientCertificate
		if key := r.PostForm.Get("client_key"); f.ClientCertificate == "" || strings.TrimSpace(key) != "" {
			upd.ClientKey = &key
		}
	}
	// An empty rate limit is none.
	upd.RateLimitPerSecond.Set = true
	var rateErr error
	if f.RateLimit != "" {
		limit, err := strconv.Atoi(f.RateLimit)
		if err != nil {
			rateErr = herald.FieldErrorf("rateLimitPerSecond", "The rate limit must be a whole number of requests per second, from 1 to %d, or empty for none; %q is not.", herald.MaxRateLimitPerSecond, f.RateLimit)
		}
		upd.RateLimitPerSecond.Value = &limit
	}
	if rateErr != nil {
		err = rateErr
	} else if convErr != nil {
		err = herald.FieldErrorf("timeoutSeconds", "The timeout must be a whole number of seconds, from 1 to %d; %q is not.", herald.MaxTimeoutSeconds, f.Timeout)
	} else if u.requireHTTPS {
		err = upd.RequireHTTPS()
	}
	if err == nil {
		var before, after *herald.Webhook
		before, err = u.store.GetWebhook(r.Context(), r.PathValue("tenant"), r.PathValue("instance"), r.PathValue("name"))
		if err == nil {
			after, err = u.store.UpdateWebhook(r.Context(), r.PathValue("tenant"), r.PathValue("instance"), r.PathValue("name"), upd)
		}
		if err == nil {
			noteAudit(r, "", herald.WebhookAuditDiff(before, after))
		}
	}
	if err != nil {
		var field string
		status, err := formError(err, &field, &f.Error)
		if err != nil {
			return err
		}
		f.ErrorSection, f.Posted = sectionOfField(field), true
		return u.webhookPage(w, r, status, webhookData{Form: f})
	}
	http.Redirect(w, r, instPath(r)+"/webhooks/"+r.PathValue("name")+"?done=saved", http.StatusSeeOther)
	return nil
}

// actionError renders the webhook page with an action's refusal, or
// returns err for the error page when it is not the person's to fix here.
func (u *ui) actionError(w http.ResponseWriter, r *http.Request, err error) error {
	var field, msg string
	status, err := formError(err, &field, &msg)
	if err != nil {
		return err
	}
	return u.webhookPage(w, r, status, webhookData{ActionError: msg})
}

func (u *ui) webhookActivate(w http.ResponseWriter, r *http.Request) error {
	wh, err := u.store.GetWebhook(r.Context(), r.PathValue("tenant"), r.PathValue("instance"), r.PathValue("name"))
	if err != nil {
		return err
	}
	if wh.URL == "" {
		return u.actionError(w, r, herald.Errorf(herald.EUNPROCESSABLE, "This webhook has no URL yet, so it cannot be activated: set one under Settings below, save, then activate it."))
	}
	if _, err := u.store.ActivateWebhook(r.Context(), r.PathValue("tenant"), r.PathValue("instance"), r.PathValue("name")); err != nil {
		return u.actionError(w, r, err)
	}
	http.Redirect(w, r, instPath(r)+"/webhooks/"+r.PathValue("name")+"?done=activated", http.StatusSeeOther)
	return nil
}

func (u *ui) webhookDeactivate(w http.ResponseWriter, r *http.Request) error {
	reason := "deactivated by " + state(r).principal.Client + " in the web UI"
	if _, err := u.store.DeactivateWebhook(r.Context(), r.PathValue("tenant"), r.PathValue("instance"), r.PathValue("name"), reason); err != nil {
		return u.actionError(w, r, err)
	}
	http.Redirect(w, r, instPath(r)+"/webhooks/"+r.PathValue("name")+"?done=deactivated", http.StatusSeeOther)
	return nil
}

// webhookTest sends the placeholder event now and shows the attempt on
// the page it answers with.
func (u *ui) webhookTest(w http.ResponseWriter, r *http.Request) error {
	tenant, instance, name := r.PathValue("tenant"), r.PathValue("instance"), r.PathValue("name")
	wh, err := u.store.GetWebhook(r.Context(), tenant, instance, name)
	if err != nil {
		return err
	}
	if wh.URL == "" {
		return u.actionError(w, r, herald.Errorf(herald.EUNPROCESSABLE, "This webhook has no URL to send a test to; set one under Settings first."))
	}
	if u.tester == nil {
		return u.actionError(w, r, herald.Errorf(herald.EUNPROCESSABLE, "Test sending is not available on this node."))
	}
	secrets, err := u.store.WebhookSecrets(r.Context(), tenant, instance, name)
	if err != nil {
		return err
	}
	a, err := u.tester.TestWebhook(r.Context(), wh, herald.SigningKeys(secrets))
	if err != nil {
		return u.actionError(w, r, err)
	}
	return u.webhookPage(w, r, http.StatusOK, webhookData{Test: a})
}

// webhookSecret reveals the signing secrets on the page it answers with:
// a POST, so the secret never sits in a URL, a history or a log.
func (u *ui) webhookSecret(w http.ResponseWriter, r *http.Request) error {
	secrets, err := u.store.WebhookSecrets(r.Context(), r.PathValue("tenant"), r.PathValue("instance"), r.PathValue("name"))
	if err != nil {
		return err
	}
	d := webhookData{}
	if len(secrets) > 0 && signature.IsPrivateKey(secrets[0].Secret) {
		// An ed25519 webhook: its public key is on the page already, and
		// the private key never leaves Herald.
		return u.webhookPage(w, r, http.StatusOK, d)
	}
	for i, s := range secrets {
		if i == 0 {
			d.Secret = s.Secret
		} else if s.ExpiresAt != nil {
			d.OldSecrets = append(d.OldSecrets, when(s.ExpiresAt))
		}
	}
	return u.webhookPage(w, r, http.StatusOK, d)
}

// graceChoices are the rotate form's grace periods, in seconds.
var graceChoices = map[string]time.Duration{"0": 0, "3600": time.Hour, "86400": 24 * time.Hour, "604800": 7 * 24 * time.Hour}

func (u *ui) webhookRotate(w http.ResponseWriter, r *http.Request) error {
	grace, ok := graceChoices[r.PostForm.Get("grace")]
	if !ok {
		return u.actionError(w, r, herald.FieldErrorf("grace", "Choose how long the old secret keeps signing: none, an hour, a day or a week."))
	}
	secret, err := u.store.RotateWebhookSecret(r.Context(), r.PathValue("tenant"), r.PathValue("instance"), r.PathValue("name"), grace)
	if err != nil {
		return u.actionError(w, r, err)
	}
	noteAudit(r, "", map[string]any{"graceSeconds": int(grace / time.Second)})
	d := webhookData{Secret: secret, SecretNew: true}
	if signature.IsPrivateKey(secret) {
		// The page shows the new public key; the private key stays here.
		d = webhookData{Notice: "Key pair rotated: receivers need the new public key below."}
		if grace > 0 {
			d.Notice += " Requests carry the signatures of the new and the old key until " + when(u.now().Add(grace)) + "."
		}
		return u.webhookPage(w, r, http.StatusOK, d)
	}
	if grace == 0 {
		d.Notice = "Secret rotated. The old secret stopped signing at once."
	} else {
		d.Notice = "Secret rotated. Requests carry the signatures of the new and the old secret until " + when(u.now().Add(grace)) + "."
	}
	return u.webhookPage(w, r, http.StatusOK, d)
}

// parseUTC reads a datetime-local form value as UTC.
func parseUTC(field, label, v string) (time.Time, error) {
	for _, layout := range []string{"2006-01-02T15:04", "2006-01-02T15:04:05", time.RFC3339} {
		if t, err := time.Parse(layout, strings.TrimSpace(v)); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, herald.FieldErrorf(field, "%s %q is not a date and time; use the form 2026-11-26T17:00 (UTC).", label, v)
}

func (u *ui) webhookRecover(w http.ResponseWriter, r *http.Request) error {
	v := r.PostForm.Get("since")
	if strings.TrimSpace(v) == "" {
		return u.webhookPage(w, r, http.StatusBadRequest, webhookData{ActionError: "Give the time from which to recover deliveries (UTC).", RecoverFrom: v})
	}
	since, err := parseUTC("since", "Since", v)
	if err == nil {
		var n int
		n, err = u.store.RecoverWebhook(r.Context(), r.PathValue("tenant"), r.PathValue("instance"), r.PathValue("name"), since)
		if err == nil {
			noteAudit(r, "", map[string]any{"since": since.Format(time.RFC3339), "recovered": n})
			return u.webhookPage(w, r, http.StatusOK, webhookData{RecoverFrom: v,
				Notice: "Recovered " + strconv.Itoa(n) + " failed or cancelled deliveries made since " + when(since) + "; they are due now."})
		}
	}
	var field, msg string
	status, err := formError(err, &field, &msg)
	if err != nil {
		return err
	}
	return u.webhookPage(w, r, status, webhookData{ActionError: msg, RecoverFrom: v})
}
