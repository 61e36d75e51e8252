package rest

import (
	"context"
	"net/http"
	"strings"
	"sync"

	"github.com/streamgate/streamgate/gateway/invoke"
	"github.com/streamgate/streamgate/gateway/observe"
	"github.com/streamgate/streamgate/services/socket"
	sgstatus "github.com/streamgate/streamgate/status"
)

// ServeRoute serves a request as the REST routes do: the path, the
// invocation from the headers, the OpenAPI document of a version, then
// the core and the answer. ctx is the request's, with its span; rec is
// its record.
func (e *Edge) ServeRoute(ctx context.Context, w http.ResponseWriter, r *http.Request, rec *observe.Record) {
	p, status, perr := invoke.ParsePath(r.Method, r.URL.EscapedPath())
	if perr != nil {
		if status == 0 {
			status = invoke.HTTPStatus(perr.Code)
		}
		WriteEnvelope(w, status, nil, perr)
		return
	}
	in := restInvocation(r, p, get(w.Header(), HeaderRequestID))
	defer releaseInvocation(in)
	in.Invoked(ctx, rec)
	t := e.core.Acquire()
	defer t.Release()
	if p.IsOpenAPI() {
		serveOpenAPI(w, r, t, in)
		return
	}
	var terr *sgstatus.Error
	if in.Timeout, terr = clientTimeout(r.Header); terr != nil {
		WriteError(w, terr)
		return
	}
	a := e.core.Invoke(ctx, t, in)
	if a.Err != nil && a.Err.Code == socket.CodeCanceled && r.Context().Err() != nil {
		return // the client is gone
	}
	writeAnswer(w, a, get(r.Header, headerIfNoneMatch))
}

// restInvocation is the invocation a REST request makes: its path,
// method and query, the credentials, ids and hints of its headers, and
// its body, read once the caller is checked. The caller releases it
// (releaseInvocation) once the request is over.
func restInvocation(r *http.Request, p invoke.Path, requestID string) *invoke.Invocation {
	in := invocations.Get().(*invoke.Invocation)
	*in = invoke.Invocation{
		Path:           p,
		Method:         r.Method,
		Authorization:  get(r.Header, headerAuthorization),
		APIKey:         get(r.Header, HeaderAPIKey),
		RequestID:      requestID,
		IdempotencyKey: get(r.Header, HeaderIdempotencyKey),
		TraceParent:    get(r.Header, HeaderTraceParent),
		TraceState:     get(r.Header, HeaderTraceState),
		NoCache:        strings.Contains(strings.ToLower(get(r.Header, headerCacheControl)), "no-cache"),
	}
	if r.URL.RawQuery != "" {
		in.Query = r.URL.Query()
	}
	if !noBody(r) {
		in.ReadBody = func(maxBytes int64, maxDepth int) ([]byte, int, *sgstatus.Error) {
			return readBody(r, maxBytes, maxDepth)
		}
	}
	in.SanitizeHints()
	if in.Method == http.MethodHead {
		in.Method = http.MethodGet
	}
	return in
}

// invocations are the REST requests' invocations, reused once the core
// settled them (invoke.Invocation.Settled): a cache hit's.
var invocations = sync.Pool{New: func() any { return new(invoke.Invocation) }}

// releaseInvocation reuses in for a later request when the core holds
// nothing of it; otherwise it is left to the garbage collector. in must
// not be used after.
func releaseInvocation(in *invoke.Invocation) {
	if in.Settled() {
		*in = invoke.Invocation{}
		invocations.Put(in)
	}
}
