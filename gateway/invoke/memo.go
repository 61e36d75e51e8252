package invoke

import (
	"sync"
	"sync/atomic"
)

// memo keeps values made from a few recurring inputs (the Cache-Control
// of a TTL, the coalescing scope of a caller) so that requests share one
// value rather than each making its own. Lookups take no lock: an add
// replaces the whole map. It keeps at most memoLimit values; past that,
// callers make theirs per request, as without it.
type memo[K comparable, V any] struct {
	values atomic.Pointer[map[K]V]
	mu     sync.Mutex // serializes adds
}

// memoLimit bounds a memo: its inputs come from the configuration and
// the callers, and a flood of distinct callers must not grow it.
const memoLimit = 1024

// get returns the value kept for k.
func (m *memo[K, V]) get(k K) (V, bool) {
	if p := m.values.Load(); p != nil {
		v, ok := (*p)[k]
		return v, ok
	}
	var zero V
	return zero, false
}

// add keeps v for k, unless the memo is full.
func (m *memo[K, V]) add(k K, v V) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var old map[K]V
	if p := m.values.Load(); p != nil {
		old = *p
	}
	if len(old) >= memoLimit {
		return
	}
	next := make(map[K]V, len(old)+1)
	for ok, ov := range old {
		next[ok] = ov
	}
	next[k] = v
	m.values.Store(&next)
}
