package httpapi

import (
	"net/http"
	"strings"
	"time"

	"github.com/heraldhooks/herald"
	"github.com/heraldhooks/herald/signature"
)

// decodeGrace reads a rotation's optional {"graceSeconds":N}: how long the
// old secret keeps working (default a day, at most a week, 0 to stop it at
// once), in seconds.
func decodeGrace(w http.ResponseWriter, r *http.Request) (int, error) {
	var req struct {
		GraceSeconds *int `json:"graceSeconds"`
	}
	if err := decodeJSON(w, r, &req, bodyOptional); err != nil {
		return 0, err
	}
	grace := defaultGraceSeconds
	if req.GraceSeconds != nil {
		grace = *req.GraceSeconds
	}
	if grace < 0 || grace > maxGraceSeconds {
		return 0, herald.FieldErrorf("graceSeconds", "graceSeconds must be between 0 and %d (a week); it is %d.", maxGraceSeconds, grace)
	}
	return grace, nil
}

// Limits of a secret rotation's grace period.
const (
	defaultGraceSeconds = 86400
	maxGraceSeconds     = 7 * 86400
)

func (s *server) listWebhooks(w http.ResponseWriter, r *http.Request) error {
	tenant, instance := r.PathValue("tenant"), r.PathValue("instance")
	if _, err := s.store.GetInstance(r.Context(), tenant, instance); err != nil {
		return err
	}
	list, err := s.store.ListWebhooks(r.Context(), tenant, instance)
	if err != nil {
		return err
	}
	masked := make([]*herald.Webhook, len(list))
	for i, wh := range list {
		masked[i] = s.answer(wh)
	}
	return writeJSON(w, http.StatusOK, map[string]any{"webhooks": masked})
}

func (s *server) getWebhook(w http.ResponseWriter, r *http.Request) error {
	wh, err := s.store.GetWebhook(r.Context(), r.PathValue("tenant"), r.PathValue("instance"), r.PathValue("name"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, s.answer(wh))
}

// answer returns wh as the API answers with it: masked, with this node's
// pace of it when the server has a Pacer.
func (s *server) answer(wh *herald.Webhook) *herald.Webhook {
	m := wh.Masked()
	if s.pacer != nil {
		p := s.pacer.Pace(wh.ID)
		m.Pace = &p
	}
	return m
}

// updateWebhook merges the body into the webhook's admin settings: absent
// fields, also inside payload, keep their values. With
// RequireHTTPSDestinations a new url must be https://.
func (s *server) updateWebhook(w http.ResponseWriter, r *http.Request) error {
	var upd herald.WebhookUpdate
	if err := decodeJSON(w, r, &upd, bodyRequired); err != nil {
		return err
	}
	if s.requireHTTPS {
		if err := upd.RequireHTTPS(); err != nil {
			return err
		}
	}
	before, err := s.store.GetWebhook(r.Context(), r.PathValue("tenant"), r.PathValue("instance"), r.PathValue("name"))
	if err != nil {
		return err
	}
	wh, err := s.store.UpdateWebhook(r.Context(), r.PathValue("tenant"), r.PathValue("instance"), r.PathValue("name"), upd)
	if err != nil {
		return err
	}
	noteAudit(r, "", herald.WebhookAuditDiff(before, wh))
	return writeJSON(w, http.StatusOK, s.answer(wh))
}

func (s *server) activateWebhook(w http.ResponseWriter, r *http.Request) error {
	if err := decodeJSON(w, r, &struct{}{}, bodyOptional); err != nil {
		return err
	}
	wh, err := s.store.ActivateWebhook(r.Context(), r.PathValue("tenant"), r.PathValue("instance"), r.PathValue("name"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, wh.Masked())
}

func (s *server) deactivateWebhook(w http.ResponseWriter, r *http.Request) error {
	if err := decodeJSON(w, r, &struct{}{}, bodyOptional); err != nil {
		return err
	}
	reason := "deactivated by " + principal(r).Client
	wh, err := s.store.DeactivateWebhook(r.Context(), r.PathValue("tenant"), r.PathValue("instance"), r.PathValue("name"), reason)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, wh.Masked())
}

// testWebhook sends the placeholder event to the webhook now, whether or not
// it is active, and returns the attempt. A receiver that fails is still a
// 200: the attempt says what happened.
func (s *server) testWebhook(w http.ResponseWriter, r *http.Request) error {
	if err := decodeJSON(w, r, &struct{}{}, bodyOptional); err != nil {
		return err
	}
	tenant, instance, name := r.PathValue("tenant"), r.PathValue("instance"), r.PathValue("name")
	wh, err := s.store.GetWebhook(r.Context(), tenant, instance, name)
	if err != nil {
		return err
	}
	if wh.URL == "" {
		return herald.Errorf(herald.EUNPROCESSABLE, "Webhook %q has no url to send a test to; set one with PATCH first.", name)
	}
	if s.tester == nil {
		return herald.Errorf(herald.EUNAVAILABLE, "Test sending is not available on this node.")
	}
	secrets, err := s.store.WebhookSecrets(r.Context(), tenant, instance, name)
	if err != nil {
		return err
	}
	a, err := s.tester.TestWebhook(r.Context(), wh, herald.SigningKeys(secrets))
	if err != nil {
		return err
	}
	noteAudit(r, "", map[string]any{"statusCode": a.StatusCode})
	return writeJSON(w, http.StatusOK, map[string]any{"attempt": a})
}

// revealValue returns the value of one header or query parameter of a
// webhook in full: what answers show masked. It is audited.
func (s *server) revealValue(w http.ResponseWriter, r *http.Request) error {
	wh, err := s.store.GetWebhook(r.Context(), r.PathValue("tenant"), r.PathValue("instance"), r.PathValue("name"))
	if err != nil {
		return err
	}
	list, kind, fold := wh.Headers, "header", true
	if strings.Contains(r.Pattern, "/query-parameters/") {
		list, kind, fold = wh.QueryParameters, "query parameter", false
	}
	want := r.PathValue("item")
	for _, nv := range list {
		if nv.Name == want || (fold && strings.EqualFold(nv.Name, want)) {
			noteAudit(r, "webhook "+wh.Name+" "+kind+" "+nv.Name, nil)
			w.Header().Set("Cache-Control", "no-store")
			return writeJSON(w, http.StatusOK, map[string]string{"name": nv.Name, "value": nv.Value})
		}
	}
	return herald.Errorf(herald.ENOTFOUND, "Webhook %q has no %s %q.", wh.Name, kind, want)
}

// webhookSecret returns the current signing secret.
func (s *server) webhookSecret(w http.ResponseWriter, r *http.Request) error {
	secrets, err := s.store.WebhookSecrets(r.Context(), r.PathValue("tenant"), r.PathValue("instance"), r.PathValue("name"))
	if err != nil {
		return err
	}
	if len(secrets) == 0 {
		return herald.Errorf(herald.ENOTFOUND, "Webhook %q has no signing secret.", r.PathValue("name"))
	}
	if signature.IsPrivateKey(secrets[0].Secret) {
		return herald.Errorf(herald.ECONFLICT, "Webhook %q signs with ed25519: its private key never leaves Herald, and receivers verify with its public key, from GET .../webhooks/%s/public-key.", r.PathValue("name"), r.PathValue("name"))
	}
	w.Header().Set("Cache-Control", "no-store")
	return writeJSON(w, http.StatusOK, map[string]string{"secret": secrets[0].Secret})
}

// webhookPublicKey returns the ed25519 public key (whpk_...) receivers
// verify an ed25519 webhook's v1a signatures with, and, during a
// rotation's grace, the public keys of the rotated-out private keys still
// signing (previousPublicKeys, newest first, with when each stops).
// ECONFLICT for a webhook that signs with hmac-sha256.
func (s *server) webhookPublicKey(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	secrets, err := s.store.WebhookSecrets(r.Context(), r.PathValue("tenant"), r.PathValue("instance"), name)
	if err != nil {
		return err
	}
	if len(secrets) == 0 || !signature.IsPrivateKey(secrets[0].Secret) {
		return herald.Errorf(herald.ECONFLICT, "Webhook %q signs with hmac-sha256 (Standard Webhooks v1, a shared secret), so it has no public key. To sign with ed25519, PATCH the webhook with {\"signing\":{\"algorithm\":\"ed25519\"}}.", name)
	}
	type previous struct {
		PublicKey string     `json:"publicKey"`
		ExpiresAt *time.Time `json:"expiresAt,omitempty"`
	}
	answer := struct {
		PublicKey          string     `json:"publicKey"`
		PreviousPublicKeys []previous `json:"previousPublicKeys"`
	}{PreviousPublicKeys: []previous{}}
	for i, sec := range secrets {
		if !signature.IsPrivateKey(sec.Secret) {
			continue // an HMAC secret still in its grace: not a public matter
		}
		pub, err := signature.PublicKey(sec.Secret)
		if err != nil {
			return err
		}
		if i == 0 {
			answer.PublicKey = pub
		} else {
			answer.PreviousPublicKeys = append(answer.PreviousPublicKeys, previous{pub, sec.ExpiresAt})
		}
	}
	return writeJSON(w, http.StatusOK, answer)
}

// rotateSecret makes a new signing key; the old one keeps signing for
// graceSeconds (default a day, at most a week, 0 to stop it at once). It
// answers with the new secret, or for an ed25519 webhook with the new
// public key only.
func (s *server) rotateSecret(w http.ResponseWriter, r *http.Request) error {
	grace, err := decodeGrace(w, r)
	if err != nil {
		return err
	}
	secret, err := s.store.RotateWebhookSecret(r.Context(), r.PathValue("tenant"), r.PathValue("instance"), r.PathValue("name"), time.Duration(grace)*time.Second)
	if err != nil {
		return err
	}
	noteAudit(r, "", map[string]any{"graceSeconds": grace})
	if signature.IsPrivateKey(secret) {
		// An ed25519 webhook: the private key stays here.
		pub, err := signature.PublicKey(secret)
		if err != nil {
			return err
		}
		return writeJSON(w, http.StatusOK, map[string]string{"publicKey": pub})
	}
	w.Header().Set("Cache-Control", "no-store")
	return writeJSON(w, http.StatusOK, map[string]string{"secret": secret})
}

// recoverWebhook re-queues FAILED and CANCELLED deliveries since a time.
func (s *server) recoverWebhook(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Since *string `json:"since"`
	}
	if err := decodeJSON(w, r, &req, bodyRequired); err != nil {
		return err
	}
	if req.Since == nil || *req.Since == "" {
		return herald.FieldErrorf("since", "since is required: the RFC 3339 time from which to re-queue deliveries, like \"2026-11-26T17:00:00Z\".")
	}
	since, err := parseTime("since", *req.Since)
	if err != nil {
		return err
	}
	n, err := s.store.RecoverWebhook(r.Context(), r.PathValue("tenant"), r.PathValue("instance"), r.PathValue("name"), since)
	if err != nil {
		return err
	}
	noteAudit(r, "", map[string]any{"since": since.UTC().Format(time.RFC3339), "recovered": n})
	return writeJSON(w, http.StatusOK, map[string]int{"recovered": n})
}

// parseTime parses an RFC 3339 time, or returns an EINVALID error naming
// field.
func parseTime(field, v string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, herald.FieldErrorf(field, "%s %q is not an RFC 3339 time; use a form like \"2026-11-26T17:00:00Z\".", field, v)
	}
	return t, nil
}
