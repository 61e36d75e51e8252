package caller

import (
	"context"
	"errors"
	"time"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	grpcstatus "google.golang.org/grpc/status"

	"github.com/streamgate/streamgate/internal/ontime"
)

// The heartbeat finds a black-holed connection that gRPC's keepalive
// (10s at the least) would find late: a stream silent for
// heartbeatInterval is probed with a health check that must answer within
// heartbeatTimeout, or the stream ends (its requests fail with UNAVAILABLE)
// and the instance reconnects. Detection takes at most
// heartbeatInterval+heartbeatTimeout (3s) after the connection went dark.
// The timeout counts only time the gateway was running (ontime): starved
// of CPU, it waits longer, up to heartbeatLimit, rather than end a healthy
// stream and its requests because it could not hear the answer in time.
const (
	heartbeatInterval = time.Second
	heartbeatTimeout  = 2 * time.Second
	heartbeatLimit    = 15 * time.Second
)

// probe checks that the connection answers: any answer will do, even an
// error status from the service; only silence (or a broken transport)
// fails.
func probe(ctx context.Context, cn *conn) error {
	ctx, cancel := ontime.WithTimeout(ctx, heartbeatTimeout, heartbeatLimit)
	defer cancel()
	_, err := healthpb.NewHealthClient(cn.cc).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil && errors.Is(context.Cause(ctx), ontime.ErrTimeout) {
		return err // gRPC reports it as cancelled
	}
	switch grpcstatus.Code(err) {
	case codes.DeadlineExceeded, codes.Unavailable:
		return err
	}
	return nil
}
