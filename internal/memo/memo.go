// Package memo keeps values made from a few recurring inputs (the
// Cache-Control of a TTL, the coalescing scope of a caller) so that
// requests share one value rather than each making its own.
//
//	var controls memo.Map[time.Duration, []string]
//	v, ok := controls.Get(ttl)
//	if !ok {
//		v = []string{"max-age=" + strconv.Itoa(int(ttl.Seconds()))}
//		controls.Add(ttl, v)
//	}
package memo

import (
	"sync"
	"sync/atomic"
)

// Map is a memo: lookups take no lock (an add replaces the whole map),
// and it keeps at most Limit values; past that, callers make theirs per
// request, as without it. The zero Map is empty and ready for use; it is
// safe for concurrent use.
type Map[K comparable, V any] struct {
	values atomic.Pointer[map[K]V]
	mu     sync.Mutex // serializes adds
}

// Limit bounds a Map: its inputs come from the configuration and the
// callers, and a flood of distinct callers must not grow it.
const Limit = 1024

// Get returns the value kept for k.
func (m *Map[K, V]) Get(k K) (V, bool) {
	if p := m.values.Load(); p != nil {
		v, ok := (*p)[k]
		return v, ok
	}
	var zero V
	return zero, false
}

// Add keeps v for k, unless the Map is full.
func (m *Map[K, V]) Add(k K, v V) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var old map[K]V
	if p := m.values.Load(); p != nil {
		old = *p
	}
	if len(old) >= Limit {
		return
	}
	next := make(map[K]V, len(old)+1)
	for ok, ov := range old {
		next[ok] = ov
	}
	next[k] = v
	m.values.Store(&next)
}
