package gateway

import (
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/streamgate/streamgate/gateway/config"
	"github.com/streamgate/streamgate/gateway/idempotency"
	"github.com/streamgate/streamgate/gateway/wsedge"
	"github.com/streamgate/streamgate/internal/asyncwriter"
	"github.com/streamgate/streamgate/services/socket/caller"
)

// Option tunes a Gateway.
type Option func(*options)

type options struct {
	logger     *slog.Logger
	dial       []caller.Option
	env        func(string) string
	targets    map[string]string
	cacheBytes int64 // 0: no cache
	noCoalesce bool
	demo       bool              // serve the demo page at /demo/
	idem       idempotency.Store // nil: from the configuration
	metrics    prometheus.Registerer
	socket     SocketLimits

	serviceTLS        *config.LinkTLS // links the configuration gives no TLS
	insecurePlaintext bool            // plaintext links may leave the machine

	eventInvalidated func(tags []string) // tests: called after an event's invalidation
}

// WithIdempotencyStore keeps Idempotency-Key leases and answers in s for
// every configuration, instead of the store the configuration chooses (in
// this process, bounded by http.idempotency; in Redis when redis is set).
func WithIdempotencyStore(s idempotency.Store) Option { return func(o *options) { o.idem = s } }

// DefaultCacheBytes is the response cache's default bound.
const DefaultCacheBytes = 64 << 20

// WithCacheSize bounds the response cache's memory in bytes; 0 turns the
// cache off. Default DefaultCacheBytes.
func WithCacheSize(bytes int64) Option { return func(o *options) { o.cacheBytes = bytes } }

// WithoutCoalescing sends every read to its service, even when an
// identical read is in flight. Default: identical reads in flight share one
// request (routes can opt out with coalesce: false).
func WithoutCoalescing() Option { return func(o *options) { o.noCoalesce = true } }

// WithLogger sets where the gateway logs panics and reloads. Default: discard.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithEnv sets where Reload looks up the env vars the configuration names
// (key_env, secret_env, hs256_secret_env). Default os.Getenv.
func WithEnv(env func(string) string) Option { return func(o *options) { o.env = env } }

// WithTargets overrides service targets by service name in every
// configuration the gateway applies, including reloaded ones (the stack
// uses it to point the example configuration at services on free ports).
func WithTargets(targets map[string]string) Option {
	return func(o *options) { o.targets = targets }
}

// WithDialOptions adds options to every service client (for example a
// custom dialer in tests).
func WithDialOptions(opts ...caller.Option) Option {
	return func(o *options) { o.dial = append(o.dial, opts...) }
}

// WithMetrics registers the gateway's Prometheus metrics with reg (see
// README, "Metrics"); when reg is also a prometheus.Gatherer (a
// *prometheus.Registry), Run's admin listener serves it at /metrics.
// Gateways registered with one reg share their series. Default: no
// metrics.
func WithMetrics(reg prometheus.Registerer) Option {
	return func(o *options) { o.metrics = reg }
}

// NewRegistry returns a Prometheus registry with the Go runtime and
// process collectors and the count of log lines the process dropped
// (streamgate_log_lines_dropped_total), for a process's /metrics.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), asyncwriter.DroppedCollector())
	return reg
}

// SocketLimits bound each connection of the WebSocket endpoint
// GET /{version}/socket (see wsedge.Limits).
type SocketLimits = wsedge.Limits

// WithSocketLimits sets the WebSocket endpoint's per-connection limits.
// Default: SocketLimits{} (every default).
func WithSocketLimits(l SocketLimits) Option { return func(o *options) { o.socket = l } }
