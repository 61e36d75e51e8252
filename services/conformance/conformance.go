// Package conformance is the fixture service of the socket protocol's
// conformance kit: the actions of docs/protocol.md §12 (ECHO, SLOW, FAIL,
// COUNT, PEEK, STATS, PUBLISH, DRAIN), which `streamgate conformance` runs
// its cases against. Every runtime (Go, Node, Python) serves the same
// fixture; this is the Go one, served by `streamgate service conformance`.
//
//	srv, _ := socket.NewServer(socket.Config{Name: "conformance"}, socket.WithKeys(keys))
//	_ = conformance.New(stop).Register(srv) // stop: what SIGTERM would do (DRAIN calls it)
//	_ = srv.Serve(ctx, lis)
package conformance

import (
	"bytes"
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/streamgate/streamgate/services/socket"
	"github.com/streamgate/streamgate/status"
)

// Name is the fixture service's name.
const Name = "conformance"

// maxSleep bounds SLOW and PEEK, so a typo cannot hold a slot for hours.
const maxSleep = 60_000

// Fixture is the state of one fixture service: handler runs per PEEK key,
// counters, cancelled SLOWs and the outcomes of keyed COUNTs. It is safe
// for concurrent use.
type Fixture struct {
	shutdown func()

	mu        sync.Mutex // guards runs, counters, cancelled, applied
	runs      map[string]int
	counters  map[string]int
	cancelled int
	applied   map[string]appliedCount // COUNT outcomes by idempotency key

	srv *socket.Server // for PUBLISH; set by Register
}

// appliedCount is a keyed COUNT's request and first result.
type appliedCount struct {
	body   []byte
	result countResult
}

// Action is one fixture action as Register registers it: tests that need
// a deliberately broken fixture replace a handler.
type Action struct {
	// Name is the action's name, e.g. ECHO.
	Name string
	// Handler runs it.
	Handler socket.Handler
	// Options declare it (Read for reads; writes have none).
	Options []socket.ActionOption
}

// New returns an empty fixture. shutdown starts the service's graceful
// shutdown as SIGTERM would (DRAIN calls it once its answer is on its
// way); it must not block.
func New(shutdown func()) *Fixture {
	return &Fixture{
		shutdown: shutdown,
		runs:     map[string]int{},
		counters: map[string]int{},
		applied:  map[string]appliedCount{},
	}
}

// Register adds the fixture's actions to srv.
func (f *Fixture) Register(srv *socket.Server) error {
	f.srv = srv
	for _, a := range f.Actions() {
		if err := srv.Handle(a.Name, a.Handler, a.Options...); err != nil {
			return err
		}
	}
	return nil
}

// Actions returns the fixture's actions, sorted by name. PUBLISH needs
// the server: use them on the server given to Register, or call Bind.
func (f *Fixture) Actions() []Action {
	return []Action{
		{"COUNT", socket.Typed(f.count), []socket.ActionOption{socket.Doc("Adds 1 to a named counter; keyed requests run once.")}},
		{"DRAIN", socket.Typed(f.drain), []socket.ActionOption{socket.Doc("Starts the graceful shutdown, as SIGTERM would.")}},
		{"ECHO", socket.HandlerFunc(f.echo), []socket.ActionOption{socket.Read(), socket.Doc("Returns the id, body and meta it was sent.")}},
		{"FAIL", socket.Typed(f.fail), []socket.ActionOption{socket.Read(), socket.Doc("Answers the error it is asked for.")}},
		{"PEEK", socket.Typed(f.peek), []socket.ActionOption{socket.Read(), socket.Doc("Counts its handler runs per id, after waiting ms.")}},
		{"PUBLISH", socket.Typed(f.publish), []socket.ActionOption{socket.Doc("Publishes count events on a topic.")}},
		{"SLOW", socket.Typed(f.slow), []socket.ActionOption{socket.Read(), socket.Doc("Waits ms milliseconds, or until cancelled.")}},
		{"STATS", socket.Typed(f.stats), []socket.ActionOption{socket.Read(), socket.Doc("Returns runs, counters and cancelled.")}},
	}
}

// Bind sets the server PUBLISH publishes on, for Actions registered
// without Register.
func (f *Fixture) Bind(srv *socket.Server) { f.srv = srv }

// echoMeta is the meta ECHO returns.
type echoMeta struct {
	APIVersion     string   `json:"api_version"`
	Subject        string   `json:"subject"`
	Roles          []string `json:"roles"`
	IdempotencyKey string   `json:"idempotency_key"`
	RequestID      string   `json:"request_id"`
}

func (f *Fixture) echo(_ context.Context, req *socket.Request) (json.RawMessage, error) {
	body := json.RawMessage("null")
	if len(bytes.TrimSpace(req.Body)) > 0 {
		var v json.RawMessage
		if err := socket.DecodeBody(req.Body, &v); err != nil {
			return nil, err
		}
		body = v
	}
	m := req.Meta
	roles := m.Principal.Roles
	if roles == nil {
		roles = []string{}
	}
	return json.Marshal(struct {
		ID   string          `json:"id"`
		Body json.RawMessage `json:"body"`
		Meta echoMeta        `json:"meta"`
	}{req.ResourceID, body, echoMeta{m.APIVersion, m.Principal.Subject, roles, m.IdempotencyKey, m.RequestID}})
}

// sleepInput is the body of SLOW and PEEK.
type sleepInput struct {
	Ms int `json:"ms"`
}

// sleep waits ms, or until ctx ends; it reports whether it slept it all.
func sleep(ctx context.Context, ms int) (bool, error) {
	if ms < 0 || ms > maxSleep {
		return false, socket.Errorf(socket.CodeInvalidArgument, "ms is from 0 to %d, not %d", maxSleep, ms)
	}
	t := time.NewTimer(time.Duration(ms) * time.Millisecond)
	defer t.Stop()
	select {
	case <-t.C:
		return true, nil
	case <-ctx.Done():
		return false, ctx.Err()
	}
}

func (f *Fixture) slow(ctx context.Context, _ string, in sleepInput) (map[string]int, error) {
	done, err := sleep(ctx, in.Ms)
	if !done && ctx.Err() != nil {
		f.mu.Lock()
		f.cancelled++
		f.mu.Unlock()
	}
	if err != nil {
		return nil, err
	}
	return map[string]int{"slept_ms": in.Ms}, nil
}

// failInput is FAIL's body.
type failInput struct {
	Code    status.Code `json:"code"`
	Message string      `json:"message"`
	Reason  string      `json:"reason,omitempty"`
}

func (f *Fixture) fail(_ context.Context, _ string, in failInput) (struct{}, error) {
	if !in.Code.Valid() {
		return struct{}{}, socket.Errorf(socket.CodeInvalidArgument, "code %q is not a standard code", in.Code)
	}
	e := socket.Errorf(in.Code, "%s", in.Message)
	if in.Reason != "" {
		e = e.WithDetails(map[string]any{socket.DetailReason: in.Reason})
	}
	return struct{}{}, e
}

// countInput is COUNT's body.
type countInput struct {
	Name string `json:"name"`
}

// countResult is COUNT's result.
type countResult struct {
	Name  string `json:"name"`
	Value int    `json:"value"`
}

func (f *Fixture) count(ctx context.Context, _ string, in countInput) (countResult, error) {
	key := socket.MetaFrom(ctx).IdempotencyKey
	body, _ := json.Marshal(in) // canonical: the same request, however it was spaced
	f.mu.Lock()
	defer f.mu.Unlock()
	if key != "" {
		if a, ok := f.applied[key]; ok {
			if !bytes.Equal(a.body, body) {
				return countResult{}, socket.Errorf(socket.CodeConflict, "idempotency key %q was used for another request", key).
					WithDetails(map[string]any{socket.DetailReason: "idempotency_key_reused"})
			}
			socket.MarkReplayed(ctx)
			return a.result, nil
		}
	}
	f.counters[in.Name]++
	res := countResult{Name: in.Name, Value: f.counters[in.Name]}
	if key != "" {
		f.applied[key] = appliedCount{body: body, result: res}
	}
	return res, nil
}

func (f *Fixture) peek(ctx context.Context, id string, in sleepInput) (map[string]any, error) {
	f.mu.Lock()
	f.runs[id]++
	n := f.runs[id]
	f.mu.Unlock()
	if _, err := sleep(ctx, in.Ms); err != nil {
		return nil, err
	}
	return map[string]any{"key": id, "runs": n}, nil
}

// statsResult is STATS's result.
type statsResult struct {
	Runs      map[string]int `json:"runs"`
	Counters  map[string]int `json:"counters"`
	Cancelled int            `json:"cancelled"`
}

func (f *Fixture) stats(context.Context, string, struct{}) (statsResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := statsResult{Runs: map[string]int{}, Counters: map[string]int{}, Cancelled: f.cancelled}
	for k, v := range f.runs {
		out.Runs[k] = v
	}
	for k, v := range f.counters {
		out.Counters[k] = v
	}
	return out, nil
}

// publishInput is PUBLISH's body.
type publishInput struct {
	Topic      string            `json:"topic"`
	Count      int               `json:"count"`
	Data       json.RawMessage   `json:"data"`
	Visibility socket.Visibility `json:"visibility"`
}

// maxPublish bounds one PUBLISH.
const maxPublish = 100_000

func (f *Fixture) publish(_ context.Context, _ string, in publishInput) (map[string]int, error) {
	if in.Count < 0 || in.Count > maxPublish {
		return nil, socket.Errorf(socket.CodeInvalidArgument, "count is from 0 to %d, not %d", maxPublish, in.Count)
	}
	data := in.Data
	if len(data) == 0 {
		data = json.RawMessage("null")
	}
	for i := 1; i <= in.Count; i++ {
		ev, err := json.Marshal(struct {
			I    int             `json:"i"`
			Data json.RawMessage `json:"data"`
		}{i, data})
		if err != nil {
			return nil, err
		}
		if err := f.srv.Publish(in.Topic, ev, in.Visibility); err != nil {
			return nil, err
		}
	}
	return map[string]int{"published": in.Count}, nil
}

func (f *Fixture) drain(ctx context.Context, _ string, _ struct{}) (map[string]bool, error) {
	// The handler's context ends once it has returned: the answer is on
	// its way (it is in flight, so it is answered even if the drain
	// starts first).
	context.AfterFunc(ctx, f.shutdown)
	return map[string]bool{"draining": true}, nil
}
