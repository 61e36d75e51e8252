package invoke

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"maps"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/streamgate/streamgate/gateway/config"
	"github.com/streamgate/streamgate/gateway/observe"
	"github.com/streamgate/streamgate/services/socket"
	"github.com/streamgate/streamgate/services/socket/caller"
	"github.com/streamgate/streamgate/status"
)

// pipeline is the pipeline stage: it sends a route's steps to the
// clients of the table the request runs on.
type pipeline struct {
	clients map[string]*caller.Client // by service name
	logger  *slog.Logger
}

// scope is what a pipeline's references see: the path, the request body,
// the caller and the results of earlier steps.
type scope struct {
	version, resource, id string
	body                  any
	caller                socket.Principal
	idempotencyKey        string          // the client's; each step gets its own derived from it
	scopeID               string          // the key's scope id, when the gateway applies the key
	obs                   *observe.Record // the request's record, for its observers

	mu    sync.Mutex // guards steps (parallel steps store results)
	steps map[string]*stepResult
}

// stepResult is an earlier step's result, decoded only when a reference
// first names it: most results (the checks', the last step's) are never
// referenced, and decoding every result was 7% of the CPU of a v3
// purchase (BenchmarkPurchase).
type stepResult struct {
	raw     json.RawMessage
	decoded bool // v holds raw decoded; guarded by scope.mu
	v       any
}

// Root answers a template's references (config.Scope): the path's id,
// the request body, the caller, or an earlier step's result.
func (s *scope) Root(name string) any {
	switch name {
	case "path":
		return map[string]any{"id": s.id}
	case "body":
		return s.body
	case "caller":
		roles := make([]any, len(s.caller.Roles))
		for i, r := range s.caller.Roles {
			roles[i] = r
		}
		return map[string]any{"subject": s.caller.Subject, "roles": roles}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.steps[name]
	if r == nil {
		return nil
	}
	if !r.decoded {
		r.v, r.decoded, r.raw = decodeJSON(r.raw), true, nil
	}
	return r.v
}

var _ config.Scope = (*scope)(nil)

// decodeJSON decodes a body or result keeping numbers exact.
func decodeJSON(b []byte) any {
	if len(bytes.TrimSpace(b)) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if dec.Decode(&v) != nil {
		return nil
	}
	return v
}

// run runs a route's steps in order (a parallel group's steps at
// once). The first failing step stops the pipeline with its error, after
// the undo actions of the steps that had succeeded ran, latest first; a
// step whose service answered with a replay (the stored outcome of an
// earlier request with the same derived key) is not undone: this run did
// not create it. The
// answer is the result of the route's result step, or the last step's.
func (pl pipeline) run(ctx context.Context, route *config.Route, sc *scope) (json.RawMessage, *status.Error) {
	sc.steps = map[string]*stepResult{}
	results := map[string]json.RawMessage{}
	var done []*config.Step // steps that succeeded, in order
	var mu sync.Mutex       // guards results and done
	last := ""
	for _, step := range route.Pipeline {
		group := []*config.Step{step}
		if len(step.Parallel) > 0 {
			group = step.Parallel
		}
		g, gctx := errgroup.WithContext(ctx)
		for _, st := range group {
			g.Go(func() error {
				reply, err := pl.runStep(gctx, st, nil, sc)
				if err != nil {
					return err
				}
				mu.Lock()
				results[st.Name] = reply.Result
				if !reply.Replayed {
					// A replayed answer is an earlier run's work (the
					// same key): this run must never undo it.
					done = append(done, st)
				}
				mu.Unlock()
				return nil
			})
			last = st.Name
		}
		if err := g.Wait(); err != nil {
			e := status.AsError(err)
			if outcomeUnknown(e) {
				// The failing step may have run (a timeout, a lost answer):
				// undoing what came before could undo a purchase that went
				// through. Leave it for reconciliation.
				if hasUndo(done) {
					pl.logger.Error("gateway: pipeline failed with an unknown outcome; compensation skipped", "err", e)
				}
				return nil, e
			}
			if undone := pl.compensate(ctx, done, sc); len(undone) > 0 {
				details := map[string]any{}
				maps.Copy(details, e.Details)
				details["undone"] = undone
				e = e.WithDetails(details)
			}
			return nil, e
		}
	}
	name := route.Result
	if name == "" {
		name = last
	}
	return results[name], nil
}

// compensate runs the undo actions of succeeded steps, latest first, as
// the gateway's own identity, each with a few seconds of its own even if
// the request's context has ended.
// It returns the names of the steps it undid; failures are logged only,
// the step's own error is what the caller gets.
func (pl pipeline) compensate(ctx context.Context, done []*config.Step, sc *scope) []string {
	var undone []string
	for i := len(done) - 1; i >= 0; i-- {
		u := done[i].Undo
		if u == nil {
			continue
		}
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), undoTimeout)
		// Compensation runs as the gateway itself (its service key), not as
		// the caller: it must not fail for lack of the caller's rights.
		m := socket.MetaFrom(uctx)
		m.Principal = socket.Principal{}
		_, err := pl.runStep(caller.ContextWithMeta(uctx, m), u, done[i], sc)
		cancel()
		if err != nil {
			pl.logger.Error("gateway: pipeline compensation failed", "step", done[i].Name, "undo", u.Action, "err", err)
			continue
		}
		undone = append(undone, done[i].Name)
	}
	return undone
}

// outcomeUnknown reports whether a failed step may still have run: the
// request went out but its answer was lost or not waited for. (An error
// the service answered with, even DEADLINE_EXCEEDED, is its verdict.)
func outcomeUnknown(e *status.Error) bool {
	return e.Details[socket.DetailReason] == socket.ReasonOutcomeUnknown
}

// hasUndo reports whether any of the steps can be undone.
func hasUndo(steps []*config.Step) bool {
	for _, s := range steps {
		if s.Undo != nil {
			return true
		}
	}
	return false
}

// pipelineHasUndo reports whether a route's pipeline has compensation steps; such
// pipelines run to their own timeout even if the client leaves, so that a
// client cannot choose the moment a step is cut short.
func pipelineHasUndo(route *config.Route) bool {
	for _, st := range route.Pipeline {
		if hasUndo(append([]*config.Step{st}, st.Parallel...)) {
			return true
		}
	}
	return false
}

// undoTimeout bounds one compensation action.
const undoTimeout = 5 * time.Second

// runStep sends one step's action (or, with undoOf set, the undo action
// of the step undoOf) with its id and body filled in, and tells the
// request's observers. A panic is the step's INTERNAL error: in a
// parallel group's goroutine it would escape the request's recover.
func (pl pipeline) runStep(ctx context.Context, st, undoOf *config.Step, sc *scope) (reply caller.Reply, err error) {
	ctx = sc.obs.StepBegan(ctx, st)
	defer func() {
		if p := recover(); p != nil {
			err = socket.Errorf(socket.CodeInternal, "internal error in step %s", st.Name)
		}
		sc.obs.StepEnded(ctx, observe.StepOutcome{Step: st, UndoOf: undoOf, Replayed: reply.Replayed, Err: err})
	}()
	return pl.sendStep(ctx, st, sc)
}

// sendStep is runStep's work.
func (pl pipeline) sendStep(ctx context.Context, st *config.Step, sc *scope) (caller.Reply, error) {
	id, ierr := stepID(st, sc)
	if ierr != nil {
		return caller.Reply{}, ierr
	}
	if sc.idempotencyKey != "" {
		// Each step is its own request: a service must not see one key on
		// two different actions. The key derives from the whole scope
		// (principal, version, route, key), so two callers with the same
		// key never share one, and every retry sends the same.
		m := socket.MetaFrom(ctx)
		m.IdempotencyKey = derivedKey(sc.scopeID, sc.idempotencyKey, st.Name, true)
		ctx = caller.ContextWithMeta(ctx, m)
	}
	var body []byte
	if st.Body != nil {
		b, err := json.Marshal(st.Body.Eval(sc))
		if err != nil {
			return caller.Reply{}, socket.Errorf(socket.CodeInternal, "step %s: its body could not be built", st.Name).WithCause(err)
		}
		body = b
	}
	client := pl.clients[st.Service]
	if client == nil {
		return caller.Reply{}, socket.Errorf(socket.CodeInternal, "step %s: no client for service %q", st.Name, st.Service)
	}
	reply, err := client.Do(ctx, st.Action, id, body)
	if err == nil && len(reply.Result) > 0 && !json.Valid(reply.Result) {
		err = socket.Errorf(socket.CodeInternal, "the service returned invalid JSON")
	}
	if err != nil {
		e := status.AsError(err)
		details := map[string]any{}
		maps.Copy(details, e.Details)
		details["step"] = st.Name
		return caller.Reply{}, e.WithDetails(details)
	}
	sc.mu.Lock()
	sc.steps[st.Name] = &stepResult{raw: reply.Result}
	sc.mu.Unlock()
	return reply, nil
}

// stepID fills in a step's id: a reference that resolves to nothing or to
// an object, or an id that could not be a path segment, is refused rather
// than sent.
func stepID(st *config.Step, sc *scope) (string, *status.Error) {
	if st.ID == nil {
		return "", nil
	}
	id, ok := st.ID.Text(sc)
	if !ok {
		return "", socket.Errorf(socket.CodeInvalidArgument, "step %s: its id %q resolves to no usable value", st.Name, st.ID).
			WithDetails(map[string]any{"step": st.Name})
	}
	if !ValidID(id) {
		return "", socket.Errorf(socket.CodeInvalidArgument, "step %s: id %q is not a valid resource id", st.Name, id).
			WithDetails(map[string]any{"step": st.Name})
	}
	return id, nil
}
