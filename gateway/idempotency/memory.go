package idempotency

import (
	"context"
	"sync"
	"time"

	"github.com/maypok86/otter/v2"
)

// Memory is a Store in this process, bounded in entries and bytes. Leases
// are never evicted (a request holding one is running); when max leases
// are held, Begin fails and the gateway refuses the request (503). Answers
// are evicted least-valuable first when a bound is reached, or at their
// TTL; a retry after its answer was evicted runs again (the services'
// derived keys make it converge).
type Memory struct {
	mu        sync.Mutex // guards leases and makes Begin, Complete and Release atomic
	leases    map[string]memLease
	maxLeases int
	answers   *otter.Cache[string, *memAnswer]
}

type memLease struct {
	token, fp string
	expires   time.Time
}

type memAnswer struct {
	fp      string
	answer  Answer
	expires time.Time
}

var _ Store = (*Memory)(nil)

// memOverhead is what an answer costs besides its bytes: the struct, the
// map slot and the cache's node.
const memOverhead = 256

// NewMemory returns a store keeping at most maxEntries answers (and as
// many leases) in at most maxBytes.
func NewMemory(maxEntries, maxBytes int64) *Memory {
	maxEntries, maxBytes = max(maxEntries, 1), max(maxBytes, 1)
	// Every answer weighs at least maxBytes/maxEntries, so the weight
	// bound bounds the number of answers too.
	floor := uint32(min(maxBytes/maxEntries, 1<<31))
	answers := otter.Must(&otter.Options[string, *memAnswer]{
		MaximumWeight: uint64(maxBytes),
		Weigher: func(k string, a *memAnswer) uint32 {
			w := uint32(min(len(k)+len(a.fp)+len(a.answer.Body)+len(a.answer.Location)+memOverhead, 1<<31))
			return max(w, floor)
		},
		ExpiryCalculator: otter.ExpiryWritingFunc(func(e otter.Entry[string, *memAnswer]) time.Duration {
			return max(time.Until(e.Value.expires), time.Millisecond)
		}),
		Executor: func(fn func()) { fn() }, // no goroutines
	})
	return &Memory{leases: map[string]memLease{}, maxLeases: int(min(maxEntries, 1<<30)), answers: answers}
}

// errTooManyLeases is Begin's error when every lease slot is taken.
type errTooManyLeases struct{}

func (errTooManyLeases) Error() string { return "idempotency: too many requests with keys in flight" }

// Begin implements Store.
func (m *Memory) Begin(_ context.Context, id, fp string, lease time.Duration) (Begun, error) {
	now := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if a, ok := m.answers.GetIfPresent(id); ok && now.Before(a.expires) {
		if a.fp != fp {
			return Begun{Outcome: Mismatch}, nil
		}
		ans := a.answer
		return Begun{Outcome: Done, Answer: &ans}, nil
	}
	if l, ok := m.leases[id]; ok && now.Before(l.expires) {
		if l.fp != fp {
			return Begun{Outcome: Mismatch}, nil
		}
		return Begun{Outcome: InUse, LeaseLeft: l.expires.Sub(now)}, nil
	}
	if len(m.leases) >= m.maxLeases {
		for k, l := range m.leases {
			if !now.Before(l.expires) {
				delete(m.leases, k)
			}
		}
		if len(m.leases) >= m.maxLeases {
			return Begun{}, errTooManyLeases{}
		}
	}
	token := newToken()
	m.leases[id] = memLease{token: token, fp: fp, expires: now.Add(lease)}
	return Begun{Outcome: Acquired, Token: token}, nil
}

// Complete implements Store.
func (m *Memory) Complete(_ context.Context, id, token string, a Answer, ttl time.Duration) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	l, ok := m.leases[id]
	if !ok || l.token != token || !time.Now().Before(l.expires) {
		return ErrLeaseLost
	}
	delete(m.leases, id)
	m.answers.Set(id, &memAnswer{fp: l.fp, answer: a, expires: time.Now().Add(ttl)})
	return nil
}

// Release implements Store.
func (m *Memory) Release(_ context.Context, id, token string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	l, ok := m.leases[id]
	if !ok || l.token != token {
		return ErrLeaseLost
	}
	delete(m.leases, id)
	return nil
}

// Close stops the goroutine that expires answers.
func (m *Memory) Close() { m.answers.StopAllGoroutines() }

// Len returns the number of leases and answers held, and the answers'
// weight in bytes.
func (m *Memory) Len() (leases, answers int, bytes uint64) {
	m.mu.Lock()
	leases = len(m.leases)
	m.mu.Unlock()
	m.answers.CleanUp()
	return leases, m.answers.EstimatedSize(), m.answers.WeightedSize()
}
