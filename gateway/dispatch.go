package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/streamgate/streamgate/gateway/auth"
	"github.com/streamgate/streamgate/services/socket"
)

// invocation is one call of a route, from the REST edge or from
// GatewayService.Invoke.
type invocation struct {
	path   restPath
	method string
	body   []byte // validated JSON, or empty
	query  url.Values

	authorization, apiKey string

	requestID, idempotencyKey string
	traceParent, traceState   string
	timeout                   time.Duration // what the client asked for; 0: the route's
}

// answer is an invocation's outcome, ready for either edge.
type answer struct {
	status   int
	result   json.RawMessage
	err      *socket.Error
	allow    []string // for 405
	location string   // for 201
}

func failed(err *socket.Error) answer {
	return answer{status: err.Code.HTTPStatus(), err: err}
}

// anonymous is the principal forwarded for callers without credentials,
// so a service never mistakes them for the gateway's own key.
var anonymous = socket.Principal{Subject: "anonymous"}

// invoke resolves, authorizes and runs a route on table t.
func (g *Gateway) invoke(ctx context.Context, t *table, in *invocation) answer {
	rr, rerr := resolve(t.cfg, in.path, in.method)
	if rerr != nil {
		if rerr.allow != nil {
			return answer{status: statusMethodNotAllowed, err: rerr.err, allow: rerr.allow}
		}
		return failed(rerr.err)
	}
	route := rr.route
	principal, present, err := t.auth.Authenticate(in.authorization, in.apiKey)
	if err != nil {
		return failed(socket.AsError(err))
	}
	if err := auth.Allow(route.Access, principal, present); err != nil {
		return failed(socket.AsError(err))
	}
	if !present {
		principal = anonymous
	}
	body := in.body
	if route.List && len(body) == 0 {
		qb, qerr := queryBody(in.query)
		if qerr != nil {
			return failed(qerr)
		}
		body = qb
	}
	timeout := route.Timeout
	if in.timeout > 0 && in.timeout < timeout {
		timeout = in.timeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	ctx = socket.ContextWithMeta(ctx, socket.Meta{
		APIVersion:     rr.version.Name,
		Principal:      principal,
		RequestID:      in.requestID,
		IdempotencyKey: in.idempotencyKey,
		TraceParent:    in.traceParent,
		TraceState:     in.traceState,
	})

	var result json.RawMessage
	var rerrc *socket.Error
	if len(route.Pipeline) > 0 {
		sc := &scope{version: rr.version.Name, resource: rr.resource.Name, id: rr.id, body: decodeJSON(body), caller: principal}
		result, rerrc = t.runPipeline(ctx, route, sc)
	} else {
		client := t.clients[route.Service]
		res, err := client.Request(ctx, route.Action, rr.id, body)
		result, rerrc = res, socket.AsError(err)
	}
	if rerrc != nil {
		return failed(rerrc)
	}
	a := answer{status: http.StatusOK, result: result}
	if route.Create {
		a.status = http.StatusCreated
		a.location = locationOf(rr.version.Name, rr.resource.Name, result)
	}
	return a
}

// serveREST is the dispatcher behind every /{version}/… pattern.
func (g *Gateway) serveREST(w http.ResponseWriter, r *http.Request, _ map[string]string) {
	t := g.acquire()
	defer t.release()
	p, perr := parsePath(r.URL.EscapedPath())
	if perr != nil {
		writeError(w, perr)
		return
	}
	if p.id == "" && p.resource == openAPIFile {
		g.serveOpenAPI(w, r, t, p.version)
		return
	}
	in := &invocation{
		path:           p,
		method:         r.Method,
		query:          r.URL.Query(),
		authorization:  r.Header.Get("Authorization"),
		apiKey:         r.Header.Get(headerAPIKey),
		requestID:      w.Header().Get(headerRequestID),
		idempotencyKey: r.Header.Get(headerIdempotencyKey),
		traceParent:    r.Header.Get(headerTraceParent),
		traceState:     r.Header.Get(headerTraceState),
	}
	var terr *socket.Error
	if in.timeout, terr = clientTimeout(r.Header); terr != nil {
		writeError(w, terr)
		return
	}
	body, status, berr := readBody(r, t.cfg.HTTP.MaxBodyBytes, t.cfg.HTTP.MaxJSONDepth)
	if berr != nil {
		writeEnvelope(w, status, nil, berr)
		return
	}
	in.body = body
	a := g.invoke(r.Context(), t, in)
	if a.allow != nil {
		w.Header().Set("Allow", strings.Join(a.allow, ", "))
	}
	if a.location != "" {
		w.Header().Set("Location", a.location)
	}
	if a.err != nil && a.err.Code == socket.CodeCanceled && r.Context().Err() != nil {
		return // the client is gone
	}
	writeEnvelope(w, a.status, a.result, a.err)
}

// readBody reads and checks a request body: its size is checked before
// reading (413), its type must be JSON (415), its content well-formed and
// not too deep (400).
func readBody(r *http.Request, maxBytes int64, maxDepth int) ([]byte, int, *socket.Error) {
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		return nil, 0, nil
	}
	tooLarge := socket.Errorf(socket.CodeInvalidArgument, "request body is larger than %d bytes", maxBytes).
		WithDetails(map[string]any{socket.DetailReason: "body_too_large", "limit": maxBytes})
	if r.ContentLength > maxBytes {
		return nil, statusTooLarge, tooLarge
	}
	if ct := r.Header.Get("Content-Type"); !isJSONContentType(ct) {
		return nil, statusMediaType, socket.Errorf(socket.CodeInvalidArgument, "request body must be application/json, not %q", ct).
			WithDetails(map[string]any{socket.DetailReason: "unsupported_media_type"})
	}
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, maxBytes))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return nil, statusTooLarge, tooLarge
	case err != nil:
		return nil, http.StatusBadRequest, socket.Errorf(socket.CodeInvalidArgument, "reading the request body failed")
	}
	if len(strings.TrimSpace(string(body))) == 0 {
		return nil, 0, nil
	}
	if jerr := checkJSON(body, maxDepth); jerr != nil {
		return nil, http.StatusBadRequest, jerr
	}
	return body, 0, nil
}
