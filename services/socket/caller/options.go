package caller

import (
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/grpc"

	"github.com/streamgate/streamgate/services/socket/internal/wire"
)

// Option tunes a Client.
type Option func(*config)

type config struct {
	key            string
	service        string
	logger         *slog.Logger
	maxFrame       int
	maxAttempts    int
	connectTimeout time.Duration
	backoffBase    time.Duration
	backoffMax     time.Duration
	readyWait      time.Duration
	noCoalesce     bool
	grpcOptions    []grpc.DialOption
	nats           *nats.Conn // WithNATS's
}

const (
	defaultMaxAttempts    = 3
	defaultConnectTimeout = 10 * time.Second
	defaultBackoffBase    = 50 * time.Millisecond
	defaultBackoffMax     = 5 * time.Second
	defaultReadyWait      = 50 * time.Millisecond

	// resolveInterval is how often a client resolves its target's name
	// again to find new instances (besides when a connection fails).
	resolveInterval = 30 * time.Second
)

func defaultConfig() config {
	return config{
		logger:         slog.New(slog.DiscardHandler),
		maxFrame:       wire.DefaultMaxFrame,
		maxAttempts:    defaultMaxAttempts,
		connectTimeout: defaultConnectTimeout,
		backoffBase:    defaultBackoffBase,
		backoffMax:     defaultBackoffMax,
		readyWait:      defaultReadyWait,
	}
}

// WithLogger sets where the client logs what it cannot return as an error
// (dropped streams, failed Describes). Default: discard.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) { c.logger = l }
}

// WithMaxFrameSize bounds one gRPC message on the stream, in bytes.
// Default 4 MiB. A request frame over it fails only its own request
// (INVALID_ARGUMENT); a larger frame that arrives ends the stream with
// RESOURCE_EXHAUSTED, so both sides should use the same bound (see
// socket.WithMaxFrameSize).
func WithMaxFrameSize(n int) Option {
	return func(c *config) { c.maxFrame = n }
}

// WithServiceName names the service a client calls, for its error
// messages ("service users has no ready instance") and log lines. Default:
// the name the service's Describe gave, "the service" before one answered.
func WithServiceName(name string) Option {
	return func(c *config) { c.service = name }
}

// WithKey sets the key the client presents on every stream.
func WithKey(secret string) Option {
	return func(c *config) { c.key = secret }
}

// WithMaxAttempts bounds how many times one idempotent request is sent when
// streams break under it. Writes are never sent twice. Default 3.
func WithMaxAttempts(n int) Option {
	return func(c *config) { c.maxAttempts = n }
}

// WithConnectTimeout bounds how long opening a stream to one instance may
// take before it counts as failed and is retried with backoff. Default 10s.
func WithConnectTimeout(d time.Duration) Option {
	return func(c *config) { c.connectTimeout = d }
}

// WithBackoff sets the reconnect backoff: the first delay and the cap. The
// delay doubles after each failed attempt, with ±20% jitter, and never
// exceeds max however long an instance stays down, so a restarted instance
// gets traffic again within max of coming back. Default 50ms, 5s.
func WithBackoff(base, max time.Duration) Option {
	return func(c *config) { c.backoffBase, c.backoffMax = base, max }
}

// WithReadyWait bounds how long a request waits for a ready stream when
// every instance is failing: it waits only while a reconnect is under way
// or due within d, and at most d, then fails with UNAVAILABLE, reason
// "no_ready_instance" and a "retry_after_ms" hint (the time until the next
// reconnect attempt, from 100ms to the backoff cap); with every instance
// in a longer backoff it fails at once. A request never waits longer than
// its context allows. While an instance's first connection attempt is
// under way, requests wait for it (bounded by WithConnectTimeout) instead.
// Default 50ms.
func WithReadyWait(d time.Duration) Option {
	return func(c *config) { c.readyWait = d }
}

// WithoutCoalescing sends every read, even when an identical read is in
// flight. Default: identical reads share one request (see Client.Request).
func WithoutCoalescing() Option {
	return func(c *config) { c.noCoalesce = true }
}

// WithGRPCDialOptions passes options (TLS credentials, keepalive) to the
// underlying connections. Default: plaintext.
func WithGRPCDialOptions(opts ...grpc.DialOption) Option {
	return func(c *config) { c.grpcOptions = append(c.grpcOptions, opts...) }
}
