package gateway

import (
	"context"
	"encoding/json"
	"math"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/streamgate/streamgate/gateway/config"
	"github.com/streamgate/streamgate/gateway/idempotency"
	"github.com/streamgate/streamgate/gateway/observe"
	"github.com/streamgate/streamgate/internal/coalesce"
	"github.com/streamgate/streamgate/internal/envelope"
	"github.com/streamgate/streamgate/services/socket"
)

// Reasons of the Idempotency-Key answers (details.reason), and the limits
// of the gateway's use of its store.
const (
	reasonKeyRequired     = "idempotency_key_required"
	reasonKeyInvalid      = "invalid_idempotency_key"
	reasonKeyInUse        = "idempotency_key_in_use"
	reasonKeyReused       = "idempotency_key_reused"
	reasonStoreDown       = "idempotency_store_unavailable"
	detailRetryAfterMS    = "retry_after_ms" // a 503's hint, rounded up into Retry-After
	inUseRetryAfter       = 1                // seconds: the run may end any moment
	leaseMargin           = 10 * time.Second // beyond the route's own time, for a gateway that is slow to answer
	idempotencyStoreLimit = 5 * time.Second  // bounds one store call
)

// invokeOnce runs a prepared invocation under the route's Idempotency-Key
// rules: without a key (where it is optional) or on routes where it is
// off, as invoke; with one, at most once per scope (principal, version,
// route, key), replaying a definite answer to retries and refusing
// concurrent ones.
func (g *Gateway) invokeOnce(ctx context.Context, t *table, p prepared, in *invocation) answer {
	mode := p.route.Idempotency
	if mode == config.IdempotencyOff || mode == "" {
		return g.invoke(ctx, t, p, in) // a key is forwarded as it is
	}
	if in.idempotencyKey == "" {
		if mode == config.IdempotencyRequired {
			return failed(socket.Errorf(socket.CodeInvalidArgument, "this route requires an Idempotency-Key header").
				WithDetails(map[string]any{socket.DetailReason: reasonKeyRequired}))
		}
		return g.invoke(ctx, t, p, in)
	}
	key, kerr := idempotency.ParseKey(in.idempotencyKey)
	if kerr != nil {
		return failed(socket.Errorf(socket.CodeInvalidArgument, "Idempotency-Key must be 1 to %d printable ASCII characters", idempotency.MaxKeyLength).
			WithDetails(map[string]any{socket.DetailReason: reasonKeyInvalid}))
	}
	scope := idempotency.Scope{
		Principal: p.principal.Scope(),
		Version:   p.version.Name,
		Route:     p.route.Method + " " + routePath(p.version.Name, p.resource.Name, p.route),
		Key:       key,
	}
	id := scope.ID()
	fp := idempotency.Fingerprint(in.method, in.path.String(), in.query.Encode(), coalesce.CanonicalJSON(in.body))

	store := t.idem
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), idempotencyStoreLimit)
	begun, err := store.Begin(sctx, id, fp, leaseFor(p.route))
	cancel()
	if err != nil {
		g.opts.logger.Error("gateway: idempotency store failed; request refused", "err", err)
		return failed(socket.Errorf(socket.CodeUnavailable, "the idempotency store is unavailable; retry later").
			WithDetails(map[string]any{socket.DetailReason: reasonStoreDown}))
	}
	switch begun.Outcome {
	case idempotency.Done:
		in.obs.Idempotency(observe.IdempotencyOutcome{Replayed: true})
		return replay(begun.Answer)
	case idempotency.InUse:
		in.obs.Idempotency(observe.IdempotencyOutcome{Conflict: reasonKeyInUse})
		a := failed(socket.Errorf(socket.CodeConflict, "a request with this Idempotency-Key is in progress; retry later").
			WithDetails(map[string]any{socket.DetailReason: reasonKeyInUse}))
		a.retryAfter = inUseRetryAfter
		return a
	case idempotency.Mismatch:
		in.obs.Idempotency(observe.IdempotencyOutcome{Conflict: reasonKeyReused})
		return answer{status: statusKeyReused, err: socket.Errorf(socket.CodeInvalidArgument, "this Idempotency-Key was used for another request").
			WithDetails(map[string]any{socket.DetailReason: reasonKeyReused})}
	}

	settled := false
	defer func() {
		if !settled { // a panic: let a retry run
			g.settle(ctx, store, id, begun.Token, nil, t.cfg.HTTP.Idempotency.TTL)
		}
	}()
	in.scopeID = id
	a := g.invoke(ctx, t, p, in)
	settled = true
	if definite(a) {
		g.settle(ctx, store, id, begun.Token, &a, t.cfg.HTTP.Idempotency.TTL)
	} else {
		g.settle(ctx, store, id, begun.Token, nil, 0)
	}
	return a
}

// settle completes a lease with a definite answer, or releases it (a nil
// answer). A failure is logged: the lease then expires by itself.
func (g *Gateway) settle(ctx context.Context, store idempotency.Store, id, token string, a *answer, ttl time.Duration) {
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), idempotencyStoreLimit)
	defer cancel()
	var err error
	if a == nil {
		err = store.Release(sctx, id, token)
	} else {
		err = store.Complete(sctx, id, token, idempotency.Answer{Status: a.status, Location: a.location, Body: envelope.Encode(a.result, a.err)}, ttl)
	}
	if err != nil {
		g.opts.logger.Error("gateway: idempotency store failed; the key stays leased until its lease expires", "err", err, "complete", a != nil)
	}
}

// definite reports whether an answer is the route's verdict, kept for
// retries: 2xx and 4xx, except those that ask the client to try again
// (408, 425, 429, 499: a cancelled run; a 409 because something is still
// in progress: reason idempotency_key_in_use or *_in_progress, e.g. a
// service still running the step a lost answer left behind). 5xx answers
// (503, 504, a lost answer) leave the outcome unknown: the lease is
// released so a retry runs again, and the services' derived keys make it
// converge.
func definite(a answer) bool {
	switch a.status {
	case http.StatusRequestTimeout, http.StatusTooEarly, http.StatusTooManyRequests, 499:
		return false
	case http.StatusConflict:
		if a.err != nil {
			reason, _ := a.err.Details[socket.DetailReason].(string)
			if reason == reasonKeyInUse || strings.HasSuffix(reason, "_in_progress") {
				return false
			}
		}
	}
	return a.status >= 200 && a.status < 500
}

// replay turns a stored answer back into an answer.
func replay(s *idempotency.Answer) answer {
	a := answer{status: s.Status, location: s.Location, envelope: s.Body, replayed: true}
	var env struct {
		Result json.RawMessage `json:"result"`
		Error  *socket.Error   `json:"error"`
	}
	if json.Unmarshal(s.Body, &env) != nil {
		return failed(socket.Errorf(socket.CodeInternal, "a stored answer could not be read"))
	}
	a.result, a.err = env.Result, env.Error
	return a
}

// leaseFor is how long a lease lasts: the route's timeout, the undo steps
// that may run after it, and a margin. A gateway that dies mid-run frees
// the key when it ends.
func leaseFor(route *config.Route) time.Duration {
	d := route.Timeout + leaseMargin
	for _, st := range route.Pipeline {
		for _, s := range append([]*config.Step{st}, st.Parallel...) {
			if s.Undo != nil {
				d += undoTimeout
			}
		}
	}
	return d
}

// retryAfter is the Retry-After of an answer, in seconds (0: none): its
// own, or for 503 the error's details.retry_after_ms rounded up, else 1.
func retryAfter(a answer) int {
	if a.retryAfter > 0 || a.status != http.StatusServiceUnavailable {
		return a.retryAfter
	}
	return retryAfterOf(a.err)
}

// retryAfterOf reads details.retry_after_ms of a 503's error, in whole
// seconds rounded up, at least 1.
func retryAfterOf(e *socket.Error) int {
	if e == nil {
		return 1
	}
	var ms float64
	switch v := e.Details[detailRetryAfterMS].(type) {
	case float64:
		ms = v
	case int:
		ms = float64(v)
	case int64:
		ms = float64(v)
	case json.Number:
		ms, _ = v.Float64()
	}
	if ms <= 0 || ms > 24*3600*1000 {
		return 1
	}
	return max(int(math.Ceil(ms/1000)), 1)
}

// String is the request path of an invocation, e.g. /v1/orders/7/pay.
func (p restPath) String() string {
	s := "/" + url.PathEscape(p.version) + "/" + url.PathEscape(p.resource)
	for _, seg := range []string{p.id, p.segment} {
		if seg != "" {
			s += "/" + url.PathEscape(seg)
		}
	}
	return s
}

// derivedKey is the idempotency key an action of the invocation sends to
// its service: derived from the scope when the gateway applies the key,
// else the client's key as it is (routes where idempotency is off), with
// the name appended in pipelines.
func derivedKey(scopeID, clientKey, name string, step bool) string {
	switch {
	case scopeID != "":
		return idempotency.DerivedKey(scopeID, name)
	case clientKey != "" && step:
		return clientKey + ":" + name
	}
	return clientKey
}
