package webui

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"math"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/heraldhooks/herald"
	"github.com/heraldhooks/herald/access"
)

// contentSecurityPolicy allows nothing from elsewhere and no inline script
// or style: the only script is /ui/static/app.js.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

// secure sets the headers every UI answer carries, and logs the request.
func (u *ui) secure(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		h := w.Header()
		// Pages show events, deliveries and attempts: health data no
		// cache may keep. Static assets say otherwise (staticHandler).
		h.Set("Cache-Control", "no-store")
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "same-origin")
		rw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(rw, r)
		if !strings.HasPrefix(r.URL.Path, "/ui/static/") {
			u.log.InfoContext(r.Context(), "ui request", "method", r.Method, "path", herald.LogPath(r.URL.Path),
				"status", cmpOr(rw.status, 200), "duration_ms", time.Since(start).Milliseconds())
		}
	})
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func cmpOr(a, b int) int {
	if a != 0 {
		return a
	}
	return b
}

// staticHandler serves the embedded assets with a short cache lifetime:
// they change only with the binary.
func staticHandler(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=300")
		h.ServeHTTP(w, r)
	})
}

// pageTemplate is the layout plus one page's "content".
type pageTemplate struct{ t *template.Template }

var funcs = template.FuncMap{
	"when":      when,
	"ago":       ago,
	"pct":       pct,
	"badge":     badge,
	"join":      strings.Join,
	"hasPrefix": strings.HasPrefix,
	"contains":  func(list []string, s string) bool { return containsString(list, s) },
	"trigger":   triggerText,
	"add":       func(a, b int) int { return a + b },
	"sub":       func(a, b int) int { return a - b },
	"q":         url.QueryEscape,
	"p":         url.PathEscape,
	"inputTime": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format("2006-01-02T15:04")
	},
}

// parsePages parses the layout with each page of templates/.
func parsePages() (map[string]*pageTemplate, error) {
	base, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html")
	if err != nil {
		return nil, fmt.Errorf("webui: %w", err)
	}
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	pages := map[string]*pageTemplate{}
	for _, n := range names {
		name := strings.TrimSuffix(path.Base(n), ".html")
		if name == "layout" {
			continue
		}
		t, err := template.Must(base.Clone()).ParseFS(templateFS, n)
		if err != nil {
			return nil, fmt.Errorf("webui: %w", err)
		}
		pages[name] = &pageTemplate{t}
	}
	return pages, nil
}

// view is what the layout needs, around a page's own Data.
type view struct {
	Title     string
	P         *herald.Principal
	CSRF      string
	Tenant    string
	Instance  string
	Section   string
	Switch    []switchGroup
	Current   string // the switcher's selected value
	Flash     string
	CanDesign bool
	CanAdmin  bool
	CanConfig bool
	CanEvents bool
	Data      any
}

// switchGroup is one tenant in the tenant and instance switcher.
type switchGroup struct {
	Tenant    string
	Instances []string
}

// render writes page name with data, in the layout, with status.
func (u *ui) render(w http.ResponseWriter, r *http.Request, status int, name, title string, data any) error {
	pt, ok := u.pages[name]
	if !ok {
		return fmt.Errorf("webui: no template %q", name)
	}
	st := state(r)
	v := view{Title: title, P: st.principal, CSRF: st.csrf, Tenant: r.PathValue("tenant"), Instance: r.PathValue("instance"), Data: data}
	if p := st.principal; p != nil {
		v.CanDesign = access.Can(p, access.Design, v.Tenant)
		v.CanAdmin = access.Can(p, access.Admin, v.Tenant)
		v.CanConfig = access.Can(p, access.ReadConfig, v.Tenant)
		v.CanEvents = access.Can(p, access.ReadEvents, v.Tenant)
		v.Switch = u.switchGroups(r.Context(), p)
		v.Current = v.Tenant
		if v.Instance != "" {
			v.Current += "/" + v.Instance
		}
	}
	v.Section = sectionOf(r.URL.Path)
	v.Flash = flashText[r.URL.Query().Get("done")]
	var buf bytes.Buffer
	if err := pt.t.ExecuteTemplate(&buf, "layout", v); err != nil {
		return fmt.Errorf("render %s: %w", name, err)
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
	return nil
}

func sectionOf(p string) string {
	for _, s := range []string{"/designer", "/webhooks", "/deliveries", "/events", "/api-clients", "/users", "/audit"} {
		if strings.Contains(p, s) {
			return strings.TrimPrefix(s, "/")
		}
	}
	return ""
}

// flashText is what a page says after a form redirected to it with
// ?done=<key>: a fixed message, so nothing a link carries is shown as is.
var flashText = map[string]string{
	"created":         "Webhook added to the draft. Publish the draft to make it reach the instances.",
	"updated":         "Draft saved. Publish the draft to make the change reach the instances.",
	"deleted":         "Webhook removed from the draft; instances keep it until you publish.",
	"published":       "Published. Every instance has the new version; new webhooks start inactive.",
	"saved":           "Settings saved.",
	"activated":       "Webhook activated: matching events are delivered from now on.",
	"deactivated":     "Webhook deactivated: its pending deliveries are cancelled and can be recovered later.",
	"resent":          "Delivery queued again, due now.",
	"user-role":       "Role changed. The person's sessions have the new role from their next page on.",
	"user-signed-out": "Signed out everywhere: every session of that person has ended.",
	"user-deleted":    "Person deleted, and their sessions with them.",

	"client-disabled": "API client disabled: it gets no tokens, and the tokens it has stopped working.",
	"client-enabled":  "API client enabled: it can get tokens again. Tokens from before it was disabled stay void.",
	"client-deleted":  "API client deleted, and its tokens with it.",
}

// switchGroups lists the tenants and instances the principal may switch to.
// A failure to list leaves the switcher empty rather than failing the page.
func (u *ui) switchGroups(ctx context.Context, p *herald.Principal) []switchGroup {
	var tenants []string
	if p.Role == herald.RolePlatformAdmin {
		list, err := u.store.ListTenants(ctx)
		if err != nil {
			u.log.WarnContext(ctx, "ui: list tenants", "err", err)
			return nil
		}
		for _, t := range list {
			tenants = append(tenants, t.Name)
		}
	} else {
		tenants = []string{p.Tenant}
	}
	var out []switchGroup
	for _, t := range tenants {
		g := switchGroup{Tenant: t}
		insts, err := u.store.ListInstances(ctx, t)
		if err != nil && herald.ErrorCode(err) != herald.ENOTFOUND {
			u.log.WarnContext(ctx, "ui: list instances", "err", err)
		}
		for _, in := range insts {
			g.Instances = append(g.Instances, in.Name)
		}
		out = append(out, g)
	}
	return out
}

// errorData is the error page's data.
type errorData struct {
	Status  int
	Heading string
	Message string
	Request string
}

// statusOf maps a herald error code to the page's HTTP status.
var statusOf = map[string]int{
	herald.EINVALID:       http.StatusBadRequest,
	herald.EUNAUTHORIZED:  http.StatusUnauthorized,
	herald.EFORBIDDEN:     http.StatusForbidden,
	herald.ENOTFOUND:      http.StatusNotFound,
	herald.ECONFLICT:      http.StatusConflict,
	herald.ETOOLARGE:      http.StatusRequestEntityTooLarge,
	herald.EUNPROCESSABLE: http.StatusUnprocessableEntity,
	herald.ERATELIMITED:   http.StatusTooManyRequests,
	herald.EUNAVAILABLE:   http.StatusServiceUnavailable,
}

var headingOf = map[int]string{
	http.StatusBadRequest:            "That request was not right",
	http.StatusUnauthorized:          "Please sign in",
	http.StatusForbidden:             "Not allowed",
	http.StatusNotFound:              "Not found",
	http.StatusConflict:              "That clashes with what is there",
	http.StatusRequestEntityTooLarge: "Too large",
	http.StatusUnprocessableEntity:   "That cannot be done now",
	http.StatusTooManyRequests:       "Too many requests",
	http.StatusServiceUnavailable:    "Herald cannot reach its database",
	http.StatusInternalServerError:   "Something went wrong",
}

// renderError shows err as a page with the status its code calls for.
// Errors that are not *herald.Error are internal: the page says so and the
// log gets the details.
func (u *ui) renderError(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		return
	}
	code := herald.ErrorCode(err)
	status, ok := statusOf[code]
	if !ok {
		status = http.StatusInternalServerError
	}
	d := errorData{Status: status, Heading: headingOf[status], Message: herald.ErrorMessage(err)}
	if status == http.StatusInternalServerError {
		id := herald.NewID("req", u.now())
		d.Message = "Internal error. Quote " + id + " when reporting it."
		u.log.ErrorContext(r.Context(), "ui internal error", "request_id", id, "method", r.Method, "path", herald.LogPath(r.URL.Path), "err", err)
	}
	if rerr := u.render(w, r, status, "error", d.Heading, d); rerr != nil {
		u.log.ErrorContext(r.Context(), "ui render error page", "err", rerr)
		http.Error(w, d.Message, status)
	}
}

func (u *ui) notFound(w http.ResponseWriter, r *http.Request) error {
	return herald.Errorf(herald.ENOTFOUND, "There is no page at %s. Use the navigation above, or start from the home page.", herald.LogPath(r.URL.Path))
}

// when formats a time for people: UTC, to the second.
func when(t any) string {
	switch v := t.(type) {
	case time.Time:
		if v.IsZero() {
			return ""
		}
		return v.UTC().Format("2006-01-02 15:04:05 UTC")
	case *time.Time:
		if v == nil {
			return ""
		}
		return when(*v)
	}
	return ""
}

// ago says how long before now t was, roughly.
func ago(t any) string {
	var tt time.Time
	switch v := t.(type) {
	case time.Time:
		tt = v
	case *time.Time:
		if v == nil {
			return ""
		}
		tt = *v
	}
	if tt.IsZero() {
		return ""
	}
	d := time.Since(tt)
	future := d < 0
	if future {
		d = -d
	}
	var s string
	switch {
	case d < time.Minute:
		s = fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		s = fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		s = fmt.Sprintf("%dh", int(d.Hours()))
	default:
		s = fmt.Sprintf("%dd", int(d.Hours()/24))
	}
	if future {
		return "in " + s
	}
	return s + " ago"
}

// pct formats a success rate, "—" when there is none.
func pct(rate *float64) string {
	if rate == nil {
		return "—"
	}
	return fmt.Sprintf("%.0f%%", math.Floor(*rate*1000+0.5)/10)
}

// badge returns the CSS class of a delivery status or webhook state.
func badge(status string) string {
	switch status {
	case herald.StatusDelivered, "active", "created":
		return "badge ok"
	case herald.StatusFailed, "deactivated", "deleted":
		return "badge bad"
	case herald.StatusRetrying, herald.StatusSent, herald.StatusPending, herald.StatusHeld, "updated":
		return "badge warn"
	default:
		return "badge"
	}
}

func triggerText(t herald.Trigger) string {
	if t.EventSubtype != "" {
		return t.EventSubtype
	}
	return "every " + t.EventEntity + " event"
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
