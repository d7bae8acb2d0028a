package httpapi_test

import (
	"strings"
	"testing"

	"github.com/heraldhooks/herald/heraldtest/storekit"
	"github.com/heraldhooks/herald/httpapi"
	"github.com/prometheus/client_golang/prometheus"
)

// TestNewRequiresIngester: the API has no way in for events but the
// engine. Without an Ingester New refuses to start, rather than fall back
// on storing events past the engine (whose deliveries no node would hand
// off).
func TestNewRequiresIngester(t *testing.T) {
	store := storekit.NewSQLite(t)
	reg := prometheus.NewRegistry()
	cfg := httpapi.Config{Store: store, Access: mustGate(t, store, storekit.Keys, nil), Registerer: reg, Gatherer: reg}
	h, err := httpapi.New(cfg)
	if err == nil || h != nil {
		t.Fatalf("New without an Ingester = %v, %v; want no handler and an error", h, err)
	}
	if !strings.Contains(err.Error(), "Config.Ingester is required") {
		t.Errorf("New without an Ingester: %v; want it to name Config.Ingester", err)
	}
	cfg.Ingester = mustEngine(t, store, nil)
	reg = prometheus.NewRegistry()
	cfg.Registerer, cfg.Gatherer = reg, reg
	if _, err := httpapi.New(cfg); err != nil {
		t.Fatalf("New with an engine as Ingester: %v", err)
	}
}
