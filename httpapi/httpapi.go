// Package httpapi serves Herald's REST API (v1): bearer-token auth, the
// tenant, designer, instance-webhook, event and delivery endpoints, and the
// operational endpoints (/healthz, /readyz, /metrics, /openapi.json).
//
// Every handler returns an error; one renderer (see error.go) turns it into
// {"error":{"code","message"}} with the status its herald error code calls
// for. Permissions are declared next to each route in routes() and checked
// before the handler runs (see auth.go).
package httpapi

import (
	"cmp"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/heraldhooks/herald"
	"github.com/heraldhooks/herald/access"
	"github.com/heraldhooks/herald/audit"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/trace"
)

// Tester sends a webhook's test request. dispatch.Engine implements it.
type Tester interface {
	// TestWebhook sends the placeholder event (herald.PlaceholderEvent) to w
	// now, signed with secrets, and returns the attempt (also when the
	// receiver failed; err only when it could not be attempted at all).
	TestWebhook(ctx context.Context, w *herald.Webhook, secrets []string) (*herald.Attempt, error)
}

// Config configures the API handler. Store, Access and Ingester are
// required; every other field has a default.
type Config struct {
	// Store keeps everything. Required.
	Store herald.Store
	// Access exchanges credentials for tokens, checks tokens and carries
	// out the life cycle of API clients; the web UI shares it. Required.
	Access *access.Gate
	// Ingester accepts events: the group-committing engine
	// (dispatch.Engine), which stores them through the store's one write
	// path and hands their deliveries to its senders. Required: there is
	// no way in for events that skips the engine.
	Ingester herald.EventIngester
	// Tester sends test requests for POST .../webhooks/{name}/test. Without
	// it that route answers 503.
	Tester Tester
	// Listeners hands `listen:` webhooks' attempts to the streams of GET
	// .../webhooks/{name}/listen and takes their answers
	// (dispatch.Engine). Without it those routes answer 503.
	Listeners herald.Listeners
	// Pacer tells how this node paces a webhook (the engine); a webhook's
	// answer carries it as "pace". Without it the answer has no pace.
	Pacer herald.Pacer
	// Logger receives the access log and internal errors. Defaults to a
	// logger that discards everything.
	Logger *slog.Logger
	// Now is the clock. Defaults to time.Now.
	Now func() time.Time
	// Ready reports whether this node can serve, for /readyz. Defaults to
	// Store.Ready: whether the store can commit a write.
	Ready func(ctx context.Context) error
	// Gatherer is what /metrics exposes. Defaults to
	// prometheus.DefaultGatherer.
	Gatherer prometheus.Gatherer
	// Registerer receives the HTTP metrics (http_requests_total,
	// http_request_duration_seconds). Defaults to
	// prometheus.DefaultRegisterer.
	Registerer prometheus.Registerer
	// RequireHTTPSDestinations refuses (400, naming url) a webhook URL that
	// is not https://, as the sender refuses to send to one. Off by default.
	RequireHTTPSDestinations bool
	// Retention is how long events are kept (the maintenance leader's
	// retention): a replay may not start before it. Zero: unchecked.
	Retention time.Duration
	// TracerProvider receives a server span for every request, named by
	// its route pattern, continuing the caller's W3C traceparent. Nil, the
	// default, makes none and costs nothing.
	TracerProvider trace.TracerProvider
}

// server holds the filled-in Config and the state shared by handlers.
type server struct {
	store    herald.Store
	ingester herald.EventIngester
	tester   Tester
	pacer    herald.Pacer
	// listeners is Config.Listeners.
	listeners herald.Listeners
	log       *slog.Logger
	now       func() time.Time
	access    *access.Gate
	ready     func(ctx context.Context) error
	metrics   *metrics

	promHandler http.Handler

	mux *http.ServeMux

	// requireHTTPS refuses webhook URLs that are not https://.
	requireHTTPS bool
	// retention bounds how far back a replay reaches.
	retention time.Duration
	// tracer makes the request spans; nil when the node does not trace.
	tracer trace.Tracer
}

// New returns the API handler. It returns an error when cfg.Store,
// cfg.Access or cfg.Ingester is nil or the HTTP metrics cannot be
// registered.
func New(cfg Config) (http.Handler, error) {
	if cfg.Store == nil {
		return nil, errors.New("httpapi: Config.Store is required")
	}
	if cfg.Access == nil {
		return nil, errors.New("httpapi: Config.Access is required")
	}
	if cfg.Ingester == nil {
		return nil, errors.New("httpapi: Config.Ingester is required: events are accepted by the engine (dispatch.Engine), never stored past it")
	}
	s := &server{
		store:     cfg.Store,
		ingester:  cfg.Ingester,
		tester:    cfg.Tester,
		listeners: cfg.Listeners,
		pacer:     cfg.Pacer,
		access:    cfg.Access,
		log:       cfg.Logger,
		now:       cfg.Now,
		ready:     cfg.Ready,

		requireHTTPS: cfg.RequireHTTPSDestinations,
		retention:    cfg.Retention,
	}
	if cfg.TracerProvider != nil {
		s.tracer = cfg.TracerProvider.Tracer("github.com/heraldhooks/herald/httpapi", trace.WithInstrumentationVersion(herald.Version))
	}
	if s.log == nil {
		s.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.ready == nil {
		s.ready = cfg.Store.Ready
	}
	m, err := newMetrics(cmp.Or[prometheus.Registerer](cfg.Registerer, prometheus.DefaultRegisterer), s.ready)
	if err != nil {
		return nil, err
	}
	s.metrics = m
	s.promHandler = promhttp.HandlerFor(cmp.Or[prometheus.Gatherer](cfg.Gatherer, prometheus.DefaultGatherer), promhttp.HandlerOpts{})

	s.mux = http.NewServeMux()
	for _, rt := range s.routes() {
		s.mux.Handle(rt.pattern, s.endpoint(rt))
	}
	return s.middleware(s.mux), nil
}

// Route permissions, as the role matrix in package access defines them.
const (
	permPublic        = access.Public
	permAuthenticated = access.Authenticated
	permReadConfig    = access.ReadConfig
	permReadEvents    = access.ReadEvents
	permProduce       = access.Produce
	permDesign        = access.Design
	permAdmin         = access.Admin
	permPlatform      = access.Platform
)

// handlerFunc is an endpoint: it writes a success response or returns an
// error for the renderer.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// route is one registered endpoint.
type route struct {
	pattern string // net/http ServeMux pattern, "METHOD /path"
	perm    access.Perm
	handler handlerFunc
}

// routes returns every endpoint of the API. The OpenAPI document must
// describe each of them (a test checks it).
func (s *server) routes() []route {
	const inst = "/v1/tenants/{tenant}/instances/{instance}"
	return []route{
		{"GET /healthz", permPublic, s.healthz},
		{"GET /readyz", permPublic, s.readyz},
		{"GET /metrics", permPublic, s.metricsHandler},
		{"GET /openapi.json", permPublic, s.openapi},

		{"POST /v1/auth/token", permPublic, s.token},
		{"POST /v1/auth/revoke", permAuthenticated, s.revoke},
		{"GET /v1/catalog", permAuthenticated, s.catalog},

		{"POST /v1/tenants", permPlatform, s.createTenant},
		{"GET /v1/tenants", permAuthenticated, s.listTenants},
		{"GET /v1/tenants/{tenant}", permAuthenticated, s.getTenant},
		{"POST /v1/tenants/{tenant}/instances", permAdmin, s.createInstance},
		{"GET /v1/tenants/{tenant}/instances", permAuthenticated, s.listInstances},
		{"GET " + inst, permAuthenticated, s.getInstance},
		{"POST /v1/tenants/{tenant}/api-clients", permAdmin, s.createAPIClient},
		{"GET /v1/tenants/{tenant}/api-clients", permReadConfig, s.listAPIClients},
		{"GET /v1/tenants/{tenant}/api-clients/{name}", permReadConfig, s.getAPIClient},
		{"DELETE /v1/tenants/{tenant}/api-clients/{name}", permAdmin, s.deleteAPIClient},
		{"POST /v1/tenants/{tenant}/api-clients/{name}/rotate", permAdmin, s.rotateAPIClient},
		{"POST /v1/tenants/{tenant}/api-clients/{name}/disable", permAdmin, s.disableAPIClient},
		{"POST /v1/tenants/{tenant}/api-clients/{name}/enable", permAdmin, s.enableAPIClient},
		{"POST /v1/tenants/{tenant}/users", permAdmin, s.createUser},
		{"GET /v1/tenants/{tenant}/users", permAdmin, s.listUsers},
		{"GET /v1/tenants/{tenant}/users/{email}", permAdmin, s.getUser},
		{"PATCH /v1/tenants/{tenant}/users/{email}", permAdmin, s.updateUser},
		{"DELETE /v1/tenants/{tenant}/users/{email}", permAdmin, s.deleteUser},
		{"POST /v1/tenants/{tenant}/users/{email}/sign-out-everywhere", permAdmin, s.signOutEverywhere},

		{"POST /v1/tenants/{tenant}/designer/webhooks", permDesign, s.createDesignerWebhook},
		{"GET /v1/tenants/{tenant}/designer/webhooks", permReadConfig, s.listDesignerWebhooks},
		{"GET /v1/tenants/{tenant}/designer/webhooks/{name}", permReadConfig, s.getDesignerWebhook},
		{"PATCH /v1/tenants/{tenant}/designer/webhooks/{name}", permDesign, s.updateDesignerWebhook},
		{"DELETE /v1/tenants/{tenant}/designer/webhooks/{name}", permDesign, s.deleteDesignerWebhook},
		{"GET /v1/tenants/{tenant}/designer/draft", permReadConfig, s.draft},
		{"POST /v1/tenants/{tenant}/designer/publish", permDesign, s.publish},
		{"GET /v1/tenants/{tenant}/designer/versions", permReadConfig, s.versions},
		{"GET /v1/tenants/{tenant}/designer/published", permReadConfig, s.publishedVersion},

		{"GET " + inst + "/webhooks", permReadConfig, s.listWebhooks},
		{"GET " + inst + "/webhooks/{name}", permReadConfig, s.getWebhook},
		{"PATCH " + inst + "/webhooks/{name}", permAdmin, s.updateWebhook},
		{"POST " + inst + "/webhooks/{name}/activate", permAdmin, s.activateWebhook},
		{"POST " + inst + "/webhooks/{name}/deactivate", permAdmin, s.deactivateWebhook},
		{"POST " + inst + "/webhooks/{name}/test", permAdmin, s.testWebhook},
		{"GET " + inst + "/webhooks/{name}/secret", permAdmin, s.webhookSecret},
		{"GET " + inst + "/webhooks/{name}/public-key", permReadConfig, s.webhookPublicKey},
		{"GET " + inst + "/webhooks/{name}/headers/{item}", permAdmin, s.revealValue},
		{"GET " + inst + "/webhooks/{name}/query-parameters/{item}", permAdmin, s.revealValue},
		{"POST " + inst + "/webhooks/{name}/secret/rotate", permAdmin, s.rotateSecret},
		{"POST " + inst + "/webhooks/{name}/recover", permAdmin, s.recoverWebhook},
		{"POST " + inst + "/webhooks/{name}/replay", permAdmin, s.replayWebhook},
		{"GET " + inst + "/webhooks/{name}/replays", permReadEvents, s.listReplays},
		{"GET " + inst + "/webhooks/{name}/replays/{id}", permReadEvents, s.getReplay},
		{"GET " + inst + "/webhooks/{name}/stats", permReadEvents, s.webhookStats},
		{"GET " + inst + "/webhooks/{name}/timeline", permReadEvents, s.webhookTimeline},
		{"GET " + inst + "/webhooks/{name}/listen", permAdmin, s.listenStream},
		{"POST " + inst + "/webhooks/{name}/listen/{id}", permAdmin, s.listenAnswer},

		{"POST " + inst + "/events", permProduce, s.createEvents},
		{"GET " + inst + "/events", permReadEvents, s.findEvents},
		{"GET " + inst + "/events/{id}", permReadEvents, s.getEvent},
		{"GET " + inst + "/deliveries", permReadEvents, s.listDeliveries},
		{"GET " + inst + "/deliveries/{id}", permReadEvents, s.getDelivery},

		{"PUT /v1/tenants/{tenant}/operations-webhook", permAdmin, s.putOperationsWebhook},
		{"GET /v1/tenants/{tenant}/operations-webhook", permAdmin, s.getOperationsWebhook},
		{"DELETE /v1/tenants/{tenant}/operations-webhook", permAdmin, s.deleteOperationsWebhook},

		{"GET /v1/tenants/{tenant}/audit", permAdmin, s.listAudit},
		{"GET /v1/audit", permPlatform, s.listAudit},
		{"POST " + inst + "/deliveries/{id}/resend", permAdmin, s.resendDelivery},
		{"POST " + inst + "/patients/{patientId}/purge", permAdmin, s.purgePatient},
	}
}

// endpoint wraps a route's handler with authentication, authorization and
// error rendering.
func (s *server) endpoint(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r, err := s.authorize(r, rt.perm)
		if err == nil {
			err = reservedInstance(r)
		}
		if action := auditActions[rt.pattern]; action != "" && err == nil {
			// The answer is held until the audit entry is written, so
			// whoever reads the trail after the answer finds the entry.
			held := audit.Hold(w)
			if err = rt.handler(held, r); err == nil {
				s.record(r, action)
			}
			held.Release()
		} else if err == nil {
			err = rt.handler(w, r)
		}
		if err != nil {
			s.renderError(w, r, err)
		}
	})
}
