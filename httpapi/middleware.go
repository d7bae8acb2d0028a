package httpapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/heraldhooks/herald"
	"github.com/heraldhooks/herald/audit"
	"github.com/prometheus/client_golang/prometheus"
)

// reqInfo collects what the access log needs from deeper layers.
type reqInfo struct {
	requestID string
	client    string     // API client, once authenticated
	err       error      // the error rendered, if any
	audit     audit.Note // what the handler adds to the audit entry
}

type reqInfoKey struct{}

func reqInfoFrom(ctx context.Context) *reqInfo {
	info, _ := ctx.Value(reqInfoKey{}).(*reqInfo)
	return info
}

// metrics are the HTTP metrics, labelled by route pattern (never the raw
// path, which would make a series per id).
type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// readyTimeout bounds the readiness check a scrape of herald_ready runs.
const readyTimeout = 5 * time.Second

func newMetrics(reg prometheus.Registerer, ready func(context.Context) error) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "http_requests_total",
			Help: "HTTP requests served by the Herald API, by route pattern and status code.",
		}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "http_request_duration_seconds",
			Help:    "Time to serve HTTP requests of the Herald API, by route pattern.",
			Buckets: prometheus.DefBuckets,
		}, []string{"route"}),
	}
	var err error
	if m.requests, err = register(reg, m.requests); err != nil {
		return nil, err
	}
	if m.duration, err = register(reg, m.duration); err != nil {
		return nil, err
	}
	// herald_ready is /readyz as a metric, so that an alert sees a node
	// whose database cannot commit (down, full, read-only) without a
	// probe of its own. The check writes at most once a second, however
	// often it is scraped.
	up := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "herald_ready",
		Help: "1 when this node's database commits a write (what /readyz checks), 0 when it does not.",
	}, func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
		defer cancel()
		if ready(ctx) != nil {
			return 0
		}
		return 1
	})
	if _, err = register[prometheus.Collector](reg, up); err != nil {
		return nil, err
	}
	return m, nil
}

// register registers c, or returns the identical collector registered
// before (a second handler in the same process shares the metrics).
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing, nil
			}
		}
		return c, fmt.Errorf("httpapi: register metrics: %w", err)
	}
	return c, nil
}

var requestIDRE = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,64}$`)

// middleware wraps the mux with, from the outside in: request id,
// Cache-Control: no-store on /v1, access log, metrics, panic recovery, and
// JSON 404/405 for unknown routes.
func (s *server) middleware(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.Header.Get("X-Request-Id")
		if !requestIDRE.MatchString(id) {
			id = herald.NewID("req", start)
		}
		w.Header().Set("X-Request-Id", id)
		if strings.HasPrefix(r.URL.Path, "/v1/") {
			// Any /v1 answer may hold health data (events, deliveries and
			// their attempts, stats) or a credential: no cache may keep
			// it. A handler may still say otherwise.
			w.Header().Set("Cache-Control", "no-store")
		}
		info := &reqInfo{requestID: id}
		r = r.WithContext(context.WithValue(r.Context(), reqInfoKey{}, info))
		rw := &responseWriter{ResponseWriter: w, r: r}

		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.ErrorContext(r.Context(), "panic serving request", "request_id", id,
					"method", r.Method, "path", herald.LogPath(r.URL.Path), "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
				if rw.status == 0 {
					s.renderError(rw, r, fmt.Errorf("panic: %v", v))
				}
			}
			status := rw.status
			if status == 0 {
				status = http.StatusOK
			}
			route := r.Pattern
			if route == "" {
				route = "unmatched"
			}
			elapsed := time.Since(start)
			s.metrics.requests.WithLabelValues(route, strconv.Itoa(status)).Inc()
			s.metrics.duration.WithLabelValues(route).Observe(elapsed.Seconds())

			level := slog.LevelInfo
			switch r.Pattern {
			case "GET /healthz", "GET /readyz", "GET /metrics":
				level = slog.LevelDebug // probes and scrapes would drown the log
			}
			attrs := []slog.Attr{
				slog.String("request_id", id),
				slog.String("method", r.Method),
				slog.String("route", route),
				slog.String("path", herald.LogPath(r.URL.Path)),
				slog.Int("status", status),
				slog.Float64("duration_ms", float64(elapsed.Microseconds())/1000),
				slog.Int64("bytes", rw.written),
			}
			if info.client != "" {
				attrs = append(attrs, slog.String("client", info.client))
			}
			// The error's code and field, never its message: it may
			// quote what the request carried (herald.Error.LogValue).
			var he *herald.Error
			if status < 500 && errors.As(info.err, &he) {
				attrs = append(attrs, slog.Any("error", he))
			}
			s.log.LogAttrs(r.Context(), level, "http request", attrs...)
		}()

		mux.ServeHTTP(rw, r)
	})
}

// responseWriter records the status and size of a response, and replaces
// the mux's plain-text 404 and 405 for unknown routes with JSON errors.
type responseWriter struct {
	http.ResponseWriter
	r        *http.Request
	status   int
	written  int64
	swallow  bool // the mux's own body is being replaced
	replaced bool
}

func (w *responseWriter) WriteHeader(code int) {
	if w.status != 0 {
		return
	}
	if code >= 100 && code < 200 {
		w.ResponseWriter.WriteHeader(code) // informational; the real status follows
		return
	}
	// The mux sets r.Pattern before calling a route's handler; it is still
	// empty when the mux itself answers 404 or 405.
	if w.r.Pattern == "" && !w.replaced && (code == http.StatusNotFound || code == http.StatusMethodNotAllowed) {
		w.replaced = true
		var err error
		path := herald.LogPath(w.r.URL.Path) // no need to send a huge path back
		if code == http.StatusNotFound {
			err = herald.Errorf(herald.ENOTFOUND, "There is no %s %s in the Herald API; see GET /openapi.json for the routes.", w.r.Method, path)
		} else {
			err = herald.Errorf(codeMethodNotAllowed, "%s %s is not allowed; this path accepts %s.", w.r.Method, path, w.Header().Get("Allow"))
		}
		w.Header().Del("X-Content-Type-Options")
		body := errorBody{Error: errorDetail{Code: herald.ErrorCode(err), Message: herald.ErrorMessage(err)}}
		if info := reqInfoFrom(w.r.Context()); info != nil {
			info.err = err
		}
		_ = writeJSON(w, code, body) // calls WriteHeader again, now with replaced set
		w.swallow = true
		return
	}
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func (w *responseWriter) Write(b []byte) (int, error) {
	if w.swallow {
		return len(b), nil
	}
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
		if w.swallow {
			return len(b), nil
		}
	}
	n, err := w.ResponseWriter.Write(b)
	w.written += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Flush implements http.Flusher.
func (w *responseWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}
