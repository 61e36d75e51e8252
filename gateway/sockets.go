package gateway

import (
	"net/http"
	"strings"

	"github.com/streamgate/streamgate/gateway/rest"
	"github.com/streamgate/streamgate/gateway/wsedge"
	"github.com/streamgate/streamgate/services/socket"
)

// SocketLimits bound each connection of the WebSocket endpoint
// GET /{version}/socket (see wsedge.Limits).
type SocketLimits = wsedge.Limits

// WithSocketLimits sets the WebSocket endpoint's per-connection limits.
// Default: SocketLimits{} (every default).
func WithSocketLimits(l SocketLimits) Option { return func(o *options) { o.socket = l } }

// socketVersion reports whether r asks for the WebSocket endpoint,
// GET /{version}/socket, of a version in force (one without a resource
// named socket), and which version.
func (g *Gateway) socketVersion(r *http.Request) (string, bool) {
	if r.Method != http.MethodGet {
		return "", false
	}
	rest, ok := strings.CutSuffix(r.URL.Path, "/"+wsedge.Resource)
	if !ok || len(rest) < 2 || rest[0] != '/' || strings.IndexByte(rest[1:], '/') >= 0 {
		return "", false
	}
	t := g.core.Acquire()
	v := t.Config().Versions[rest[1:]]
	t.Release()
	if v == nil || v.Resources[wsedge.Resource] != nil {
		return "", false
	}
	return v.Name, true
}

// serveSocket hands an upgrade to the WebSocket edge, unless the gateway
// is draining or the request is no WebSocket upgrade (answered with an
// envelope, as REST answers).
func (g *Gateway) serveSocket(w http.ResponseWriter, r *http.Request, version string) {
	w.Header().Set(rest.HeaderRequestID, rest.RequestID(r))
	if g.draining.Load() || g.sockets.Closed() {
		rest.WriteError(w, socket.Errorf(socket.CodeUnavailable, "the gateway is draining").
			WithDetails(map[string]any{socket.DetailReason: socket.ReasonDraining}))
		return
	}
	if status, err := wsedge.CheckUpgrade(w.Header(), r, version); err != nil {
		rest.WriteEnvelope(w, status, nil, err)
		return
	}
	g.sockets.Serve(w, r, version)
}
