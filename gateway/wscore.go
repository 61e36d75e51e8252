package gateway

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/streamgate/streamgate/gateway/config"
	"github.com/streamgate/streamgate/gateway/observe"
	"github.com/streamgate/streamgate/gateway/wsedge"
	"github.com/streamgate/streamgate/internal/actionroute"
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
	v := g.current.Load().cfg.Versions[rest[1:]]
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
	t := g.acquire()
	defer t.release()
	in, status, ferr := frameInvocation(t, req)
	r := g.obs.NewRecord(observe.ProtocolWebSocket, in.method)
	r.Path = req.Path
	if in.path.version != "" {
		r.Path = in.path.String()
	}
	ctx = r.Begin(ctx)
	defer r.End(ctx)
	in.obs = r
	r.Invoked(ctx, in.path.version, in.requestID, in.traceParent)
	if ferr != nil {
		a := answer{status: status, err: ferr}
		if status == 0 {
			a = failed(ferr)
		}
		a.tell(ctx, r)
		return edgeAnswer(a)
	}
	return edgeAnswer(g.call(ctx, t, in))
}

// edgeAnswer is an answer as a socket shows it.
func edgeAnswer(a answer) wsedge.Answer {
	return wsedge.Answer{Status: a.status, Result: a.result, Err: a.err, Replayed: a.replayed, Location: a.location, RetryAfter: retryAfter(a)}
}

// Admit authenticates a socket's credentials with the table in force.
func (c wsCore) Admit(creds wsedge.Credentials) (wsedge.Admission, *socket.Error) {
	t := c.g.acquire()
	defer t.release()
	present, err := authenticate(t, creds.Authorization, creds.APIKey)
	return wsedge.Admission{Present: present, Origins: t.cfg.HTTP.CORS.AllowedOrigins, MaxBodyBytes: t.cfg.HTTP.MaxBodyBytes}, err
}

// Watch watches a topic for the caller with the credentials.
func (c wsCore) Watch(ctx context.Context, version, topic string, creds wsedge.Credentials, deliver func(wsedge.Event)) (func(), uint64, wsedge.Answer) {
	t := c.g.acquire()
	p, present, err := authenticateAs(t, creds.Authorization, creds.APIKey)
	t.release()
	if err != nil {
		return nil, 0, edgeAnswer(failed(err))
	}
	if !present {
		p = anonymous
	}
	stop, seq, werr := c.g.watchTopic(ctx, version, topic, p, func(ev topicEvent) {
		deliver(wsedge.Event{Topic: ev.Topic, Seq: ev.Seq, Data: ev.Data, Gap: ev.Gap})
	})
	if werr != nil {
		return nil, 0, edgeAnswer(failed(socket.AsError(werr)))
	}
	return stop, seq, wsedge.Answer{}
}

// Observe tells the observers a connection's event.
func (c wsCore) Observe(e wsedge.ConnEvent) { c.g.obs.Connection(e) }

// frameInvocation turns a request frame into the invocation REST would
// make: the path form's path is relative to the socket's version; the
// action form's action is sent by the version's route that sends it (the
// one `streamgate call -gateway` finds).
func frameInvocation(t *table, req wsedge.Request) (*invocation, int, *socket.Error) {
	in := &invocation{
		method:         req.Method,
		authorization:  req.Credentials.Authorization,
		apiKey:         req.Credentials.APIKey,
		requestID:      newRequestID(),
		idempotencyKey: req.IdempotencyKey,
		timeout:        req.Timeout,
		body:           req.Body,
	}
	in.sanitizeHints()
	if req.Action != "" {
		return in, 0, actionPath(t, req, in)
	}
	u, err := url.Parse(req.Path)
	if err != nil || u.Scheme != "" || u.Host != "" {
		return in, 0, socket.Errorf(socket.CodeInvalidArgument, "path %q is not a path relative to the version, such as /users/1", req.Path)
	}
	p, status, perr := parsePath(in.method, "/"+url.PathEscape(req.Version)+u.EscapedPath())
	if perr != nil {
		return in, status, perr
	}
	in.path, in.query = p, u.Query()
	if in.method == http.MethodHead {
		in.method = http.MethodGet
	}
	return in, 0, nil
}

// actionPath resolves the action form: the method and path of the
// version's route that sends the action.
func actionPath(t *table, req wsedge.Request, in *invocation) *socket.Error {
	version, id := req.Version, req.ResourceID
	target, ok := actionroute.Find(t.actionRoutes(version), "", req.Action, id != "")
	switch {
	case !ok:
		return socket.Errorf(socket.CodeNotFound, "API version %s has no route for action %s", version, req.Action).
			WithDetails(map[string]any{"version": version, "action": req.Action})
	case target.Item && id == "":
		return socket.Errorf(socket.CodeInvalidArgument, "action %s needs a resource_id", req.Action)
	case !target.Item && id != "":
		return socket.Errorf(socket.CodeInvalidArgument, "action %s takes no resource_id", req.Action)
	case id != "" && !validID(id):
		return socket.Errorf(socket.CodeInvalidArgument, "resource_id %q is not a valid resource id", id)
	}
	in.method = target.Method
	in.path = restPath{version: version, resource: target.Resource, id: id, segment: target.Segment}
	return nil
}

// actionRoutes lists a version's single-action routes in ListRoutes'
// order (by path, then method), for actionroute.Find; cached per table.
func (t *table) actionRoutes(version string) []actionroute.Route {
	if r, ok := t.actions.Load(version); ok {
		return r.([]actionroute.Route)
	}
	var out []actionroute.Route
	if v := t.cfg.Versions[version]; v != nil {
		out = versionActionRoutes(v)
	}
	t.actions.Store(version, out)
	return out
}

func versionActionRoutes(v *config.Version) []actionroute.Route {
	var out []actionroute.Route
	for _, res := range v.Resources {
		for _, rt := range res.Routes {
			if len(rt.Pipeline) == 0 {
				out = append(out, actionroute.Route{Method: rt.Method, Path: routePath(v.Name, res.Name, rt), Service: rt.Service, Action: rt.Action})
			}
		}
	}
	slices.SortFunc(out, func(a, b actionroute.Route) int {
		return strings.Compare(a.Path+" "+a.Method, b.Path+" "+b.Method)
	})
	return out
}
