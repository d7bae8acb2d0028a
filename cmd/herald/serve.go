package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/heraldhooks/herald"
	"github.com/heraldhooks/herald/access"
	"github.com/heraldhooks/herald/dispatch"
	"github.com/heraldhooks/herald/httpapi"
	"github.com/heraldhooks/herald/netguard"
	"github.com/heraldhooks/herald/sqlstore"
	"github.com/heraldhooks/herald/telemetry"
	"github.com/heraldhooks/herald/webui"
)

// DefaultDatabase is where Herald keeps its data when not told otherwise.
const DefaultDatabase = "sqlite:herald-data/herald.db"

// minAdminSecret is the shortest HERALD_ADMIN_SECRET serve accepts.
const minAdminSecret = 16

// serveConfig is everything `herald serve` is told by flags and environment.
type serveConfig struct {
	Listen       string
	Database     string
	AllowPrivate bool
	AdminSecret  string
	// MasterKeyFile names a file of master keys; HERALD_MASTER_KEY or,
	// on SQLite, a key file beside the database otherwise (loadKeys).
	MasterKeyFile string
	NodeID        string
	Retention     time.Duration
	// AuditRetention is how long audit entries are kept.
	AuditRetention time.Duration
	FailingFor     time.Duration
	// MaintenanceInterval is how often the leader runs maintenance, and how
	// often the other nodes try to become leader.
	MaintenanceInterval time.Duration
	Concurrency         int
	PerWebhookInFlight  int
	FastWebhookInFlight int
	LogFormat           string
	LogLevel            string
	// AuthLimitPerClient and AuthLimitPerAddress are how many token
	// requests (API and web UI sign-in) may name one client, or come from
	// one address, in five minutes.
	AuthLimitPerClient  int
	AuthLimitPerAddress int
	// CPUProfile, when set, is a file the CPU profile of the whole run is
	// written to at shutdown (herald bench uses it).
	CPUProfile string

	// TLSCert and TLSKey are the PEM files to serve HTTPS with, both or
	// neither; reloaded on SIGHUP.
	TLSCert, TLSKey string
	// PublicURL is where people reach Herald, when a proxy in front
	// serves it; https:// makes cookies Secure and adds HSTS.
	PublicURL string
	// AllowDestinations are non-public ranges webhooks may send to.
	AllowDestinations []netip.Prefix
	// RequireHTTPSDestinations refuses webhook URLs that are not https://.
	RequireHTTPSDestinations bool
	// DestinationCAFile is a PEM bundle trusted beside the system's roots
	// for receivers' certificates.
	DestinationCAFile string
	// SessionIdle and SessionMax end people's web UI sessions: idle this
	// long, or this old.
	SessionIdle, SessionMax time.Duration
	// UIAPIClientSignIn lets API clients sign in to the web UI too.
	UIAPIClientSignIn bool
}

func parseServeFlags(args []string, stderr io.Writer) (serveConfig, error) {
	var c serveConfig
	var env envReader
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.Listen, "listen", envOr("HERALD_LISTEN", "127.0.0.1:8080"), "address to serve the API on (env HERALD_LISTEN)")
	fs.StringVar(&c.Database, "database", envOr("HERALD_DATABASE", DefaultDatabase), "sqlite:<file> or postgres://... (env HERALD_DATABASE)")
	fs.BoolVar(&c.AllowPrivate, "allow-private-destinations", envBool("HERALD_ALLOW_PRIVATE_DESTINATIONS"), "allow webhook URLs that resolve to loopback, private or link-local addresses, except cloud metadata ones: local development and tests only; prefer --allow-destination (env HERALD_ALLOW_PRIVATE_DESTINATIONS)")
	fs.StringVar(&c.MasterKeyFile, "master-key-file", envOr("HERALD_MASTER_KEY_FILE", ""), "file holding the master key (base64 of 32 bytes; several, newest first, while rotating); or set HERALD_MASTER_KEY. On SQLite, defaults to master.key beside the database, created on first start (env HERALD_MASTER_KEY_FILE)")
	fs.StringVar(&c.NodeID, "node-id", envOr("HERALD_NODE_ID", ""), "this node's name on claimed deliveries; defaults to host-pid (env HERALD_NODE_ID)")
	fs.DurationVar(&c.Retention, "retention", env.duration("HERALD_RETENTION", 30*24*time.Hour), "how long finished deliveries (delivered, failed, cancelled), their attempts and events are kept (env HERALD_RETENTION)")
	fs.DurationVar(&c.AuditRetention, "audit-retention", env.duration("HERALD_AUDIT_RETENTION", 6*365*24*time.Hour), "how long audit trail entries are kept, apart from events (env HERALD_AUDIT_RETENTION; default six years)")
	fs.DurationVar(&c.FailingFor, "auto-disable-after", env.duration("HERALD_AUTO_DISABLE_AFTER", 5*24*time.Hour), "deactivate a webhook whose every attempt has failed for this long (env HERALD_AUTO_DISABLE_AFTER)")
	fs.DurationVar(&c.MaintenanceInterval, "maintenance-interval", env.duration("HERALD_MAINTENANCE_INTERVAL", time.Minute), "how often the leader node runs retention and clean-up, and others check whether the leader is alive (env HERALD_MAINTENANCE_INTERVAL)")
	fs.IntVar(&c.Concurrency, "concurrency", env.int("HERALD_CONCURRENCY", 64), "requests in flight to receivers on this node (env HERALD_CONCURRENCY)")
	fs.IntVar(&c.PerWebhookInFlight, "per-webhook-in-flight", env.int("HERALD_PER_WEBHOOK_IN_FLIGHT", 8), "requests in flight to any one webhook on this node, so a slow receiver holds few senders (env HERALD_PER_WEBHOOK_IN_FLIGHT)")
	fs.IntVar(&c.FastWebhookInFlight, "fast-webhook-in-flight", env.int("HERALD_FAST_WEBHOOK_IN_FLIGHT", 32), "requests in flight to a webhook whose receiver answers within 50ms on average; it drops back to --per-webhook-in-flight when the answers slow down (env HERALD_FAST_WEBHOOK_IN_FLIGHT)")
	fs.StringVar(&c.LogFormat, "log-format", envOr("HERALD_LOG_FORMAT", "text"), "text or json (env HERALD_LOG_FORMAT)")
	fs.StringVar(&c.LogLevel, "log-level", envOr("HERALD_LOG_LEVEL", "info"), "debug, info, warn or error (env HERALD_LOG_LEVEL)")
	fs.IntVar(&c.AuthLimitPerClient, "auth-limit-per-client", env.int("HERALD_AUTH_LIMIT_PER_CLIENT", 100), "token requests and sign-ins that may name one API client in 5 minutes; more are refused (429) until the 5 minutes pass, even with the right secret (env HERALD_AUTH_LIMIT_PER_CLIENT)")
	fs.IntVar(&c.AuthLimitPerAddress, "auth-limit-per-address", env.int("HERALD_AUTH_LIMIT_PER_ADDRESS", 1000), "token requests and sign-ins that may come from one source address (the TCP peer; X-Forwarded-For is not trusted) in 5 minutes (env HERALD_AUTH_LIMIT_PER_ADDRESS)")
	fs.StringVar(&c.CPUProfile, "cpuprofile", "", "write a CPU profile of this run to the file at shutdown, for go tool pprof")
	fs.StringVar(&c.TLSCert, "tls-cert", envOr("HERALD_TLS_CERT", ""), "serve HTTPS only, with this PEM certificate (chain); needs --tls-key; SIGHUP reloads both files (env HERALD_TLS_CERT)")
	fs.StringVar(&c.TLSKey, "tls-key", envOr("HERALD_TLS_KEY", ""), "the PEM private key of --tls-cert (env HERALD_TLS_KEY)")
	fs.StringVar(&c.PublicURL, "public-url", envOr("HERALD_PUBLIC_URL", ""), "the URL people reach Herald at, such as https://herald.example.com behind a TLS proxy: https:// makes the web UI's cookies Secure and adds HSTS (env HERALD_PUBLIC_URL)")
	c.AllowDestinations = env.prefixes("HERALD_ALLOW_DESTINATIONS")
	fs.Var(&prefixesFlag{list: &c.AllowDestinations}, "allow-destination", "let webhooks send to this non-public CIDR range, such as 10.20.0.0/16 or 127.0.0.1/32; repeatable (env HERALD_ALLOW_DESTINATIONS, comma-separated)")
	fs.BoolVar(&c.RequireHTTPSDestinations, "require-https-destinations", envBool("HERALD_REQUIRE_HTTPS_DESTINATIONS"), "accept and send to https:// webhook URLs only (env HERALD_REQUIRE_HTTPS_DESTINATIONS)")
	fs.StringVar(&c.DestinationCAFile, "destination-ca-file", envOr("HERALD_DESTINATION_CA_FILE", ""), "PEM bundle of certificate authorities trusted beside the system's for receivers' certificates, for a private PKI (env HERALD_DESTINATION_CA_FILE)")
	fs.DurationVar(&c.SessionIdle, "session-idle", env.duration("HERALD_SESSION_IDLE", 15*time.Minute), "sign a person out of the web UI after this long without a request (env HERALD_SESSION_IDLE)")
	fs.DurationVar(&c.SessionMax, "session-max", env.duration("HERALD_SESSION_MAX", 12*time.Hour), "sign a person out of the web UI this long after they signed in, however active (env HERALD_SESSION_MAX)")
	fs.BoolVar(&c.UIAPIClientSignIn, "ui-api-client-sign-in", envBool("HERALD_UI_API_CLIENT_SIGN_IN"), "let API clients sign in to the web UI with their name and secret, beside people; off by default (env HERALD_UI_API_CLIENT_SIGN_IN)")
	if env.err != nil {
		return c, env.err
	}
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("serve takes no arguments, got %q", fs.Args())
	}
	if c.SessionIdle < time.Second || c.SessionMax < c.SessionIdle {
		return c, fmt.Errorf("--session-idle must be at least 1s and --session-max at least --session-idle, not %s and %s", c.SessionIdle, c.SessionMax)
	}
	c.AdminSecret = os.Getenv("HERALD_ADMIN_SECRET")
	if c.AdminSecret != "" && len(c.AdminSecret) < minAdminSecret {
		return c, fmt.Errorf("HERALD_ADMIN_SECRET is %d characters; it must be at least %d, since it grants every right on every tenant (make one with: openssl rand -base64 24)", len(c.AdminSecret), minAdminSecret)
	}
	if c.AuthLimitPerClient < 1 || c.AuthLimitPerAddress < 1 {
		return c, fmt.Errorf("--auth-limit-per-client and --auth-limit-per-address must be at least 1, not %d and %d", c.AuthLimitPerClient, c.AuthLimitPerAddress)
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		return c, fmt.Errorf("--log-format must be text or json, not %q", c.LogFormat)
	}
	if !strings.HasPrefix(c.Database, "sqlite:") && !strings.HasPrefix(c.Database, "postgres://") && !strings.HasPrefix(c.Database, "postgresql://") {
		return c, fmt.Errorf("--database must be sqlite:<file> or postgres://..., not %q", sqlstore.RedactDSN(c.Database))
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return c, errors.New("--tls-cert and --tls-key go together: give both (the certificate and its private key) to serve HTTPS, or neither")
	}
	if err := checkPublicURL(c.PublicURL, c.TLSCert != ""); err != nil {
		return c, err
	}
	return c, nil
}

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parseServeFlags(args, stderr)
	if err != nil {
		return err
	}
	logger, err := newLogger(stderr, cfg.LogFormat, cfg.LogLevel)
	if err != nil {
		return err
	}
	tuneGC()
	if cfg.CPUProfile != "" {
		f, err := os.Create(cfg.CPUProfile)
		if err != nil {
			return fmt.Errorf("--cpuprofile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("--cpuprofile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	srv, err := startServer(ctx, cfg, logger, prometheus.NewRegistry())
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "herald %s listening on %s (database %s)\n", herald.Version, srv.URL(), sqlstore.RedactDSN(cfg.Database))
	if cfg.AdminSecret == "" {
		fmt.Fprintln(stdout, "note: HERALD_ADMIN_SECRET is not set, so no admin API client was created; set it to use the API")
	}
	<-ctx.Done()
	logger.Info("shutting down: finishing requests, then in-flight deliveries")
	return srv.Shutdown()
}

// server is a running Herald node: store, engine, maintainer and HTTP API.
type server struct {
	logger *slog.Logger
	store  *sqlstore.DB
	engine *dispatch.Engine
	http   *http.Server
	ln     net.Listener
	// https is set when the node serves TLS. URL reads it, not
	// http.Server.TLSConfig, which Serve fills in for HTTP/2 on a plain
	// listener too (and concurrently with URL).
	https bool
	// tracing exports spans, or does nothing when OTEL_* set no endpoint;
	// Shutdown flushes it last.
	tracing *telemetry.Tracing

	cancel  context.CancelFunc // stops the engine and maintainer
	done    sync.WaitGroup
	errOnce sync.Once
	err     error
}

// startServer opens the store, starts the engine, the maintainer and the
// HTTP API, and returns once the API is listening.
func startServer(ctx context.Context, cfg serveConfig, logger *slog.Logger, reg *prometheus.Registry) (*server, error) {
	cert, err := loadServingCert(cfg.TLSCert, cfg.TLSKey, logger)
	if err != nil {
		return nil, err
	}
	rootCAs, err := loadDestinationCAs(cfg.DestinationCAFile)
	if err != nil {
		return nil, err
	}
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	keys, createdKey, err := loadKeys(ctx, cfg.Database, cfg.MasterKeyFile, true)
	if err != nil {
		return nil, err
	}
	if createdKey != "" {
		warnKeyCreated(logger, createdKey)
	}
	store, err := sqlstore.Open(ctx, cfg.Database, sqlstore.Config{Logger: logger, Keys: keys})
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", sqlstore.RedactDSN(cfg.Database), err)
	}
	fail := func(err error) (*server, error) {
		store.Close()
		return nil, err
	}
	if store.Dialect() == "sqlite" {
		// SQLite serves one node: whatever its predecessor had in flight
		// is ours to send again now, not when the leases run out.
		n, err := store.ReleaseAll(ctx)
		if err != nil {
			return fail(fmt.Errorf("take back in-flight deliveries: %w", err))
		}
		if n > 0 {
			logger.Info("took back deliveries left in flight by the previous run", "count", n)
		}
	}
	if store.Dialect() == "sqlite" && len(keys.IDs()) > 1 {
		// SQLite serves one node, so `keys rewrap` cannot run beside it:
		// the node re-seals its few secret rows itself at start.
		stats, err := store.Rewrap(ctx, nil)
		if err != nil {
			return fail(fmt.Errorf("re-seal secrets under the newest master key: %w", err))
		}
		logger.Info("re-sealed secrets under the newest master key; the older keys may now be dropped", "key", stats.KeyID, "rows", stats.Rows, "resealed", stats.Resealed)
	}
	gate, err := access.New(access.Config{Store: store, Keys: keys, Logger: logger, Audit: store,
		LimitPerClient: cfg.AuthLimitPerClient, LimitPerAddress: cfg.AuthLimitPerAddress,
		SessionIdle: cfg.SessionIdle, SessionMax: cfg.SessionMax})
	if err != nil {
		return fail(err)
	}
	if cfg.AdminSecret != "" {
		change, err := gate.EnsureAdmin(ctx, cfg.AdminSecret)
		if err != nil {
			return fail(fmt.Errorf("create the admin API client: %w", err))
		}
		if change == access.AdminChanged {
			logger.Warn("HERALD_ADMIN_SECRET changed: the admin API client has the new secret, and tokens issued for the old one no longer work")
		}
	}

	if cfg.NodeID == "" {
		cfg.NodeID = dispatch.DefaultOwner()
	}
	tracing, err := telemetry.Setup(ctx, telemetry.Config{Getenv: os.Getenv, Version: herald.Version, NodeID: cfg.NodeID})
	if err != nil {
		return fail(err)
	}
	if tp := tracing.Provider(); tp != nil {
		logger.Info("exporting traces over OTLP/HTTP (OTEL_EXPORTER_OTLP_*)")
	}
	fail = func(err error) (*server, error) {
		_ = tracing.Shutdown(time.Second)
		store.Close()
		return nil, err
	}

	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	engine, err := dispatch.New(dispatch.Config{
		Store:               store,
		Owner:               cfg.NodeID,
		Logger:              logger,
		Destinations:        netguard.Policy{Allow: cfg.AllowDestinations, AllowPrivate: cfg.AllowPrivate},
		RequireHTTPS:        cfg.RequireHTTPSDestinations,
		RootCAs:             rootCAs,
		Concurrency:         cfg.Concurrency,
		Writers:             writers(store.Dialect()),
		PerWebhookInFlight:  cfg.PerWebhookInFlight,
		FastWebhookInFlight: cfg.FastWebhookInFlight,
		Wake:                store.Subscribe(runCtx),
		Registerer:          reg,
		TracerProvider:      tracing.Provider(),
	})
	if err != nil {
		cancel()
		return fail(err)
	}
	maint, err := dispatch.NewMaintainer(dispatch.MaintainerConfig{
		Store:          store,
		Lead:           leadLogger(store.TryLead, logger),
		Logger:         logger,
		Retention:      cfg.Retention,
		FailingFor:     cfg.FailingFor,
		Interval:       cfg.MaintenanceInterval,
		Registerer:     reg,
		Audit:          store,
		AuditRetention: cfg.AuditRetention,
		TracerProvider: tracing.Provider(),
	})
	if err != nil {
		cancel()
		return fail(err)
	}
	replayer, err := dispatch.NewReplayer(dispatch.ReplayerConfig{Store: store, Logger: logger})
	if err != nil {
		cancel()
		return fail(err)
	}
	handler, err := httpapi.New(httpapi.Config{
		Store:      store,
		Access:     gate,
		Ingester:   engine,
		Tester:     engine,
		Listeners:  engine,
		Pacer:      engine,
		Logger:     logger,
		Gatherer:   reg,
		Registerer: reg,

		RequireHTTPSDestinations: cfg.RequireHTTPSDestinations,
		Retention:                cfg.Retention,
		TracerProvider:           tracing.Provider(),
	})
	if err != nil {
		cancel()
		return fail(err)
	}
	pages, err := webui.New(webui.Config{Store: store, Access: gate, Tester: engine, Pacer: engine, Logger: logger,
		SecureCookies: cfg.publicHTTPS(), RequireHTTPSDestinations: cfg.RequireHTTPSDestinations,
		APIClientSignIn: cfg.UIAPIClientSignIn, PublicURL: cfg.PublicURL, Retention: cfg.Retention})
	if err != nil {
		cancel()
		return fail(err)
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		cancel()
		return fail(fmt.Errorf("listen on %s: %w", cfg.Listen, err))
	}
	root := withUI(handler, pages)
	if cfg.publicHTTPS() {
		root = withHSTS(root)
	}
	s := &server{
		logger: logger, store: store, engine: engine, ln: ln, cancel: cancel, tracing: tracing,
		http: &http.Server{
			Handler:           root,
			ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout:       60 * time.Second,
			IdleTimeout:       120 * time.Second,
			ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		},
	}
	// Listen streams never end by themselves; Shutdown waits for every
	// request, so it ends them first.
	s.http.RegisterOnShutdown(engine.EndListens)
	if cert != nil {
		s.https = true
		s.http.TLSConfig = cert.tlsConfig()
		cert.reloadOnSIGHUP(runCtx, &s.done)
	}
	s.done.Add(4)
	go func() {
		defer s.done.Done()
		if err := engine.Run(runCtx); err != nil {
			s.setErr(fmt.Errorf("dispatch engine: %w", err))
		}
	}()
	go func() {
		defer s.done.Done()
		maint.Run(runCtx)
	}()
	go func() {
		defer s.done.Done()
		replayer.Run(runCtx)
	}()
	go func() {
		defer s.done.Done()
		serve := s.http.Serve
		if cert != nil {
			// HTTPS only: a plain-HTTP request gets a 400 from net/http.
			serve = func(ln net.Listener) error { return s.http.ServeTLS(ln, "", "") }
		}
		if err := serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.setErr(fmt.Errorf("http server: %w", err))
		}
	}()
	return s, nil
}

// withUI serves the web UI under /ui/ (and sends / there) beside the API,
// which gets every other path.
func withUI(api, ui http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle(webui.Prefix, ui)
	mux.Handle("GET /{$}", http.RedirectHandler(webui.Prefix, http.StatusSeeOther))
	mux.Handle("/", api)
	return mux
}

func (s *server) setErr(err error) {
	s.logger.Error(err.Error())
	s.errOnce.Do(func() { s.err = err })
}

// URL returns the base URL the API listens on: https:// when it serves TLS.
func (s *server) URL() string {
	if s.https {
		return "https://" + s.ln.Addr().String()
	}
	return "http://" + s.ln.Addr().String()
}

// Shutdown stops taking requests and lets those in progress finish (so
// every 202 is committed), then lets the engine finish or release what is
// in flight, then closes the database.
func (s *server) Shutdown() error {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := s.http.Shutdown(ctx); err != nil {
		s.logger.Warn("http shutdown", "error", err)
	}
	s.cancel()
	s.done.Wait()
	s.store.ReleaseLeadership()
	if err := s.store.Close(); err != nil {
		s.setErr(fmt.Errorf("close database: %w", err))
	}
	if err := s.tracing.Shutdown(5 * time.Second); err != nil {
		s.logger.Warn("could not export the last spans", "err", err)
	}
	return s.err
}

// writers is how many write transactions a node runs at once: SQLite has a
// single writer; PostgreSQL uses its own CPUs for several.
func writers(dialect string) int {
	if dialect == "postgres" {
		return 4
	}
	return 1
}

// tuneGC makes the garbage collector run less often than Go's default
// unless the operator set GOGC or GOMEMLIMIT: Herald's live heap is small
// (tens of MiB) and most of what it allocates lives for one request, so
// collecting at 5x the live heap instead of 2x takes 15-20 % less CPU per
// delivery for some 15 MiB more memory (docs/performance.md). The soft
// limit keeps a large live heap from growing fivefold.
func tuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(1 << 30)
	}
}

// leadLogger logs when this node becomes or stops being the maintenance
// leader, so an operator can tell from the logs which node runs it.
func leadLogger(try func(context.Context) (bool, error), logger *slog.Logger) func(context.Context) (bool, error) {
	var leading bool
	return func(ctx context.Context) (bool, error) {
		lead, err := try(ctx)
		if lead != leading {
			if lead {
				logger.Info("this node is now the maintenance leader")
			} else {
				logger.Warn("this node is no longer the maintenance leader", "err", err)
			}
			leading = lead
		}
		return lead, err
	}
}

func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level must be debug, info, warn or error, not %q", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	var h slog.Handler = slog.NewTextHandler(w, opts)
	if format == "json" {
		h = slog.NewJSONHandler(w, opts)
	}
	// trace_id and span_id on the lines logged within a span (the access
	// log, attempts), when the node traces.
	return slog.New(telemetry.LogHandler(h)), nil
}

// envReader reads typed environment variables and keeps the first error,
// so a typo in HERALD_RETENTION stops the start instead of being ignored.
type envReader struct{ err error }

func (e *envReader) duration(key string, def time.Duration) time.Duration {
	v := os.Getenv(key)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		if e.err == nil {
			e.err = fmt.Errorf("%s=%q is not a duration such as 720h or 90m", key, v)
		}
		return def
	}
	return d
}

func (e *envReader) int(key string, def int) int {
	v := os.Getenv(key)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		if e.err == nil {
			e.err = fmt.Errorf("%s=%q is not a whole number", key, v)
		}
		return def
	}
	return n
}
