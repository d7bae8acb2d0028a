// Package telemetry sets up Herald's OpenTelemetry traces: the one place
// that decides, from the standard OTEL_* environment variables, whether a
// node exports spans (OTLP over HTTP) and with which resource, and the
// slog handler that puts trace_id and span_id on log lines.
//
// The parts that make spans (httpapi, dispatch) take a
// trace.TracerProvider in their Config and make none when it is nil: with
// tracing off a node pays a nil check, not a no-op span per request.
// docs/decisions/0023-opentelemetry.md says why these modules.
package telemetry

import (
	"cmp"
	"context"
	"fmt"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// Config says what a node reports about itself. Only main reads the
// environment; it passes Getenv.
type Config struct {
	// Getenv reads the OTEL_* variables. Required (os.Getenv).
	Getenv func(string) string
	// Version is Herald's version, the resource's service.version.
	Version string
	// NodeID is the node's id (the engine's owner), the resource's
	// service.instance.id.
	NodeID string
}

// Tracing is a node's trace export, or none.
type Tracing struct {
	provider *sdktrace.TracerProvider // nil when tracing is off
}

// Enabled reports whether t was set up from the environment: either
// OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set,
// OTEL_SDK_DISABLED is not true and OTEL_TRACES_EXPORTER is not none.
func Enabled(getenv func(string) string) bool {
	if strings.EqualFold(strings.TrimSpace(getenv("OTEL_SDK_DISABLED")), "true") {
		return false
	}
	switch strings.ToLower(strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER"))) {
	case "", "otlp":
	default:
		// "none", and exporters Herald does not ship (console, zipkin):
		// nothing to export to.
		return false
	}
	return getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
}

// Setup returns the node's tracing: off (Provider returns nil) unless
// Enabled, else an OTLP/HTTP exporter configured by the OTEL_EXPORTER_OTLP_*
// variables, batched as OTEL_BSP_* say and sampled as OTEL_TRACES_SAMPLER
// says, under a resource with service.name herald (OTEL_SERVICE_NAME and
// OTEL_RESOURCE_ATTRIBUTES override), service.version and
// service.instance.id. Its error says which setting could not be used.
// Setup never installs a global provider: the parts that trace are given
// Provider.
func Setup(ctx context.Context, cfg Config) (*Tracing, error) {
	if !Enabled(cfg.Getenv) {
		return &Tracing{}, nil
	}
	if p := strings.ToLower(cmp.Or(cfg.Getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"), cfg.Getenv("OTEL_EXPORTER_OTLP_PROTOCOL"))); p != "" && p != "http/protobuf" {
		return nil, fmt.Errorf("OTEL_EXPORTER_OTLP_PROTOCOL=%q: Herald exports traces over OTLP/HTTP with protobuf only; set it to http/protobuf or leave it unset", p)
	}
	exp, err := otlptracehttp.New(ctx)
	if err != nil {
		return nil, fmt.Errorf("OpenTelemetry trace exporter (OTEL_EXPORTER_OTLP_*): %w", err)
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(
			attribute.String("service.name", "herald"),
			attribute.String("service.version", cfg.Version),
			attribute.String("service.instance.id", cfg.NodeID),
		),
		// Last, so OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win.
		resource.WithFromEnv(),
	)
	if err != nil {
		// Most often OTEL_RESOURCE_ATTRIBUTES that is not key=value pairs
		// (resource.ErrPartialResource): refuse rather than export spans
		// that a collector files under the wrong service.
		return nil, fmt.Errorf("OpenTelemetry resource (OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES written as key=value,key=value): %w", err)
	}
	return &Tracing{provider: sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))}, nil
}

// Provider returns the tracer provider to give the parts that trace, or
// nil when tracing is off.
func (t *Tracing) Provider() trace.TracerProvider {
	if t == nil || t.provider == nil {
		return nil
	}
	return t.provider
}

// Shutdown exports the spans still waiting, within timeout, and stops the
// exporter. Call it once the parts that trace have stopped.
func (t *Tracing) Shutdown(timeout time.Duration) error {
	if t == nil || t.provider == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := t.provider.Shutdown(ctx); err != nil {
		return fmt.Errorf("flush traces: %w", err)
	}
	return nil
}
