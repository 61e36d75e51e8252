package socket

import (
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"

	"github.com/streamgate/streamgate/internal/coalesce"
	"github.com/streamgate/streamgate/internal/testhooks"
	"github.com/streamgate/streamgate/services/socket/internal/wire"
	"github.com/streamgate/streamgate/services/socket/keyring"
)

// ServerOption tunes a Server.
type ServerOption interface{ applyServer(*serverConfig) }

type serverConfig struct {
	keys           *keyring.Keyring
	noAuth         bool
	noCoalesce     bool
	flights        *coalesce.Group // a test's (testhooks.ServerFlights); nil: the server's own
	logger         *slog.Logger
	streamInFlight int
	serverInFlight int
	maxBody        int
	maxFrame       int
	drainTimeout   time.Duration
	grpcOptions    []grpc.ServerOption
	metrics        prometheus.Registerer // nil: no metrics
}

const (
	defaultStreamInFlight = 1024
	defaultServerInFlight = 16384
	defaultMaxBody        = 1 << 20
	defaultMaxFrame       = wire.DefaultMaxFrame
	defaultDrainTimeout   = 10 * time.Second
)

func defaultServerConfig() serverConfig {
	return serverConfig{
		logger:         slog.New(slog.DiscardHandler),
		streamInFlight: defaultStreamInFlight,
		serverInFlight: defaultServerInFlight,
		maxBody:        defaultMaxBody,
		maxFrame:       defaultMaxFrame,
		drainTimeout:   defaultDrainTimeout,
	}
}

type serverOptionFunc func(*serverConfig)

func (f serverOptionFunc) applyServer(c *serverConfig) { f(c) }

// WithLogger sets where the server logs what it cannot return as an error
// (handler panics, dropped streams). Default: discard.
func WithLogger(l *slog.Logger) ServerOption {
	return serverOptionFunc(func(c *serverConfig) { c.logger = l })
}

// WithMaxFrameSize bounds one gRPC message on the stream, in bytes.
// Default 4 MiB. A frame this side would send over it fails only its own
// request (a request: INVALID_ARGUMENT; an answer: INTERNAL in its place);
// a larger frame that arrives ends the stream with RESOURCE_EXHAUSTED, so
// both sides should use the same bound.
func WithMaxFrameSize(n int) ServerOption {
	return serverOptionFunc(func(c *serverConfig) { c.maxFrame = n })
}

// WithKeys sets the keys the server accepts. A server needs WithKeys or
// WithoutAuth.
func WithKeys(k *keyring.Keyring) ServerOption {
	return serverOptionFunc(func(c *serverConfig) { c.keys = k })
}

// WithoutAuth lets any caller in without a key, as principal "anonymous"
// allowed to delegate. For local development and tests only.
func WithoutAuth() ServerOption {
	return serverOptionFunc(func(c *serverConfig) { c.noAuth = true })
}

// WithoutCoalescing makes every read run its handler, even when an
// identical read is in flight. Default: identical reads in flight at the
// same moment (same action, id, body, API version and caller, or any
// caller for Public actions) share one handler run.
func WithoutCoalescing() ServerOption {
	return serverOptionFunc(func(c *serverConfig) { c.noCoalesce = true })
}

// WithMaxInFlight bounds the requests running at once on one stream and on
// the whole server. A frame beyond either bound is answered at once with
// RESOURCE_EXHAUSTED. Default 1024 per stream, 16384 per server.
func WithMaxInFlight(perStream, perServer int) ServerOption {
	return serverOptionFunc(func(c *serverConfig) {
		c.streamInFlight, c.serverInFlight = perStream, perServer
	})
}

// WithMaxBodySize bounds a request's body, in bytes. A larger body is
// answered with INVALID_ARGUMENT (reason "body_too_large") and the stream
// carries on. Default 1 MiB.
func WithMaxBodySize(n int) ServerOption {
	return serverOptionFunc(func(c *serverConfig) { c.maxBody = n })
}

// WithDrainTimeout bounds a graceful shutdown: how long in-flight requests
// may run after the drain frames went out before they are cancelled.
// Default 10s.
func WithDrainTimeout(d time.Duration) ServerOption {
	return serverOptionFunc(func(c *serverConfig) { c.drainTimeout = d })
}

// WithGRPCServerOptions passes options (TLS credentials, keepalive) to the
// underlying grpc.Server. Its codec stays the runtime's own (protobuf,
// with frames encoded before they reach gRPC): a ForceServerCodec here
// has no effect.
func WithGRPCServerOptions(opts ...grpc.ServerOption) ServerOption {
	return serverOptionFunc(func(c *serverConfig) {
		for _, o := range opts {
			if h, ok := o.(testhooks.ServerFlights); ok {
				c.flights = h.Group
			}
		}
		c.grpcOptions = append(c.grpcOptions, opts...)
	})
}
