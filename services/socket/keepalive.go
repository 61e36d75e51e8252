package socket

import (
	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"

	"github.com/streamgate/streamgate/services/socket/internal/wire"
)

// serverKeepalive lets callers ping as often as the request library's
// defaults do (wire.KeepaliveTime), even with no stream open, instead of
// being sent away for pinging too often.
func serverKeepalive() grpc.ServerOption {
	return grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: wire.KeepaliveMinTime, PermitWithoutStream: true})
}
