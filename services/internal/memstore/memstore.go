// Package memstore is what the shop's in-memory stores share: reading
// one entry or the entries a filter selects under the store's mutex, and
// adding or changing one entry under the store's mutex and its
// idempotency keys (once.Memory), so that the entry and the key of the
// write change together.
//
//	func (s *memoryStore) Get(_ context.Context, id string) (Item, error) {
//		return memstore.Get(&s.mu, s.items, id, ErrNotFound)
//	}
package memstore

import (
	"context"
	"sync"

	"github.com/streamgate/streamgate/services/internal/once"
)

// Get returns the entry of entries under k, read with mu held, or notFound
// when there is none.
func Get[K comparable, V any](mu *sync.Mutex, entries map[K]V, k K, notFound error) (V, error) {
	mu.Lock()
	defer mu.Unlock()
	v, ok := entries[k]
	if !ok {
		var none V
		return none, notFound
	}
	return v, nil
}

// Change runs change on the entry of entries under k, with mu held and
// under the idempotency key of ctx (once.Memory.Write): notFound when
// there is none. change stores or deletes the entry itself and returns it
// as the write's result, which Change returns; when change fails, or the
// key was applied already, Change returns the error and the zero V.
func Change[K comparable, V any](ctx context.Context, mu *sync.Mutex, keys *once.Memory, entries map[K]V, k K, notFound error, change func(V) (V, error)) (V, error) {
	mu.Lock()
	defer mu.Unlock()
	return once.WriteMemory(ctx, keys, func() (V, error) {
		v, ok := entries[k]
		if !ok {
			var none V
			return none, notFound
		}
		return change(v)
	})
}

// Select returns the entries that keep selects, read with mu held, in no
// particular order (paging.First sorts and cuts them).
func Select[K comparable, V any](mu *sync.Mutex, entries map[K]V, keep func(V) bool) []V {
	mu.Lock()
	defer mu.Unlock()
	var out []V
	for _, v := range entries {
		if keep(v) {
			out = append(out, v)
		}
	}
	return out
}

// Add stores v under k, with mu held and under the idempotency key of ctx
// (once.Memory.Write), keeping v as the write's result; exists when k is
// taken.
func Add[K comparable, V any](ctx context.Context, mu *sync.Mutex, keys *once.Memory, entries map[K]V, k K, v V, exists error) error {
	mu.Lock()
	defer mu.Unlock()
	return keys.Write(ctx, func() (any, error) {
		if _, taken := entries[k]; taken {
			return nil, exists
		}
		entries[k] = v
		return v, nil
	})
}
