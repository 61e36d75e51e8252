package socket

import (
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"
)

// Keepalive defaults. A client pings a connection that has been silent for
// keepaliveTime (gRPC's minimum) and drops it when the ping or any data it
// sent goes unacknowledged for keepaliveTimeout (gRPC sets TCP_USER_TIMEOUT
// to it), so a black-holed connection with requests on it fails within
// keepaliveTimeout. Requests on a black-holed stream fail with UNAVAILABLE
// and the instance reconnects; an idle one is found by the heartbeat (see
// heartbeatInterval). Servers accept pings as often as keepaliveMinTime.
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
