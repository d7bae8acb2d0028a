// Package webui serves Herald's web pages under /ui/: the Designer (draft,
// pending changes, publish, versions) and the Admin portal (Integrations ->
// Webhooks per instance, the delivery log, events), for people who would
// rather click than curl.
//
// Pages are server-rendered html/template; the CSS and the little
// JavaScript (copy to clipboard, switch on select) are embedded, and every
// page works without the script. The UI calls the same store the REST API
// does and checks the same role matrix (package access): it can do nothing
// the API cannot. A session is an access token in an HttpOnly cookie; every
// form that changes something carries a CSRF token bound to that session.
package webui

import (
	"context"
	"embed"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/heraldhooks/herald"
	"github.com/heraldhooks/herald/access"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Prefix is where the UI is mounted; every page's path starts with it.
const Prefix = "/ui/"

// Tester sends a webhook's test request. dispatch.Engine implements it.
type Tester interface {
	// TestWebhook sends the placeholder event to w now, signed with
	// secrets, and returns the attempt (also when the receiver failed).
	TestWebhook(ctx context.Context, w *herald.Webhook, secrets []string) (*herald.Attempt, error)
}

// Config configures the UI handler. Store and Access are required.
type Config struct {
	// Store keeps everything. Required.
	Store herald.Store
	// Access signs people in (a session is an API token), checks sessions
	// and carries out the life cycle of API clients; the API shares it.
	// Required.
	Access *access.Gate
	// Tester sends test requests. Without it the Send test button says
	// that testing is not available on this node.
	Tester Tester
	// Pacer tells how this node paces a webhook (the engine), for the
	// webhook page. Without it the page shows no pace.
	Pacer herald.Pacer
	// Logger receives the access log and internal errors. Defaults to a
	// logger that discards everything.
	Logger *slog.Logger
	// Now is the clock. Defaults to time.Now.
	Now func() time.Time
	// SecureCookies marks every cookie Secure, also on requests that came
	// in over plain HTTP: for a UI that a TLS proxy serves as https://
	// (--public-url). Cookies set on requests made over TLS are Secure
	// anyway. Off by default.
	SecureCookies bool
	// RequireHTTPSDestinations refuses a webhook URL that is not https://,
	// as the sender refuses to send to one. Off by default.
	RequireHTTPSDestinations bool
	// APIClientSignIn lets API clients sign in to the UI with their name
	// and secret, beside people (docs/decisions/0010). Off by default.
	APIClientSignIn bool
	// PublicURL is where people reach Herald (https://herald.example.com),
	// for the setup links shown to admins. Defaults to the scheme and host
	// of the admin's request.
	PublicURL string
	// Retention is how long events are kept: a replay may not start
	// before it. Zero: unchecked.
	Retention time.Duration
}

// ui holds the filled-in Config and what handlers share.
type ui struct {
	store  herald.Store
	tester Tester
	pacer  herald.Pacer
	log    *slog.Logger
	now    func() time.Time
	access *access.Gate
	pages  map[string]*pageTemplate
	mux    *http.ServeMux

	// secureCookies, requireHTTPS and apiClientSignIn are Config's
	// SecureCookies, RequireHTTPSDestinations and APIClientSignIn.
	secureCookies, requireHTTPS, apiClientSignIn bool
	publicURL                                    string
	retention                                    time.Duration
}

// New returns the UI handler, to be mounted at Prefix. It returns an error
// when cfg.Store is nil or a template does not parse.
func New(cfg Config) (http.Handler, error) {
	if cfg.Store == nil {
		return nil, errors.New("webui: Config.Store is required")
	}
	if cfg.Access == nil {
		return nil, errors.New("webui: Config.Access is required")
	}
	u := &ui{store: cfg.Store, access: cfg.Access, tester: cfg.Tester, pacer: cfg.Pacer, log: cfg.Logger, now: cfg.Now,
		secureCookies: cfg.SecureCookies, requireHTTPS: cfg.RequireHTTPSDestinations, apiClientSignIn: cfg.APIClientSignIn,
		publicURL: strings.TrimSuffix(cfg.PublicURL, "/"), retention: cfg.Retention}
	if u.log == nil {
		u.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if u.now == nil {
		u.now = time.Now
	}
	pages, err := parsePages()
	if err != nil {
		return nil, err
	}
	u.pages = pages

	u.mux = http.NewServeMux()
	static, err := fs.Sub(staticFS, "static")
	if err != nil {
		return nil, err
	}
	u.mux.Handle("GET /ui/static/", http.StripPrefix("/ui/static/", staticHandler(http.FileServerFS(static))))
	for _, rt := range u.routes() {
		u.mux.Handle(rt.pattern, u.endpoint(rt))
	}
	u.mux.Handle("/ui/", u.endpoint(route{"", access.Public, u.notFound}))
	return u.secure(u.mux), nil
}

// handlerFunc is a page: it writes the page or returns an error for the
// error page.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

type route struct {
	pattern string
	perm    access.Perm
	handler handlerFunc
}

// routes lists every page and form action with the permission it needs,
// the same as the API route that does the same thing.
func (u *ui) routes() []route {
	const t = "/ui/t/{tenant}"
	const i = t + "/i/{instance}"
	return []route{
		{"GET /ui/{$}", access.Public, u.home},
		{"GET /ui/signin", access.Public, u.signinPage},
		{"POST /ui/signin", access.Public, u.signin},
		{"POST /ui/signout", access.Public, u.signout},
		{"GET /ui/setup/{token}", access.Public, u.setupPage},
		{"POST /ui/setup/{token}/password", access.Public, u.setupPassword},
		{"POST /ui/setup/{token}/totp", access.Public, u.setupTOTP},
		{"GET /ui/audit", access.Platform, u.auditPage},
		{"GET /ui/switch", access.Authenticated, u.switchTo},

		{"GET " + t + "/{$}", access.Authenticated, u.tenantHome},
		{"GET " + t + "/designer", access.ReadConfig, u.designer},
		{"GET " + t + "/designer/new", access.Design, u.designerNew},
		{"POST " + t + "/designer/new", access.Design, u.designerCreate},
		{"GET " + t + "/designer/webhooks/{name}", access.ReadConfig, u.designerEdit},
		{"POST " + t + "/designer/webhooks/{name}", access.Design, u.designerUpdate},
		{"POST " + t + "/designer/webhooks/{name}/delete", access.Design, u.designerDelete},
		{"GET " + t + "/designer/changes", access.ReadConfig, u.changes},
		{"POST " + t + "/designer/publish", access.Design, u.publish},
		{"GET " + t + "/designer/versions", access.ReadConfig, u.versions},
		{"GET " + t + "/api-clients", access.Admin, u.apiClients},
		{"POST " + t + "/api-clients", access.Admin, u.apiClientCreate},
		{"POST " + t + "/api-clients/{name}/rotate", access.Admin, u.apiClientRotate},
		{"POST " + t + "/api-clients/{name}/disable", access.Admin, u.apiClientDisable},
		{"POST " + t + "/api-clients/{name}/enable", access.Admin, u.apiClientEnable},
		{"GET " + t + "/api-clients/{name}/delete", access.Admin, u.apiClientDeleteConfirm},
		{"POST " + t + "/api-clients/{name}/delete", access.Admin, u.apiClientDelete},
		{"GET " + t + "/users", access.Admin, u.users},
		{"POST " + t + "/users", access.Admin, u.userInvite},
		{"POST " + t + "/users/{email}/role", access.Admin, u.userRole},
		{"POST " + t + "/users/{email}/sign-out-everywhere", access.Admin, u.userSignOutEverywhere},
		{"POST " + t + "/users/{email}/setup-link", access.Admin, u.userSetupLink},
		{"POST " + t + "/users/{email}/delete", access.Admin, u.userDelete},
		{"GET " + t + "/audit", access.Admin, u.auditPage},

		{"GET " + i + "/{$}", access.Authenticated, u.instanceHome},
		{"GET " + i + "/webhooks", access.ReadConfig, u.webhooks},
		{"GET " + i + "/webhooks/{name}", access.ReadConfig, u.webhook},
		{"POST " + i + "/webhooks/{name}", access.Admin, u.webhookUpdate},
		{"POST " + i + "/webhooks/{name}/activate", access.Admin, u.webhookActivate},
		{"POST " + i + "/webhooks/{name}/deactivate", access.Admin, u.webhookDeactivate},
		{"POST " + i + "/webhooks/{name}/test", access.Admin, u.webhookTest},
		{"POST " + i + "/webhooks/{name}/secret", access.Admin, u.webhookSecret},
		{"POST " + i + "/webhooks/{name}/secret/rotate", access.Admin, u.webhookRotate},
		{"POST " + i + "/webhooks/{name}/recover", access.Admin, u.webhookRecover},
		{"POST " + i + "/webhooks/{name}/replay", access.Admin, u.webhookReplay},
		{"GET " + i + "/deliveries", access.ReadEvents, u.deliveries},
		{"GET " + i + "/deliveries/{id}", access.ReadEvents, u.delivery},
		{"POST " + i + "/deliveries/{id}/resend", access.Admin, u.resend},
		{"GET " + i + "/events", access.ReadEvents, u.events},
	}
}

// RoutePatterns returns the pattern of every page and form action, for
// tests and documentation.
func RoutePatterns() []string {
	var out []string
	for _, rt := range (&ui{}).routes() {
		out = append(out, rt.pattern)
	}
	return out
}
