package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
)

// The standard OpenTelemetry env vars the serving commands read to decide
// whether to export traces; the exporter and the SDK read the rest
// themselves (OTEL_EXPORTER_OTLP_HEADERS, _INSECURE, _CERTIFICATE, _TIMEOUT,
// _COMPRESSION, OTEL_TRACES_SAMPLER, OTEL_BSP_*, OTEL_RESOURCE_ATTRIBUTES…).
const (
	envOTLPEndpoint       = "OTEL_EXPORTER_OTLP_ENDPOINT"
	envOTLPTracesEndpoint = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
	envOTLPProtocol       = "OTEL_EXPORTER_OTLP_PROTOCOL"
	envOTLPTracesProtocol = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
	envSDKDisabled        = "OTEL_SDK_DISABLED"
	envTracesExporter     = "OTEL_TRACES_EXPORTER"
)

// tracingShutdownTimeout bounds the flush of the spans still queued when a
// command stops.
const tracingShutdownTimeout = 5 * time.Second

// startTracing sets tracing up for a serving command: spans go to the
// OTLP collector the env names (see newTracerProvider); stop flushes the
// spans still queued, so call it when the command has stopped serving. The
// W3C trace-context propagator is installed either way, so a traceparent a
// client sends is continued (and passed on to the services) even when
// nothing is exported.
func startTracing(ctx context.Context, service string, stderr io.Writer) (stop func(), err error) {
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	tp, err := newTracerProvider(ctx, os.Getenv, service)
	if err != nil || tp == nil {
		return func() {}, err
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	log.Info("tracing: exporting spans over OTLP", "service.name", service)
	otel.SetTracerProvider(tp)
	return func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), tracingShutdownTimeout)
		defer cancel()
		if err := tp.Shutdown(sctx); err != nil {
			log.Warn("tracing: flushing the last spans failed", "err", err)
		}
	}, nil
}

// newTracerProvider returns a tracer provider that batches spans to an
// OTLP collector when OTEL_EXPORTER_OTLP_ENDPOINT (or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is set: over gRPC, or over HTTP when
// the protocol is http/protobuf. It returns nil, tracing off, when neither
// is set, when OTEL_SDK_DISABLED is true or OTEL_TRACES_EXPORTER is none.
// The resource's service.name is service unless OTEL_SERVICE_NAME says
// otherwise.
func newTracerProvider(ctx context.Context, getenv func(string) string, service string) (*sdktrace.TracerProvider, error) {
	if getenv(envOTLPEndpoint) == "" && getenv(envOTLPTracesEndpoint) == "" {
		return nil, nil
	}
	if strings.EqualFold(strings.TrimSpace(getenv(envSDKDisabled)), "true") || strings.EqualFold(strings.TrimSpace(getenv(envTracesExporter)), "none") {
		return nil, nil
	}
	protocol := getenv(envOTLPTracesProtocol)
	if protocol == "" {
		protocol = getenv(envOTLPProtocol)
	}
	var exp sdktrace.SpanExporter
	var err error
	switch protocol {
	case "", "grpc":
		exp, err = otlptracegrpc.New(ctx)
	case "http/protobuf":
		exp, err = otlptracehttp.New(ctx)
	default:
		return nil, fmt.Errorf("tracing: %s %q is not supported: use grpc or http/protobuf", envOTLPProtocol, protocol)
	}
	if err != nil {
		return nil, fmt.Errorf("tracing: the OTLP exporter: %w", err)
	}
	// Later options win: the env (OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES)
	// overrides the command's name.
	res, err := resource.New(ctx,
		resource.WithTelemetrySDK(),
		resource.WithAttributes(semconv.ServiceName(service)),
		resource.WithFromEnv(),
	)
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		_ = exp.Shutdown(ctx)
		return nil, fmt.Errorf("tracing: the resource: %w", err)
	}
	return sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res)), nil
}
