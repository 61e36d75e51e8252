// Package oncetest checks that a service's write applies once per
// idempotency key, over a real socket client.
//
//	res := oncetest.Once(t, c, oncetest.WithKey(admin, "h1:CREATE_ITEM"), "CREATE_ITEM", "", body)
package oncetest

import (
	"context"
	"encoding/json"
	"sync"
	"testing"

	"github.com/streamgate/streamgate/services/socket"
	"github.com/streamgate/streamgate/services/socket/caller"
)

// WithKey returns ctx sending the idempotency key, as the gateway sends a
// derived key.
func WithKey(ctx context.Context, key string) context.Context {
	m := socket.MetaFrom(ctx)
	m.IdempotencyKey = key
	return caller.ContextWithMeta(ctx, m)
}

// Once sends the request 6 times at once under ctx (which carries a key)
// and once more after them, and returns the answer; it fails the test
// unless every answer is the same result and exactly one is not marked
// replayed.
func Once(t testing.TB, c *caller.Client, ctx context.Context, action, id string, body any) json.RawMessage {
	t.Helper()
	const n = 6
	replies := make([]caller.Reply, n+1)
	errs := make([]error, n+1)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { replies[i], errs[i] = c.Do(ctx, action, id, body) })
	}
	wg.Wait()
	replies[n], errs[n] = c.Do(ctx, action, id, body)
	fresh := 0
	for i, r := range replies {
		if errs[i] != nil {
			t.Fatalf("%s %d of %d with one key: %v", action, i+1, n+1, errs[i])
		}
		if string(r.Result) != string(replies[0].Result) {
			t.Fatalf("%s %d answered %s, another %s", action, i+1, r.Result, replies[0].Result)
		}
		if !r.Replayed {
			fresh++
		}
	}
	if fresh != 1 {
		t.Errorf("%s: %d answers not marked replayed, want 1", action, fresh)
	}
	return replies[0].Result
}
