package users_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/streamgate/streamgate/services/socket"
	"github.com/streamgate/streamgate/services/socket/caller"
	"github.com/streamgate/streamgate/services/socket/sockettest"
	"github.com/streamgate/streamgate/services/users"
	"github.com/streamgate/streamgate/status"
)

// withKey returns ctx sending the idempotency key.
func withKey(ctx context.Context, key string) context.Context {
	m := socket.MetaFrom(ctx)
	m.IdempotencyKey = key
	return caller.ContextWithMeta(ctx, m)
}

// TestSameKeyWritesApplyOnce: a write retried with its idempotency key
// (as the gateway sends a client's retry after a lost answer) applies
// once and answers the first result, marked replayed; concurrent ones
// with one key create one user; the key with another body is refused.
func TestSameKeyWritesApplyOnce(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, st users.Store) {
		c := serve(t, st)
		admin := sockettest.As(t, "v1", "root", "admin")
		create := users.CreateInput{Name: "Kim", Email: "kim@example.com"}

		// Concurrent creates with one key, then a late retry.
		key := withKey(admin, "h1:CREATE_USER")
		const n = 8
		replies := make([]caller.Reply, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { replies[i], errs[i] = c.Do(key, "CREATE_USER", "", create) })
		}
		wg.Wait()
		late, err := c.Do(key, "CREATE_USER", "", create)
		replies, errs = append(replies, late), append(errs, err)
		var first string
		fresh := 0
		for i, r := range replies {
			if errs[i] != nil {
				t.Fatalf("create %d with the key: %v", i, errs[i])
			}
			if first == "" {
				first = string(r.Result)
			}
			if string(r.Result) != first {
				t.Fatalf("create %d answered %s, another %s", i, r.Result, first)
			}
			if !r.Replayed {
				fresh++
			}
		}
		if fresh != 1 {
			t.Errorf("%d answers not marked replayed, want 1", fresh)
		}
		page, err := caller.Call[users.Page](admin, c, "LIST_USERS", "", users.ListInput{})
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Items) != 1 {
			t.Fatalf("%d users after %d creates with one key, want 1: %+v", len(page.Items), n+1, page.Items)
		}
		id := page.Items[0].ID

		// The key with another request is refused, and changes nothing.
		_, err = c.Do(key, "CREATE_USER", "", users.CreateInput{Name: "Other", Email: "other@example.com"})
		if e := status.AsError(err); e == nil || e.Code != socket.CodeConflict || e.Details["reason"] != "idempotency_key_reused" {
			t.Fatalf("the key with another body: %v, want CONFLICT idempotency_key_reused", err)
		}

		// An update retried after another change answers its first result
		// and does not undo the other change.
		upd := withKey(admin, "h2:UPDATE_USER")
		if _, err := c.Do(upd, "UPDATE_USER", id, users.Patch{Name: ptr("Kim B")}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Do(admin, "UPDATE_USER", id, users.Patch{Name: ptr("Kim C")}); err != nil {
			t.Fatal(err)
		}
		again, err := c.Do(upd, "UPDATE_USER", id, users.Patch{Name: ptr("Kim B")})
		if err != nil || !again.Replayed {
			t.Fatalf("update retried: %+v, %v; want the first answer, replayed", again, err)
		}
		if now, err := caller.Call[users.User](admin, c, "GET_USER", id, nil); err != nil || now.Name != "Kim C" {
			t.Fatalf("after the retried update: %+v, %v; want the later name Kim C", now, err)
		}

		// A delete retried answers the deleted user again.
		del := withKey(admin, "h3:DELETE_USER")
		gone, err := c.Do(del, "DELETE_USER", id, nil)
		if err != nil {
			t.Fatal(err)
		}
		again, err = c.Do(del, "DELETE_USER", id, nil)
		if err != nil || !again.Replayed || string(again.Result) != string(gone.Result) {
			t.Fatalf("delete retried: %+v, %v; want %s, replayed", again, err, gone.Result)
		}

		// Keys are the caller's: another caller's same key is its own.
		for i, who := range []string{"ann", "bob"} {
			ctx := withKey(sockettest.As(t, "v1", who), "shared")
			if _, err := c.Do(ctx, "CREATE_USER", "", users.CreateInput{Name: who, Email: fmt.Sprintf("%s%d@example.com", who, i)}); err != nil {
				t.Fatalf("%s with a key another caller used: %v", who, err)
			}
		}
	})
}
