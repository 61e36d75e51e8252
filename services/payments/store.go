package payments

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/streamgate/streamgate/services/internal/memstore"
	"github.com/streamgate/streamgate/services/internal/paging"
)

// Status is a payment's state: pending while the gateway is asked, then
// succeeded or failed; a succeeded payment may be refunded.
type Status string

// The payment statuses.
const (
	StatusPending   Status = "pending"
	StatusSucceeded Status = "succeeded"
	StatusFailed    Status = "failed"
	StatusRefunded  Status = "refunded"
)

func (s Status) valid() bool {
	switch s {
	case StatusPending, StatusSucceeded, StatusFailed, StatusRefunded:
		return true
	}
	return false
}

// Payment is one attempt to charge an order.
type Payment struct {
	ID            string    `json:"id"`
	OrderID       string    `json:"order_id"`
	UserID        string    `json:"user_id"`
	AmountCents   int64     `json:"amount_cents"`
	Gateway       string    `json:"gateway"`
	Status        Status    `json:"status"`
	CardLast4     string    `json:"card_last4"`
	ProviderRef   string    `json:"provider_ref,omitempty"`
	FailureReason string    `json:"failure_reason,omitempty"`
	CreatedAt     time.Time `json:"created_at"`
}

// Transition moves a payment from one status to another.
type Transition struct {
	From, To Status
	// ProviderRef and FailureReason are set when not empty.
	ProviderRef, FailureReason string
	// ReleaseOrder also gives up the payment's hold on its order, so the
	// order may be paid again.
	ReleaseOrder bool
}

// Filter selects payments for List: empty fields match everything.
// Payments come ordered by id, those with ids after After, at most Limit.
type Filter struct {
	OrderID, UserID string
	Status          Status
	After           string
	Limit           int
}

// KeyRecord is a stored Idempotency-Key.
type KeyRecord struct {
	// Fingerprint identifies the request that first used the key.
	Fingerprint string
	// Outcome is that request's stored outcome; nil while it runs.
	Outcome []byte
}

// Store keeps payments, the orders they hold, and Idempotency-Keys.
// Outcomes a caller can act on are the errors of errors.go: ErrNotFound,
// ErrExists, ErrNoKey, *HeldError and *StatusError.
type Store interface {
	// Create records a payment, pending (its charge is about to run) or
	// succeeded (nothing to charge), and makes it its order's holder,
	// atomically. An order has at most one holder: a pending payment (the
	// charge is running), a succeeded one (the order is paid), or a
	// refunded one whose refund is running. When the order is held, Create
	// fails with a *HeldError; ErrExists when the payment id is taken.
	Create(ctx context.Context, p Payment) error
	// Get returns a payment; ErrNotFound if there is none.
	Get(ctx context.Context, id string) (Payment, error)
	// List returns the payments that match f.
	List(ctx context.Context, f Filter) ([]Payment, error)
	// Update applies t to a payment atomically and returns the payment;
	// ErrNotFound if there is none, a *StatusError if it is not in t.From.
	Update(ctx context.Context, id string, t Transition) (Payment, error)
	// ClaimKey records an Idempotency-Key of a subject for a request with
	// the fingerprint, unless the key exists: then it returns the stored
	// record and claimed is false.
	ClaimKey(ctx context.Context, subject, key, fingerprint string) (rec KeyRecord, claimed bool, err error)
	// SaveKey stores the outcome of the request that claimed the key;
	// ErrNoKey if it is not claimed.
	SaveKey(ctx context.Context, subject, key string, outcome []byte) error
	// ReleaseKey forgets a claimed key that has no outcome, so that a
	// retry runs again.
	ReleaseKey(ctx context.Context, subject, key string) error
}

// memoryStore is the in-memory Store.
type memoryStore struct {
	mu       sync.Mutex // guards payments, holders and keys
	payments map[string]Payment
	holders  map[string]string // order id → payment id
	keys     map[[2]string]KeyRecord
}

// NewMemoryStore returns an empty in-memory Store, safe for concurrent use.
func NewMemoryStore() Store {
	return &memoryStore{payments: map[string]Payment{}, holders: map[string]string{}, keys: map[[2]string]KeyRecord{}}
}

var _ Store = (*memoryStore)(nil)

func (m *memoryStore) Create(_ context.Context, p Payment) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if holder, ok := m.holders[p.OrderID]; ok {
		return &HeldError{OrderID: p.OrderID, PaymentID: holder, Status: m.payments[holder].Status}
	}
	if _, dup := m.payments[p.ID]; dup {
		return ErrExists
	}
	m.payments[p.ID] = p
	m.holders[p.OrderID] = p.ID
	return nil
}

func (m *memoryStore) Get(_ context.Context, id string) (Payment, error) {
	return memstore.Get(&m.mu, m.payments, id, ErrNotFound)
}

func (m *memoryStore) List(_ context.Context, f Filter) ([]Payment, error) {
	out := memstore.Select(&m.mu, m.payments, func(p Payment) bool {
		return (f.OrderID == "" || p.OrderID == f.OrderID) && (f.UserID == "" || p.UserID == f.UserID) &&
			(f.Status == "" || p.Status == f.Status) && p.ID > f.After
	})
	limit := f.Limit
	if limit <= 0 { // no limit
		limit = len(out)
	}
	return paging.First(out, limit, func(p Payment) string { return p.ID }), nil
}

func (m *memoryStore) Update(_ context.Context, id string, t Transition) (Payment, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p, ok := m.payments[id]
	if !ok {
		return Payment{}, ErrNotFound
	}
	if p.Status != t.From {
		return Payment{}, &StatusError{ID: id, Got: p.Status, Want: t.From}
	}
	p.Status = t.To
	if t.ProviderRef != "" {
		p.ProviderRef = t.ProviderRef
	}
	if t.FailureReason != "" {
		p.FailureReason = t.FailureReason
	}
	m.payments[id] = p
	if t.ReleaseOrder && m.holders[p.OrderID] == id {
		delete(m.holders, p.OrderID)
	}
	return p, nil
}

func (m *memoryStore) ClaimKey(_ context.Context, subject, key, fingerprint string) (KeyRecord, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := [2]string{subject, key}
	if rec, ok := m.keys[k]; ok {
		rec.Outcome = slices.Clone(rec.Outcome)
		return rec, false, nil
	}
	m.keys[k] = KeyRecord{Fingerprint: fingerprint}
	return KeyRecord{Fingerprint: fingerprint}, true, nil
}

func (m *memoryStore) SaveKey(_ context.Context, subject, key string, outcome []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := [2]string{subject, key}
	rec, ok := m.keys[k]
	if !ok {
		return ErrNoKey
	}
	rec.Outcome = slices.Clone(outcome)
	m.keys[k] = rec
	return nil
}

func (m *memoryStore) ReleaseKey(_ context.Context, subject, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := [2]string{subject, key}
	if rec, ok := m.keys[k]; ok && rec.Outcome == nil {
		delete(m.keys, k)
	}
	return nil
}
