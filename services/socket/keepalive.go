package socket

import (
	"context"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"
)

// Keepalive defaults. A client pings a connection that has been silent for
// keepaliveTime (gRPC's minimum) and drops it when the ping or any data it
// sent goes unacknowledged for keepaliveTimeout (gRPC sets TCP_USER_TIMEOUT
// to it), so a black-holed connection with requests on it fails within
// keepaliveTimeout. A silent connection is found sooner by the heartbeat
// below. Servers accept pings as often as keepaliveMinTime.
const (
	keepaliveTime    = 10 * time.Second
	keepaliveTimeout = 3 * time.Second
	keepaliveMinTime = 5 * time.Second
)

// serverKeepalive lets callers ping as often as the client defaults do,
// even with no stream open, instead of being sent away for pinging too
// often.
func serverKeepalive() grpc.ServerOption {
	return grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: keepaliveMinTime, PermitWithoutStream: true})
}

// The heartbeat finds a black-holed connection that gRPC's keepalive
// (10s at the least) would find late: a stream silent for
// heartbeatInterval is probed with a health check that must answer within
// heartbeatTimeout, or the stream ends (its requests fail with UNAVAILABLE)
// and the instance reconnects. Detection takes at most
// heartbeatInterval+heartbeatTimeout (3s) after the connection went dark.
const (
	heartbeatInterval = time.Second
	heartbeatTimeout  = 2 * time.Second
)

// probe checks that the connection answers: any answer will do, even an
// error status from the service; only silence (or a broken transport)
// fails.
func probe(ctx context.Context, cn *conn) error {
	ctx, cancel := context.WithTimeout(ctx, heartbeatTimeout)
	defer cancel()
	_, err := healthpb.NewHealthClient(cn.cc).Check(ctx, &healthpb.HealthCheckRequest{})
	switch status.Code(err) {
	case codes.DeadlineExceeded, codes.Unavailable:
		return err
	}
	return nil
}
