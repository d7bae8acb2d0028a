package webui

import (
	"net/http"

	"github.com/heraldhooks/herald"
	"github.com/heraldhooks/herald/audit"
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
	"POST " + instancePattern + "/webhooks/{name}/replay":        "webhook.replay",
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
	state(r).audit.Add(target, diff)
}

// record appends the audit entry of a page or form that did what it was
// asked, by p. The action has happened, so a failed append is logged, not
// shown.
func (u *ui) record(r *http.Request, action string, p *herald.Principal) {
	if err := u.store.AppendAudit(r.Context(), audit.Entry(r, action, p, state(r).audit)); err != nil {
		u.log.ErrorContext(r.Context(), "the audit entry of a completed action was not written", "action", action, "err", err)
	}
}
