package wsedge

import (
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/streamgate/streamgate/gateway/config"
	"github.com/streamgate/streamgate/gateway/hub"
	"github.com/streamgate/streamgate/gateway/invoke"
	"github.com/streamgate/streamgate/gateway/observe"
	"github.com/streamgate/streamgate/gateway/rest"
	"github.com/streamgate/streamgate/internal/eventlog"
	"github.com/streamgate/streamgate/services/socket"
	"github.com/streamgate/streamgate/status"
)

// NewOnCore makes the endpoint in front of the gateway's invocation core:
// each request frame is an invocation, observed as a request of its own.
func NewOnCore(core *invoke.Core, obs observe.Observers, limits Limits, logger *slog.Logger) *Edge {
	return New(onCore{core: core, obs: obs}, limits, logger)
}

// Version reports whether r asks for the endpoint, GET /{version}/socket,
// of a version of cfg (one without a resource named socket), and which
// version.
func Version(cfg *config.Config, r *http.Request) (string, bool) {
	if r.Method != http.MethodGet {
		return "", false
	}
	path, ok := strings.CutSuffix(r.URL.Path, "/"+Resource)
	if !ok || len(path) < 2 || path[0] != '/' || strings.IndexByte(path[1:], '/') >= 0 {
		return "", false
	}
	v := cfg.Versions[path[1:]]
	if v == nil || v.Resources[Resource] != nil {
		return "", false
	}
	return v.Name, true
}

// ServeUpgrade serves an upgrade to the endpoint of a version, unless the
// gateway is draining or the request is no WebSocket upgrade (answered
// with an envelope, as REST answers).
func (e *Edge) ServeUpgrade(w http.ResponseWriter, r *http.Request, version string, draining bool) {
	w.Header().Set(rest.HeaderRequestID, rest.RequestID(r))
	if draining || e.Closed() {
		rest.WriteError(w, socket.Errorf(socket.CodeUnavailable, "the gateway is draining").
			WithDetails(map[string]any{socket.DetailReason: socket.ReasonDraining}))
		return
	}
	if status, err := CheckUpgrade(w.Header(), r, version); err != nil {
		rest.WriteEnvelope(w, status, nil, err)
		return
	}
	e.Serve(w, r, version)
}

// onCore is the invocation core as the WebSocket edge sees it (Core).
type onCore struct {
	core *invoke.Core
	obs  observe.Observers
}

var _ Core = onCore{}

// Call runs a request frame as REST runs a request, observed as a request
// of its own.
func (c onCore) Call(ctx context.Context, req Request) Answer {
	t := c.core.Acquire()
	defer t.Release()
	in, status, ferr := frameInvocation(t, req)
	r := c.obs.NewRecord(observe.ProtocolWebSocket, in.Method)
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
	return edgeAnswer(c.core.Invoke(ctx, t, in))
}

// edgeAnswer is an answer as a socket shows it.
func edgeAnswer(a invoke.Answer) Answer {
	return Answer{Status: a.Status, Result: a.Result, Err: a.Err, Replayed: a.Replayed, Location: a.Location, RetryAfter: a.RetryAfter()}
}

// Admit authenticates a socket's credentials with the table in force.
func (c onCore) Admit(creds Credentials) (Admission, *status.Error) {
	t := c.core.Acquire()
	defer t.Release()
	_, present, err := t.Authenticate(creds.Authorization, creds.APIKey)
	cfg := t.Config()
	return Admission{Present: present, Origins: cfg.HTTP.CORS.AllowedOrigins, MaxBodyBytes: cfg.HTTP.MaxBodyBytes}, err
}

// Watch watches a topic for the caller with the credentials.
func (c onCore) Watch(ctx context.Context, version, topic string, from eventlog.Position, creds Credentials, deliver func(Event)) (func(), eventlog.Start, Answer) {
	t := c.core.Acquire()
	p, present, err := t.Authenticate(creds.Authorization, creds.APIKey)
	keep := noConflate(t.Config(), version, topic)
	t.Release()
	if err != nil {
		return nil, eventlog.Start{}, edgeAnswer(invoke.Failed(err))
	}
	if !present {
		p = socket.Principal{Subject: socket.AnonymousSubject}
	}
	stop, start, werr := c.core.Watch(ctx, version, topic, from, p, func(ev hub.Event) {
		deliver(Event{Topic: ev.Topic, Seq: ev.Seq, Epoch: ev.Epoch, Data: ev.Data, Gap: ev.Gap, NoConflate: keep, Skipped: ev.Skipped})
	})
	if werr != nil {
		return nil, eventlog.Start{}, edgeAnswer(invoke.Failed(status.AsError(werr)))
	}
	return stop, start, Answer{}
}

// noConflate reports whether the resource of topic says conflate: false
// in the version (as the watch starts; a reload applies to later ones).
func noConflate(cfg *config.Config, version, topic string) bool {
	resource, _, _ := strings.Cut(topic, "/")
	if v := cfg.Versions[version]; v != nil {
		if r := v.Resources[resource]; r != nil {
			return r.NoConflate
		}
	}
	return false
}

// Observe tells the observers a connection's event.
func (c onCore) Observe(e observe.ConnEvent) { c.obs.Connection(e) }

// frameInvocation turns a request frame into the invocation REST would
// make: the path form's path is relative to the socket's version; the
// action form's action is sent by the version's route that sends it (the
// one `streamgate call -gateway` finds).
func frameInvocation(t *invoke.Table, req Request) (*invoke.Invocation, int, *status.Error) {
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
