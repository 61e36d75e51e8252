package caller

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"

	socketv1 "github.com/streamgate/streamgate/gen/streamgate/socket/v1"
	"github.com/streamgate/streamgate/services/socket/internal/wire"
)

// backoff returns the delay before reconnect attempt n (from 0): doubling
// from the base, with ±20% jitter, never above the cap.
func (cfg *config) backoff(n int) time.Duration {
	d := cfg.backoffBase << min(n, 20)
	if d > cfg.backoffMax || d <= 0 {
		d = cfg.backoffMax
	}
	return min(time.Duration(float64(d)*(0.8+0.4*rand.Float64())), cfg.backoffMax)
}

// outgoingContext attaches the client's key to a call's context.
func (cfg *config) outgoingContext(ctx context.Context) context.Context {
	if cfg.key == "" {
		return ctx
	}
	return metadata.AppendToOutgoingContext(ctx, wire.MetadataAuthorization, "Bearer "+cfg.key)
}

func (cfg *config) dialOptions() []grpc.DialOption {
	return append([]grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(cfg.maxFrame), grpc.MaxCallSendMsgSize(cfg.maxFrame)),
		// The instance loop drives reconnection (a fresh connection per
		// attempt after a failure); gRPC's own backoff is bounded by ours
		// all the same, and one attempt by the connect timeout.
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: cfg.backoffBase, Multiplier: 2, MaxDelay: cfg.backoffMax},
			MinConnectTimeout: cfg.connectTimeout,
		}),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: wire.KeepaliveTime, Timeout: wire.KeepaliveTimeout, PermitWithoutStream: true}),
	}, cfg.grpcOptions...)
}

func (cfg *config) newConn(addr string) (*conn, error) {
	cc, err := grpc.NewClient(addr, cfg.dialOptions()...)
	if err != nil {
		return nil, fmt.Errorf("socket: dial %s: %w", addr, err)
	}
	return &conn{cc: cc, stub: socketv1.NewSocketServiceClient(cc)}, nil
}
