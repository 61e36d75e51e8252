package gateway

import (
	"context"
	"net/http"
	"strings"

	"github.com/streamgate/streamgate/gateway/invoke"
	"github.com/streamgate/streamgate/gateway/observe"
	"github.com/streamgate/streamgate/services/socket"
)

// serveREST serves the REST routes: every path but GatewayService's own.
// ctx is the request's, with its span; req is its record.
func (g *Gateway) serveREST(ctx context.Context, w http.ResponseWriter, r *http.Request, req *observe.Record) {
	p, status, perr := invoke.ParsePath(r.Method, r.URL.EscapedPath())
	if perr != nil {
		if status == 0 {
			status = invoke.HTTPStatus(perr.Code)
		}
		writeEnvelope(w, status, nil, perr)
		return
	}
	in := restInvocation(r, p, w.Header().Get(headerRequestID))
	in.Invoked(ctx, req)
	t := g.core.Acquire()
	defer t.Release()
	if p.IsOpenAPI() {
		g.serveOpenAPI(w, r, t, in)
		return
	}
	var terr *socket.Error
	if in.Timeout, terr = clientTimeout(r.Header); terr != nil {
		writeError(w, terr)
		return
	}
	a := g.core.Invoke(ctx, t, in)
	if a.Err != nil && a.Err.Code == socket.CodeCanceled && r.Context().Err() != nil {
		return // the client is gone
	}
	writeAnswer(w, a, r.Header.Get("If-None-Match"))
}

// restInvocation is the invocation a REST request makes: its path,
// method and query, the credentials, ids and hints of its headers, and
// its body, read once the caller is checked.
func restInvocation(r *http.Request, p invoke.Path, requestID string) *invoke.Invocation {
	in := &invoke.Invocation{
		Path:           p,
		Method:         r.Method,
		Query:          r.URL.Query(),
		Authorization:  r.Header.Get("Authorization"),
		APIKey:         r.Header.Get(headerAPIKey),
		RequestID:      requestID,
		IdempotencyKey: r.Header.Get(headerIdempotencyKey),
		TraceParent:    r.Header.Get(headerTraceParent),
		TraceState:     r.Header.Get(headerTraceState),
		NoCache:        strings.Contains(strings.ToLower(r.Header.Get("Cache-Control")), "no-cache"),
		ReadBody: func(maxBytes int64, maxDepth int) ([]byte, int, *socket.Error) {
			return readBody(r, maxBytes, maxDepth)
		},
	}
	in.SanitizeHints()
	if in.Method == http.MethodHead {
		in.Method = http.MethodGet
	}
	return in
}
