package webui

import (
	"bytes"
	"encoding/json"
	"net"
	"net/http"
	"strings"

	"github.com/heraldhooks/herald"
)

// auditActions names the audit action of every page form that changes
// something or reveals a secret, and of the pages that show health data
// (a delivery with its event). They are the API's actions: the trail does
// not care which door a person used. A test checks every POST has one.
var auditActions = map[string]string{
	"POST /ui/signout": "auth.sign-out",

	"POST " + tenantPattern + "/designer/new":                      "designer.webhook.create",
	"POST " + tenantPattern + "/designer/webhooks/{name}":          "designer.webhook.update",
	"POST " + tenantPattern + "/designer/webhooks/{name}/delete":   "designer.webhook.delete",
	"POST " + tenantPattern + "/designer/publish":                  "designer.publish",
	"POST " + tenantPattern + "/api-clients":                       "api-client.create",
	"POST " + tenantPattern + "/api-clients/{name}/rotate":         "api-client.rotate",
	"POST " + tenantPattern + "/api-clients/{name}/disable":        "api-client.disable",
	"POST " + tenantPattern + "/api-clients/{name}/enable":         "api-client.enable",
	"POST " + tenantPattern + "/api-clients/{name}/delete":         "api-client.delete",
	"POST " + tenantPattern + "/users":                             "user.create",
	"POST " + tenantPattern + "/users/{email}/role":                "user.update",
	"POST " + tenantPattern + "/users/{email}/sign-out-everywhere": "user.sign-out-everywhere",
	"POST " + tenantPattern + "/users/{email}/setup-link":          "user.setup-link",
	"POST " + tenantPattern + "/users/{email}/delete":              "user.delete",

	"POST " + instancePattern + "/webhooks/{name}":               "webhook.update",
	"POST " + instancePattern + "/webhooks/{name}/activate":      "webhook.activate",
	"POST " + instancePattern + "/webhooks/{name}/deactivate":    "webhook.deactivate",
	"POST " + instancePattern + "/webhooks/{name}/test":          "webhook.test",
	"POST " + instancePattern + "/webhooks/{name}/secret":        "webhook.secret.reveal",
	"POST " + instancePattern + "/webhooks/{name}/secret/rotate": "webhook.secret.rotate",
	"POST " + instancePattern + "/webhooks/{name}/recover":       "webhook.recover",
	"GET " + instancePattern + "/deliveries/{id}":                "delivery.read",
	"POST " + instancePattern + "/deliveries/{id}/resend":        "delivery.resend",
}

// notAudited lists the forms left out on purpose: sign-in and the
// completion of a person's setup are audited by access.Gate, for the API
// and the UI alike; choosing a password is a step of the setup, which is
// audited once complete.
var notAudited = map[string]bool{
	"POST /ui/signin":                 true,
	"POST /ui/setup/{token}/password": true,
	"POST /ui/setup/{token}/totp":     true,
}

const (
	tenantPattern   = "/ui/t/{tenant}"
	instancePattern = tenantPattern + "/i/{instance}"
)

// noteAudit sets the target of the request's audit entry (when not empty)
// and adds fields to its diff.
func noteAudit(r *http.Request, target string, diff map[string]any) {
	st := state(r)
	if target != "" {
		st.auditTarget = target
	}
	if len(diff) > 0 && st.auditDiff == nil {
		st.auditDiff = map[string]any{}
	}
	for k, v := range diff {
		st.auditDiff[k] = v
	}
}

// record appends the audit entry of a page or form that did what it was
// asked. The action has happened, so a failed append is logged, not shown.
func (u *ui) record(r *http.Request, action string, p *herald.Principal) {
	st := state(r)
	e := &herald.AuditEntry{Source: sourceHost(r.RemoteAddr), Tenant: r.PathValue("tenant"), Instance: r.PathValue("instance"),
		Action: action, Target: st.auditTarget}
	if p != nil {
		e.ActorType, e.Actor = p.Actor()
		e.ActorTenant, e.Role = p.Tenant, p.Role
	}
	if e.Target == "" {
		switch {
		case r.PathValue("id") != "":
			e.Target = r.PathValue("id")
		case strings.Contains(r.Pattern, "/api-clients/"):
			e.Target = "api-client " + r.PathValue("name")
		case strings.Contains(r.Pattern, "/users/"):
			e.Target = "user " + strings.ToLower(r.PathValue("email"))
		case strings.Contains(r.Pattern, "/designer/webhooks/"):
			e.Target = "designer webhook " + r.PathValue("name")
		case r.PathValue("name") != "":
			e.Target = "webhook " + r.PathValue("name")
		}
	}
	if len(st.auditDiff) > 0 {
		if b, err := json.Marshal(st.auditDiff); err == nil {
			e.Diff = b
		}
	}
	if err := u.store.AppendAudit(r.Context(), e); err != nil {
		u.log.ErrorContext(r.Context(), "the audit entry of a completed action was not written", "action", action, "err", err)
	}
}

func sourceHost(addr string) string {
	if host, _, err := net.SplitHostPort(addr); err == nil {
		return host
	}
	return addr
}

// heldPage keeps a page's answer (status and body; headers go through)
// until release writes it, so the audit entry is written first.
type heldPage struct {
	http.ResponseWriter
	status int
	body   bytes.Buffer
}

func (h *heldPage) WriteHeader(code int) {
	if h.status == 0 {
		h.status = code
	}
}

func (h *heldPage) Write(b []byte) (int, error) {
	if h.status == 0 {
		h.status = http.StatusOK
	}
	return h.body.Write(b)
}

// succeeded reports whether the page did what it was asked: a redirect
// after a form, or a page shown.
func (h *heldPage) succeeded() bool { return h.status != 0 && h.status < 400 }

func (h *heldPage) release() {
	if h.status == 0 {
		return
	}
	h.ResponseWriter.WriteHeader(h.status)
	_, _ = h.ResponseWriter.Write(h.body.Bytes())
}
