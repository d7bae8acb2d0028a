package httpapi

import (
	"net/http"
	"strconv"
	"time"

	"github.com/heraldhooks/herald"
	"github.com/heraldhooks/herald/audit"
)

// auditActions names the audit action of every route that changes
// something, reveals a secret or reads health data. A test checks that
// every route but plain reads has one, so a new route cannot be forgotten.
var auditActions = map[string]string{
	"POST /v1/tenants":                                            "tenant.create",
	"POST /v1/tenants/{tenant}/instances":                         "instance.create",
	"POST /v1/tenants/{tenant}/api-clients":                       "api-client.create",
	"POST /v1/tenants/{tenant}/api-clients/{name}/rotate":         "api-client.rotate",
	"POST /v1/tenants/{tenant}/api-clients/{name}/disable":        "api-client.disable",
	"POST /v1/tenants/{tenant}/api-clients/{name}/enable":         "api-client.enable",
	"DELETE /v1/tenants/{tenant}/api-clients/{name}":              "api-client.delete",
	"POST /v1/auth/revoke":                                        "auth.revoke",
	"POST /v1/tenants/{tenant}/users":                             "user.create",
	"PATCH /v1/tenants/{tenant}/users/{email}":                    "user.update",
	"DELETE /v1/tenants/{tenant}/users/{email}":                   "user.delete",
	"POST /v1/tenants/{tenant}/users/{email}/sign-out-everywhere": "user.sign-out-everywhere",
	"PUT /v1/tenants/{tenant}/operations-webhook":                 "tenant.operations_webhook.set",
	"DELETE /v1/tenants/{tenant}/operations-webhook":              "tenant.operations_webhook.delete",

	"POST /v1/tenants/{tenant}/designer/webhooks":          "designer.webhook.create",
	"PATCH /v1/tenants/{tenant}/designer/webhooks/{name}":  "designer.webhook.update",
	"DELETE /v1/tenants/{tenant}/designer/webhooks/{name}": "designer.webhook.delete",
	"POST /v1/tenants/{tenant}/designer/publish":           "designer.publish",

	"PATCH " + instPath + "/webhooks/{name}":                       "webhook.update",
	"POST " + instPath + "/webhooks/{name}/activate":               "webhook.activate",
	"POST " + instPath + "/webhooks/{name}/deactivate":             "webhook.deactivate",
	"POST " + instPath + "/webhooks/{name}/test":                   "webhook.test",
	"GET " + instPath + "/webhooks/{name}/secret":                  "webhook.secret.reveal",
	"GET " + instPath + "/webhooks/{name}/headers/{item}":          "webhook.header.reveal",
	"GET " + instPath + "/webhooks/{name}/query-parameters/{item}": "webhook.query-parameter.reveal",
	"POST " + instPath + "/webhooks/{name}/secret/rotate":          "webhook.secret.rotate",
	"POST " + instPath + "/webhooks/{name}/recover":                "webhook.recover",
	"POST " + instPath + "/webhooks/{name}/replay":                 "webhook.replay",
	"GET " + instPath + "/events/{id}":                             "event.read",
	"GET " + instPath + "/deliveries/{id}":                         "delivery.read",
	"POST " + instPath + "/deliveries/{id}/resend":                 "delivery.resend",
	"POST " + instPath + "/patients/{patientId}/purge":             "patient.purge",
}

// notAudited lists the routes left out on purpose: token exchange is
// audited by access.Gate (success, failure and lockout, for the API and
// the web UI alike); events are the data itself (and have their own
// record, the deliveries); a listener's answers are attempts, on record
// with their deliveries (connecting its stream, which reads events, is
// audited as webhook.listen by the handler itself, since an audited
// answer is held until it ends, and a stream does not end).
var notAudited = map[string]bool{
	"POST /v1/auth/token":                               true,
	"POST " + instPath + "/events":                      true,
	"GET " + instPath + "/webhooks/{name}/listen":       true,
	"POST " + instPath + "/webhooks/{name}/listen/{id}": true,
}

const instPath = "/v1/tenants/{tenant}/instances/{instance}"

// noteAudit sets the target of the request's audit entry (when not
// empty) and adds fields to its diff.
func noteAudit(r *http.Request, target string, diff map[string]any) {
	if info := reqInfoFrom(r.Context()); info != nil {
		info.audit.Add(target, diff)
	}
}

// record appends the audit entry of a request that succeeded. The action
// has happened, so a failed append cannot undo it: it is logged as an
// error with the request id, for the operator to reconcile.
func (s *server) record(r *http.Request, action string) {
	info := reqInfoFrom(r.Context())
	var note audit.Note
	id := ""
	if info != nil {
		note, id = info.audit, info.requestID
	}
	if err := s.store.AppendAudit(r.Context(), audit.Entry(r, action, principal(r), note)); err != nil {
		s.log.Error("the audit entry of a completed action was not written", "action", action, "request_id", id, "err", err)
	}
}

// listAudit lists the audit entries of the tenant in the path, or, on
// /v1/audit, every entry (platform admins).
func (s *server) listAudit(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	f := herald.AuditFilter{Tenant: r.PathValue("tenant"), Actor: q.Get("actor"), Action: q.Get("action"), Cursor: q.Get("cursor")}
	if f.Tenant != "" {
		if _, err := s.store.GetTenant(r.Context(), f.Tenant); err != nil {
			return err
		}
	}
	for _, p := range []struct {
		name string
		t    *time.Time
	}{{"from", &f.From}, {"to", &f.To}} {
		if v := q.Get(p.name); v != "" {
			t, err := parseTime(p.name, v)
			if err != nil {
				return err
			}
			*p.t = t
		}
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return herald.FieldErrorf("limit", "limit must be a whole number from 1 to 1000.")
		}
		f.Limit = n
	}
	entries, next, err := s.store.ListAudit(r.Context(), f)
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	return writeJSON(w, http.StatusOK, map[string]any{"entries": entries, "nextCursor": next})
}
