package users

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/streamgate/streamgate/services/internal/memstore"
	"github.com/streamgate/streamgate/services/internal/once"
	"github.com/streamgate/streamgate/services/internal/paging"
)

// User is an account.
type User struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Email     string    `json:"email"`
	Status    string    `json:"status"`
	CreatedAt time.Time `json:"created_at"`
}

// The statuses of a user.
const (
	StatusActive    = "active"
	StatusSuspended = "suspended"
)

// Query selects users for Store.List: those with the status and email
// given (empty matches any) and an id greater than After, in id order
// (byte-wise), at most Limit (> 0) of them.
type Query struct {
	Status, Email string
	After         string
	Limit         int
}

// Store keeps users. Emails are unique. Implementations are safe for
// concurrent use and return the sentinel errors below, which the service
// turns into NOT_FOUND and ALREADY_EXISTS; any other error is INTERNAL.
// Create, Update and Delete are keyed writes (once.Ledger).
type Store interface {
	once.Ledger
	// Get returns the user, or ErrNotFound.
	Get(ctx context.Context, id string) (User, error)
	// List returns the users the query selects.
	List(ctx context.Context, q Query) ([]User, error)
	// Create adds u, or fails with ErrIDTaken (checked first) or
	// ErrEmailTaken.
	Create(ctx context.Context, u User) error
	// Update changes the fields set in p and returns the user as it now
	// is; ErrNotFound or ErrEmailTaken.
	Update(ctx context.Context, id string, p Patch) (User, error)
	// Delete removes the user and returns it; ErrNotFound.
	Delete(ctx context.Context, id string) (User, error)
}

// The errors a Store returns.
var (
	ErrNotFound   = errors.New("users: no such user")
	ErrIDTaken    = errors.New("users: id taken")
	ErrEmailTaken = errors.New("users: email taken")
)

// userID is a user's key, the order of pages.
func userID(u User) string { return u.ID }

// memoryStore is the in-memory Store.
type memoryStore struct {
	mu      sync.Mutex // guards byID, byEmail and the writes of keys
	byID    map[string]User
	byEmail map[string]string // email → id
	keys    once.Memory       // the keys of applied writes
}

var _ Store = (*memoryStore)(nil)

// NewMemoryStore returns an empty in-memory Store, safe for concurrent use.
func NewMemoryStore() Store {
	return &memoryStore{byID: map[string]User{}, byEmail: map[string]string{}}
}

func (m *memoryStore) Get(_ context.Context, id string) (User, error) {
	return memstore.Get(&m.mu, m.byID, id, ErrNotFound)
}

func (m *memoryStore) List(_ context.Context, q Query) ([]User, error) {
	out := memstore.Select(&m.mu, m.byID, func(u User) bool {
		return u.ID > q.After && (q.Status == "" || u.Status == q.Status) && (q.Email == "" || u.Email == q.Email)
	})
	return paging.First(out, q.Limit, userID), nil
}

func (m *memoryStore) Applied(ctx context.Context, k once.Key) (once.Record, bool, error) {
	return m.keys.Applied(ctx, k)
}

func (m *memoryStore) Create(ctx context.Context, u User) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.keys.Write(ctx, func() (any, error) {
		if _, ok := m.byID[u.ID]; ok {
			return nil, ErrIDTaken
		}
		if _, ok := m.byEmail[u.Email]; ok {
			return nil, ErrEmailTaken
		}
		m.byID[u.ID] = u
		m.byEmail[u.Email] = u.ID
		return u, nil
	})
}

func (m *memoryStore) Update(ctx context.Context, id string, p Patch) (User, error) {
	return memstore.Change(ctx, &m.mu, &m.keys, m.byID, id, ErrNotFound, func(u User) (User, error) {
		if p.Email != nil && *p.Email != u.Email {
			if _, taken := m.byEmail[*p.Email]; taken {
				return User{}, ErrEmailTaken
			}
			delete(m.byEmail, u.Email)
			u.Email = *p.Email
			m.byEmail[u.Email] = id
		}
		if p.Name != nil {
			u.Name = *p.Name
		}
		if p.Status != nil {
			u.Status = *p.Status
		}
		m.byID[id] = u
		return u, nil
	})
}

func (m *memoryStore) Delete(ctx context.Context, id string) (User, error) {
	return memstore.Change(ctx, &m.mu, &m.keys, m.byID, id, ErrNotFound, func(u User) (User, error) {
		delete(m.byID, id)
		delete(m.byEmail, u.Email)
		return u, nil
	})
}
