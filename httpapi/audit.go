package httpapi

import (
	"bytes"
	"encoding/json"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/heraldhooks/herald"
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
	"GET " + instPath + "/events/{id}":                             "event.read",
	"GET " + instPath + "/deliveries/{id}":                         "delivery.read",
	"POST " + instPath + "/deliveries/{id}/resend":                 "delivery.resend",
	"POST " + instPath + "/patients/{patientId}/purge":             "patient.purge",
}

// notAudited lists the routes left out on purpose: token exchange is
// audited by access.Gate (success, failure and lockout, for the API and
// the web UI alike); events are the data itself (and have their own
// record, the deliveries).
var notAudited = map[string]bool{
	"POST /v1/auth/token":          true,
	"POST " + instPath + "/events": true,
}

const instPath = "/v1/tenants/{tenant}/instances/{instance}"

// auditNote is what a handler adds to its route's audit entry.
type auditNote struct {
	target string
	diff   map[string]any
}

// noteAudit sets the target of the request's audit entry (when not
// empty) and adds fields to its diff.
func noteAudit(r *http.Request, target string, diff map[string]any) {
	info := reqInfoFrom(r.Context())
	if info == nil {
		return
	}
	if target != "" {
		info.audit.target = target
	}
	if len(diff) > 0 && info.audit.diff == nil {
		info.audit.diff = map[string]any{}
	}
	for k, v := range diff {
		info.audit.diff[k] = v
	}
}

// record appends the audit entry of a request that succeeded. The action
// has happened, so a failed append cannot undo it: it is logged as an
// error with the request id, for the operator to reconcile.
func (s *server) record(r *http.Request, action string) {
	p := principal(r)
	e := &herald.AuditEntry{
		Source:   sourceAddr(r),
		Tenant:   r.PathValue("tenant"),
		Instance: r.PathValue("instance"),
		Action:   action,
	}
	if p != nil {
		e.ActorType, e.Actor = p.Actor()
		e.ActorTenant, e.Role = p.Tenant, p.Role
	}
	info := reqInfoFrom(r.Context())
	if info != nil {
		e.Target = info.audit.target
		if len(info.audit.diff) > 0 {
			b, err := json.Marshal(info.audit.diff)
			if err == nil {
				e.Diff = b
			}
		}
	}
	if e.Target == "" {
		e.Target = auditTarget(r)
	}
	if err := s.store.AppendAudit(r.Context(), e); err != nil {
		id := ""
		if info != nil {
			id = info.requestID
		}
		s.log.Error("the audit entry of a completed action was not written", "action", action, "request_id", id, "err", err)
	}
}

// auditTarget names what a route acts on from its path.
func auditTarget(r *http.Request) string {
	switch {
	case r.PathValue("id") != "":
		return r.PathValue("id")
	case strings.Contains(r.Pattern, "/api-clients/"):
		return "api-client " + r.PathValue("name")
	case r.PathValue("email") != "":
		return userTarget(r)
	case r.PathValue("name") != "":
		return "webhook " + r.PathValue("name")
	}
	return ""
}

// sourceAddr is the network address of the client: the TCP peer.
func sourceAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
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

// heldResponse keeps a handler's answer (status and body; headers go
// through) until release writes it.
type heldResponse struct {
	http.ResponseWriter
	status int
	body   bytes.Buffer
}

func (h *heldResponse) WriteHeader(code int) {
	if h.status == 0 {
		h.status = code
	}
}

func (h *heldResponse) Write(b []byte) (int, error) {
	if h.status == 0 {
		h.status = http.StatusOK
	}
	return h.body.Write(b)
}

// release writes what the handler wrote, if anything.
func (h *heldResponse) release() {
	if h.status == 0 {
		return
	}
	h.ResponseWriter.WriteHeader(h.status)
	_, _ = h.ResponseWriter.Write(h.body.Bytes())
}
