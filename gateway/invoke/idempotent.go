package invoke

import (
	"context"
	"encoding/json"
	"log/slog"
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
	"github.com/streamgate/streamgate/status"
)

// Reasons of the Idempotency-Key answers (details.reason), and the limits
// of the gateway's use of its store.
const (
	reasonKeyRequired     = "idempotency_key_required"
	reasonKeyInvalid      = "invalid_idempotency_key"
	reasonKeyInUse        = "idempotency_key_in_use"
	reasonKeyReused       = "idempotency_key_reused"
	ReasonStoreDown       = "idempotency_store_unavailable"
	detailRetryAfterMS    = "retry_after_ms" // a 503's hint, rounded up into Retry-After
	inUseRetryAfter       = 1                // seconds: the run may end any moment
	leaseMargin           = 10 * time.Second // beyond the route's own time, for a gateway that is slow to answer
	idempotencyStoreLimit = 5 * time.Second  // bounds one store call
)

// onceStage is the Idempotency-Key stage.
type onceStage struct {
	logger *slog.Logger
}

// run runs a prepared invocation under the route's Idempotency-Key
// rules: without a key (where it is optional) or on routes where it is
// off, as next; with one, at most once per scope (principal, version,
// route, key), replaying a definite answer to retries and refusing
// concurrent ones.
func (s onceStage) run(ctx context.Context, t *Table, in *Invocation, next func(context.Context, *Table, *Invocation) Answer) Answer {
	mode := in.route.Idempotency
	if mode == config.IdempotencyOff || mode == "" {
		return next(ctx, t, in) // a key is forwarded as it is
	}
	if in.IdempotencyKey == "" {
		if mode == config.IdempotencyRequired {
			return Failed(socket.Errorf(socket.CodeInvalidArgument, "this route requires an Idempotency-Key header").
				WithDetails(map[string]any{socket.DetailReason: reasonKeyRequired}))
		}
		return next(ctx, t, in)
	}
	key, kerr := idempotency.ParseKey(in.IdempotencyKey)
	if kerr != nil {
		return Failed(socket.Errorf(socket.CodeInvalidArgument, "Idempotency-Key must be 1 to %d printable ASCII characters", idempotency.MaxKeyLength).
			WithDetails(map[string]any{socket.DetailReason: reasonKeyInvalid}))
	}
	scope := idempotency.Scope{
		Principal: coalesce.Scope(in.principal.Subject, in.principal.Roles),
		Version:   in.version.Name,
		Route:     in.route.Method + " " + RouteTemplate(in.version.Name, in.resource.Name, in.route),
		Key:       key,
	}
	id := scope.ID()
	fp := idempotency.Fingerprint(in.Method, in.Path.String(), in.Query.Encode(), coalesce.CanonicalJSON(in.Body))

	store := t.idem
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), idempotencyStoreLimit)
	begun, err := store.Begin(sctx, id, fp, leaseFor(in.route))
	cancel()
	if err != nil {
		s.logger.Error("gateway: idempotency store failed; request refused", "err", err)
		return Failed(socket.Errorf(socket.CodeUnavailable, "the idempotency store is unavailable; retry later").
			WithDetails(map[string]any{socket.DetailReason: ReasonStoreDown}))
	}
	switch begun.Outcome {
	case idempotency.Done:
		in.Record.Idempotency(observe.IdempotencyOutcome{Replayed: true})
		return replay(begun.Answer)
	case idempotency.InUse:
		in.Record.Idempotency(observe.IdempotencyOutcome{Conflict: reasonKeyInUse})
		a := Failed(socket.Errorf(socket.CodeConflict, "a request with this Idempotency-Key is in progress; retry later").
			WithDetails(map[string]any{socket.DetailReason: reasonKeyInUse}))
		a.retryAfter = inUseRetryAfter
		return a
	case idempotency.Mismatch:
		in.Record.Idempotency(observe.IdempotencyOutcome{Conflict: reasonKeyReused})
		return Answer{Status: statusKeyReused, Err: socket.Errorf(socket.CodeInvalidArgument, "this Idempotency-Key was used for another request").
			WithDetails(map[string]any{socket.DetailReason: reasonKeyReused})}
	}

	settled := false
	defer func() {
		if !settled { // a panic: let a retry run
			s.settle(ctx, store, id, begun.Token, nil, t.cfg.HTTP.Idempotency.TTL)
		}
	}()
	in.scopeID = id
	a := next(ctx, t, in)
	settled = true
	if definite(a) {
		s.settle(ctx, store, id, begun.Token, &a, t.cfg.HTTP.Idempotency.TTL)
	} else {
		s.settle(ctx, store, id, begun.Token, nil, 0)
	}
	return a
}

// settle completes a lease with a definite answer, or releases it (a nil
// answer). A failure is logged: the lease then expires by itself.
func (s onceStage) settle(ctx context.Context, store idempotency.Store, id, token string, a *Answer, ttl time.Duration) {
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), idempotencyStoreLimit)
	defer cancel()
	var err error
	if a == nil {
		err = store.Release(sctx, id, token)
	} else {
		err = store.Complete(sctx, id, token, idempotency.Answer{Status: a.Status, Location: a.Location, Body: envelope.Encode(a.Result, a.Err)}, ttl)
	}
	if err != nil {
		s.logger.Error("gateway: idempotency store failed; the key stays leased until its lease expires", "err", err, "complete", a != nil)
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
func definite(a Answer) bool {
	switch a.Status {
	case http.StatusRequestTimeout, http.StatusTooEarly, http.StatusTooManyRequests, 499:
		return false
	case http.StatusConflict:
		if a.Err != nil {
			reason, _ := a.Err.Details[socket.DetailReason].(string)
			if reason == reasonKeyInUse || strings.HasSuffix(reason, "_in_progress") {
				return false
			}
		}
	}
	return a.Status >= 200 && a.Status < 500
}

// replay turns a stored answer back into an answer.
func replay(s *idempotency.Answer) Answer {
	a := Answer{Status: s.Status, Location: s.Location, Envelope: s.Body, Replayed: true}
	var env struct {
		Result json.RawMessage `json:"result"`
		Error  *status.Error   `json:"error"`
	}
	if json.Unmarshal(s.Body, &env) != nil {
		return Failed(socket.Errorf(socket.CodeInternal, "a stored answer could not be read"))
	}
	a.Result, a.Err = env.Result, env.Error
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

// RetryAfter is the answer's Retry-After, in seconds (0: none): its own,
// or for 503 the error's details.retry_after_ms rounded up, else 1.
func (a Answer) RetryAfter() int {
	if a.retryAfter > 0 || a.Status != http.StatusServiceUnavailable {
		return a.retryAfter
	}
	return retryAfterOf(a.Err)
}

// retryAfterOf reads details.retry_after_ms of a 503's error, in whole
// seconds rounded up, at least 1.
func retryAfterOf(e *status.Error) int {
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
func (p Path) String() string {
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
