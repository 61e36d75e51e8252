package conformance

import (
	"fmt"
	"time"

	socketv1 "github.com/streamgate/streamgate/gen/streamgate/socket/v1"
)

// --- §5 deadlines

func deadline(e *env, st *stream) error {
	before, err := e.stats(st)
	if err != nil {
		return err
	}
	r := req("SLOW", "", map[string]int{"ms": 30000})
	r.TimeoutMs = 300
	start := time.Now()
	resp, err := st.call(e.ctx, r)
	if err != nil {
		return err
	}
	if err := wantError(resp, "DEADLINE_EXCEEDED", ""); err != nil {
		return err
	}
	if d := time.Since(start); d < 250*time.Millisecond {
		return fmt.Errorf("answered DEADLINE_EXCEEDED after %s, before timeout_ms 300", d)
	}
	return e.waitCancelled(st, before.Cancelled)
}

// --- §6 errors

func unknownAction(e *env, st *stream) error {
	for _, action := range []string{"NO_SUCH_ACTION", ""} {
		resp, err := st.call(e.ctx, req(action, "", nil))
		if err != nil {
			return err
		}
		want := "NOT_FOUND"
		if action == "" {
			want = "INVALID_ARGUMENT"
		}
		if err := wantError(resp, want, ""); err != nil {
			return fmt.Errorf("action %q: %w", action, err)
		}
	}
	return nil
}

func errorCode(code string) func(e *env) error {
	return onStream(func(e *env, st *stream) error {
		msg := "conformance says " + code
		resp, err := st.call(e.ctx, req("FAIL", "", map[string]string{"code": code, "message": msg, "reason": "conformance_reason"}))
		if err != nil {
			return err
		}
		if err := wantError(resp, code, "conformance_reason"); err != nil {
			return err
		}
		if m := resp.GetError().GetMessage(); m != msg {
			return fmt.Errorf("message: want %q, got %q", msg, m)
		}
		// Without a reason, details carry none.
		resp, err = st.call(e.ctx, req("FAIL", "", map[string]string{"code": code, "message": msg}))
		if err != nil {
			return err
		}
		if err := wantError(resp, code, ""); err != nil {
			return err
		}
		if r := reasonOf(resp.GetError()); r != "" {
			return fmt.Errorf("FAIL without a reason answered reason %q", r)
		}
		return nil
	})
}

func badJSON(e *env, st *stream) error {
	for _, body := range []string{`{"a":`, `{"a": 1} trailing`, `not json`} {
		resp, err := st.call(e.ctx, req("ECHO", "", []byte(body)))
		if err != nil {
			return err
		}
		if err := wantError(resp, "INVALID_ARGUMENT", ""); err != nil {
			return fmt.Errorf("body %q: %w", body, err)
		}
	}
	return e.roundTrip(st)
}

func unknownField(e *env, st *stream) error {
	name := e.prefix + "-unknown-field"
	resp, err := st.call(e.ctx, req("COUNT", "", map[string]any{"name": name, "bogus": 1}))
	if err != nil {
		return err
	}
	if err := wantError(resp, "INVALID_ARGUMENT", "unknown_field"); err != nil {
		return err
	}
	if f := resp.GetError().GetDetails().GetFields()["field"].GetStringValue(); f != "bogus" {
		return fmt.Errorf("details.field: want bogus, got %q", f)
	}
	s, err := e.stats(st)
	if err != nil {
		return err
	}
	if s.Counters[name] != 0 {
		return fmt.Errorf("a refused COUNT counted: %d", s.Counters[name])
	}
	return nil
}

// --- §7 writes and idempotency keys

// countValue is COUNT's result.
type countValue struct {
	Name  string `json:"name"`
	Value int    `json:"value"`
}

func count(e *env, st *stream, name, key string) (countValue, *socketv1.Response, error) {
	r := req("COUNT", "", map[string]string{"name": name})
	if key != "" {
		r.Meta = &socketv1.Meta{IdempotencyKey: key}
	}
	resp, err := st.call(e.ctx, r)
	if err != nil {
		return countValue{}, nil, err
	}
	var v countValue
	if resp.GetOk() {
		err = result(resp, &v)
	}
	return v, resp, err
}

func keyedWrite(e *env, st *stream) error {
	name, key := e.prefix+"-keyed", e.prefix+"0123456789abcdef0123456789abcdef:COUNT"
	first, resp, err := count(e, st, name, key)
	if err != nil {
		return err
	}
	if resp.GetReplayed() || first.Value != 1 || first.Name != name {
		return fmt.Errorf("first COUNT: want value 1 not replayed, got %+v replayed=%v", first, resp.GetReplayed())
	}
	// The retry comes on another stream, as after a lost answer.
	other, err := e.open(e.cfg.Key, false)
	if err != nil {
		return err
	}
	again, resp, err := count(e, other, name, key)
	if err != nil {
		return err
	}
	if !resp.GetReplayed() || again != first {
		return fmt.Errorf("retried COUNT: want %+v replayed, got %+v replayed=%v", first, again, resp.GetReplayed())
	}
	s, err := e.stats(st)
	if err != nil {
		return err
	}
	if s.Counters[name] != 1 {
		return fmt.Errorf("the counter moved %d times under one key", s.Counters[name])
	}
	// Without a key, every COUNT counts.
	v, resp, err := count(e, st, name, "")
	if err != nil {
		return err
	}
	if v.Value != 2 || resp.GetReplayed() {
		return fmt.Errorf("COUNT without a key: want value 2, got %+v replayed=%v", v, resp.GetReplayed())
	}
	return nil
}

func keyReused(e *env, st *stream) error {
	name, key := e.prefix+"-reused", e.prefix+":reused"
	if _, _, err := count(e, st, name, key); err != nil {
		return err
	}
	_, resp, err := count(e, st, name+"-other", key)
	if err != nil {
		return err
	}
	if err := wantError(resp, "CONFLICT", "idempotency_key_reused"); err != nil {
		return err
	}
	s, err := e.stats(st)
	if err != nil {
		return err
	}
	if s.Counters[name+"-other"] != 0 || s.Counters[name] != 1 {
		return fmt.Errorf("counters after a reused key: %d and %d, want 1 and 0", s.Counters[name], s.Counters[name+"-other"])
	}
	return nil
}
