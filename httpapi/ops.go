package httpapi

import (
	"context"
	_ "embed"
	"net/http"
	"time"

	"github.com/heraldhooks/herald"
)

//go:embed openapi.json
var openapiJSON []byte

// healthz answers 200 while the process serves: a liveness probe, which
// must not fail because the database is down (restarting would not help).
func (s *server) healthz(w http.ResponseWriter, r *http.Request) error {
	return writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readyz answers 200 when Config.Ready passes, 503 with its reason when it
// does not: a readiness probe, to take the node out of a load balancer.
func (s *server) readyz(w http.ResponseWriter, r *http.Request) error {
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	if err := s.ready(ctx); err != nil {
		reason := err.Error()
		if herald.ErrorCode(err) != herald.EINTERNAL {
			reason = herald.ErrorMessage(err)
		}
		return writeJSON(w, http.StatusServiceUnavailable, errorBody{Error: errorDetail{
			Code: herald.EUNAVAILABLE, Message: "Not ready: " + reason,
		}})
	}
	return writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// metricsHandler serves Config.Gatherer in the Prometheus formats.
func (s *server) metricsHandler(w http.ResponseWriter, r *http.Request) error {
	s.promHandler.ServeHTTP(w, r)
	return nil
}

// openapi serves the OpenAPI 3.1 document of this API.
func (s *server) openapi(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, _ = w.Write(openapiJSON)
	return nil
}

// catalog returns the event catalog: entities and their subtypes, and the
// predefined payload fields a webhook can select.
func (s *server) catalog(w http.ResponseWriter, r *http.Request) error {
	return writeJSON(w, http.StatusOK, map[string]any{
		"entities":                herald.Catalog.Entities,
		"predefinedFields":        herald.PredefinedFields,
		"defaultPredefinedFields": herald.DefaultPredefinedFields,
	})
}
