// Package audit records what is done through Herald's two front doors, the
// API (httpapi) and the web UI (webui), in the audit trail (herald.AuditService),
// the same way for both: who (the principal's actor, tenant and role), from
// where (the TCP peer), when, in which tenant and instance, what (an
// action per route), to what (a target) and how (a diff a handler notes,
// credentials redacted by the domain's diff rules).
//
// The answer to an audited request is held until its entry is written, so
// whoever reads the trail after the answer finds the entry there.
package audit

import (
	"bytes"
	"encoding/json"
	"net"
	"net/http"
	"strings"

	"github.com/heraldhooks/herald"
)

// Note is what a handler adds to its request's entry.
type Note struct {
	// Target names what the request acted on; empty: named from the path.
	Target string
	// Diff holds what changed, or details of the action.
	Diff map[string]any
}

// Add sets the target (when not empty) and adds diff's fields.
func (n *Note) Add(target string, diff map[string]any) {
	if target != "" {
		n.Target = target
	}
	if len(diff) > 0 && n.Diff == nil {
		n.Diff = map[string]any{}
	}
	for k, v := range diff {
		n.Diff[k] = v
	}
}

// Entry returns the audit entry of request r, made by p (nil: nobody
// signed in), that did action, with what the handler noted.
func Entry(r *http.Request, action string, p *herald.Principal, n Note) *herald.AuditEntry {
	e := &herald.AuditEntry{Source: Source(r.RemoteAddr), Tenant: r.PathValue("tenant"), Instance: r.PathValue("instance"),
		Action: action, Target: n.Target}
	if p != nil {
		e.ActorType, e.Actor = p.Actor()
		e.ActorTenant, e.Role = p.Tenant, p.Role
	}
	if e.Target == "" {
		e.Target = target(r)
	}
	if len(n.Diff) > 0 {
		if b, err := json.Marshal(n.Diff); err == nil {
			e.Diff = b
		}
	}
	return e
}

// target names what a route acts on from its path: "webhook wh-x",
// "designer webhook wh-x", "api-client ehr-sync", or an event's or a
// delivery's id.
func target(r *http.Request) string {
	name := r.PathValue("name")
	switch {
	case r.PathValue("id") != "":
		return r.PathValue("id")
	case r.PathValue("email") != "":
		return "user " + strings.ToLower(r.PathValue("email"))
	case name == "":
		return ""
	case strings.Contains(r.Pattern, "/api-clients/"):
		return "api-client " + name
	case strings.Contains(r.Pattern, "/designer/webhooks/"):
		return "designer webhook " + name
	}
	return "webhook " + name
}

// Source returns the host of a remote address ("127.0.0.1:5000"): the
// TCP peer, never a forwarded-for header.
func Source(remoteAddr string) string {
	if host, _, err := net.SplitHostPort(remoteAddr); err == nil {
		return host
	}
	return remoteAddr
}

// Held keeps a handler's answer (status and body; headers go through to
// the ResponseWriter) until Release writes it.
type Held struct {
	http.ResponseWriter
	status int
	body   bytes.Buffer
}

// Hold returns a Held writing to w.
func Hold(w http.ResponseWriter) *Held { return &Held{ResponseWriter: w} }

// WriteHeader keeps the first status.
func (h *Held) WriteHeader(code int) {
	if h.status == 0 {
		h.status = code
	}
}

// Write keeps b.
func (h *Held) Write(b []byte) (int, error) {
	if h.status == 0 {
		h.status = http.StatusOK
	}
	return h.body.Write(b)
}

// Succeeded reports whether the handler answered, without an error
// status: a page, a redirect after a form, a 2xx.
func (h *Held) Succeeded() bool { return h.status != 0 && h.status < 400 }

// Release writes the answer kept, if any.
func (h *Held) Release() {
	if h.status == 0 {
		return
	}
	h.ResponseWriter.WriteHeader(h.status)
	_, _ = h.ResponseWriter.Write(h.body.Bytes())
}
