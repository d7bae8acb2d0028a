package httpapi

import (
	"net/http"

	"github.com/heraldhooks/herald"
)

// The operations webhook of a tenant (herald.OperationsService): PUT sets
// it (its secret in the answer when one was made), GET shows it, DELETE
// turns it off. Tenant admins only; PUT and DELETE are audited. Its URL
// passes the same checks as any webhook's (https:// only with
// RequireHTTPSDestinations; the destination guard when it is sent to).

func (s *server) putOperationsWebhook(w http.ResponseWriter, r *http.Request) error {
	var req herald.OperationsWebhookRequest
	if err := decodeJSON(w, r, &req, bodyRequired); err != nil {
		return err
	}
	if s.requireHTTPS {
		if err := (herald.WebhookUpdate{URL: &req.URL}).RequireHTTPS(); err != nil {
			return err
		}
	}
	tenant := r.PathValue("tenant")
	before, err := s.store.GetOperationsWebhook(r.Context(), tenant)
	if err != nil && herald.ErrorCode(err) != herald.ENOTFOUND {
		return err
	}
	ow, err := s.store.SetOperationsWebhook(r.Context(), tenant, req)
	if err != nil {
		return err
	}
	// Credentials redacted as for any webhook (AuditURL); the secret is
	// never in the trail, only that one was made.
	diff := map[string]any{}
	var oldURL string
	var oldEvents []string
	if before != nil {
		oldURL, oldEvents = before.URL, before.Events
	}
	herald.AddChange(diff, "url", herald.AuditURL(oldURL), herald.AuditURL(ow.URL))
	herald.AddChange(diff, "events", oldEvents, ow.Events)
	if ow.Secret != "" {
		diff["secret"] = "made"
	}
	noteAudit(r, "operations webhook", diff)
	return writeJSON(w, http.StatusOK, ow)
}

func (s *server) getOperationsWebhook(w http.ResponseWriter, r *http.Request) error {
	ow, err := s.store.GetOperationsWebhook(r.Context(), r.PathValue("tenant"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, ow)
}

func (s *server) deleteOperationsWebhook(w http.ResponseWriter, r *http.Request) error {
	if err := s.store.DeleteOperationsWebhook(r.Context(), r.PathValue("tenant")); err != nil {
		return err
	}
	noteAudit(r, "operations webhook", nil)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// reservedInstance refuses every change through the instance routes to
// the tenant's reserved operations instance: its webhook is managed at
// /operations-webhook, and no one posts events to it. Reads (its webhook,
// its deliveries) stay open to those who may read them.
func reservedInstance(r *http.Request) error {
	if r.Method == http.MethodGet || r.PathValue("instance") != herald.OperationsInstance {
		return nil
	}
	t := r.PathValue("tenant")
	return herald.Errorf(herald.ENOTFOUND, "instance %q of tenant %q is reserved for the operations webhook; set it with PUT /v1/tenants/%s/operations-webhook.",
		herald.OperationsInstance, t, t)
}
