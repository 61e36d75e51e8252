package gateway

import (
	"context"
	"net/http"
	"net/url"
	"strings"

	"github.com/streamgate/streamgate/gateway/invoke"
	"github.com/streamgate/streamgate/gateway/observe"
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
	w.Header().Set(headerRequestID, requestID(r))
	if g.draining.Load() || g.sockets.Closed() {
		writeError(w, socket.Errorf(socket.CodeUnavailable, "the gateway is draining").
			WithDetails(map[string]any{socket.DetailReason: socket.ReasonDraining}))
		return
	}
	if status, err := wsedge.CheckUpgrade(w.Header(), r, version); err != nil {
		writeEnvelope(w, status, nil, err)
		return
	}
	g.sockets.Serve(w, r, version)
}

// wsCore is the invocation core as the WebSocket edge sees it
// (wsedge.Core).
type wsCore struct{ g *Gateway }

// Call runs a request frame as REST runs a request, observed as a request
// of its own.
func (c wsCore) Call(ctx context.Context, req wsedge.Request) wsedge.Answer {
	g := c.g
	t := g.core.Acquire()
	defer t.Release()
	in, status, ferr := frameInvocation(t, req)
	r := g.obs.NewRecord(observe.ProtocolWebSocket, in.Method)
	r.Path = req.Path
	if in.Path.Version() != "" {
		r.Path = in.Path.String()
	}
	ctx = r.Begin(ctx)
	defer r.End(ctx)
	in.Invoked(ctx, r)
	if ferr != nil {
		a := invoke.Answer{Status: status, Err: ferr}
		if status == 0 {
			a = invoke.Failed(ferr)
		}
		r.Answer(ctx, a.Status, a.Err, a.XCache, a.Replayed)
		return edgeAnswer(a)
	}
	return edgeAnswer(g.core.Invoke(ctx, t, in))
}

// edgeAnswer is an answer as a socket shows it.
func edgeAnswer(a invoke.Answer) wsedge.Answer {
	return wsedge.Answer{Status: a.Status, Result: a.Result, Err: a.Err, Replayed: a.Replayed, Location: a.Location, RetryAfter: a.RetryAfter()}
}

// Admit authenticates a socket's credentials with the table in force.
func (c wsCore) Admit(creds wsedge.Credentials) (wsedge.Admission, *socket.Error) {
	t := c.g.core.Acquire()
	defer t.Release()
	_, present, err := t.Authenticate(creds.Authorization, creds.APIKey)
	cfg := t.Config()
	return wsedge.Admission{Present: present, Origins: cfg.HTTP.CORS.AllowedOrigins, MaxBodyBytes: cfg.HTTP.MaxBodyBytes}, err
}

// Watch watches a topic for the caller with the credentials.
func (c wsCore) Watch(ctx context.Context, version, topic string, creds wsedge.Credentials, deliver func(wsedge.Event)) (func(), uint64, wsedge.Answer) {
	t := c.g.core.Acquire()
	p, present, err := t.Authenticate(creds.Authorization, creds.APIKey)
	t.Release()
	if err != nil {
		return nil, 0, edgeAnswer(invoke.Failed(err))
	}
	if !present {
		p = socket.Principal{Subject: socket.AnonymousSubject}
	}
	stop, seq, werr := c.g.core.Watch(ctx, version, topic, p, func(ev invoke.Event) {
		deliver(wsedge.Event{Topic: ev.Topic, Seq: ev.Seq, Data: ev.Data, Gap: ev.Gap})
	})
	if werr != nil {
		return nil, 0, edgeAnswer(invoke.Failed(socket.AsError(werr)))
	}
	return stop, seq, wsedge.Answer{}
}

// Observe tells the observers a connection's event.
func (c wsCore) Observe(e wsedge.ConnEvent) { c.g.obs.Connection(e) }

// frameInvocation turns a request frame into the invocation REST would
// make: the path form's path is relative to the socket's version; the
// action form's action is sent by the version's route that sends it (the
// one `streamgate call -gateway` finds).
func frameInvocation(t *invoke.Table, req wsedge.Request) (*invoke.Invocation, int, *socket.Error) {
	in := &invoke.Invocation{
		Method:         req.Method,
		Authorization:  req.Credentials.Authorization,
		APIKey:         req.Credentials.APIKey,
		RequestID:      invoke.NewRequestID(),
		IdempotencyKey: req.IdempotencyKey,
		Timeout:        req.Timeout,
		Body:           req.Body,
	}
	in.SanitizeHints()
	if req.Action != "" {
		method, p, err := t.ActionPath(req.Version, req.Action, req.ResourceID)
		if err == nil {
			in.Method, in.Path = method, p
		}
		return in, 0, err
	}
	u, err := url.Parse(req.Path)
	if err != nil || u.Scheme != "" || u.Host != "" {
		return in, 0, socket.Errorf(socket.CodeInvalidArgument, "path %q is not a path relative to the version, such as /users/1", req.Path)
	}
	p, status, perr := invoke.ParsePath(in.Method, "/"+url.PathEscape(req.Version)+u.EscapedPath())
	if perr != nil {
		return in, status, perr
	}
	in.Path, in.Query = p, u.Query()
	if in.Method == http.MethodHead {
		in.Method = http.MethodGet
	}
	return in, 0, nil
}
