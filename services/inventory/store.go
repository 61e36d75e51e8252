package inventory

import (
	"context"
	"math"
	"slices"
	"strings"
	"sync"

	"github.com/streamgate/streamgate/services/internal/memstore"
	"github.com/streamgate/streamgate/services/internal/once"
	"github.com/streamgate/streamgate/services/internal/paging"
)

// Item is a thing for sale and how many are in stock.
type Item struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	PriceCents int64  `json:"price_cents"`
	Stock      int64  `json:"stock"`
}

// Line asks for a quantity of one item.
type Line struct {
	ItemID   string `json:"item_id"`
	Quantity int64  `json:"quantity"`
}

// Shortage is a line that stock cannot cover: InStock is what there is (0
// for an unknown item).
type Shortage struct {
	ItemID    string `json:"item_id"`
	Requested int64  `json:"requested"`
	InStock   int64  `json:"in_stock"`
}

// ListQuery selects a page of items ordered by id (byte order).
type ListQuery struct {
	// NameContains keeps items whose name contains it (case-sensitive);
	// empty keeps all.
	NameContains string
	// After keeps items whose id sorts after it; empty starts at the first.
	After string
	// Limit is the most items to return; positive.
	Limit int
}

// Store keeps the items and the reservations of their stock.
// Implementations are safe for concurrent use. Get, Update and Delete
// return ErrNotFound for an unknown id, GetReservation and Release
// ErrNoReservation, and Create ErrExists for a taken one. A reservation
// and the stock it moves change together, atomically. Create, Update and
// Delete are keyed writes (once.Ledger).
type Store interface {
	once.Ledger
	Get(ctx context.Context, id string) (Item, error)
	List(ctx context.Context, q ListQuery) ([]Item, error)
	Create(ctx context.Context, it Item) error
	// Update changes the fields set in p and returns the item as it is now.
	Update(ctx context.Context, id string, p UpdateInput) (Item, error)
	// Delete removes an item and returns it as it was.
	Delete(ctx context.Context, id string) (Item, error)
	// Lookup returns the items among ids that exist, by id.
	Lookup(ctx context.Context, ids []string) (map[string]Item, error)
	// Reserve records r (ID, Reserved and CreatedAt; lines naming distinct
	// items with quantities ≥ 1) as held at Version 1 and takes its lines'
	// stock, all or none, atomically. When r.ID is recorded already it
	// returns the stored reservation and true, whatever its lines or
	// status, and takes no stock; a held one's Version goes up by 1 (the
	// stored one is returned with it). Concurrent calls with one id take
	// stock once. When any line
	// lacks stock it changes and records nothing and returns an
	// *OutOfStockError with the shortages in the lines' order.
	Reserve(ctx context.Context, r Reservation) (Reservation, bool, error)
	// Release marks the held reservation id released and puts its lines'
	// stock back, atomically, and returns it and true. A released one is
	// returned unchanged with false; concurrent calls put stock back once.
	// A version other than 0 makes it a compare-and-set: a reservation
	// held at another version changes nothing and is returned with
	// ErrReservationChanged. Lines whose item was deleted since are
	// skipped; a stock that would pass math.MaxInt64 is an *OverflowError
	// and changes nothing.
	Release(ctx context.Context, id string, version int64) (Reservation, bool, error)
	// GetReservation returns one reservation.
	GetReservation(ctx context.Context, id string) (Reservation, error)
	// ListReservations returns a page of reservations.
	ListReservations(ctx context.Context, q ReservationQuery) ([]Reservation, error)
}

// byItemID returns a copy of lines sorted by item id, the order in which
// stores touch items so that concurrent changes cannot deadlock.
func byItemID(lines []Line) []Line {
	out := slices.Clone(lines)
	slices.SortFunc(out, func(a, b Line) int { return strings.Compare(a.ItemID, b.ItemID) })
	return out
}

// memoryStore keeps items and reservations in maps.
type memoryStore struct {
	mu           sync.Mutex // guards items and reservations
	items        map[string]Item
	reservations map[string]Reservation
	keys         once.Memory // the keys of applied writes; written under mu
}

var _ Store = (*memoryStore)(nil)

// NewMemoryStore returns an empty in-memory store, safe for concurrent use.
func NewMemoryStore() Store {
	return &memoryStore{items: map[string]Item{}, reservations: map[string]Reservation{}}
}

func (s *memoryStore) Get(_ context.Context, id string) (Item, error) {
	return memstore.Get(&s.mu, s.items, id, ErrNotFound)
}

func (s *memoryStore) List(_ context.Context, q ListQuery) ([]Item, error) {
	out := memstore.Select(&s.mu, s.items, func(it Item) bool {
		return it.ID > q.After && strings.Contains(it.Name, q.NameContains)
	})
	return paging.First(out, q.Limit, func(it Item) string { return it.ID }), nil
}

func (s *memoryStore) Applied(ctx context.Context, k once.Key) (once.Record, bool, error) {
	return s.keys.Applied(ctx, k)
}

func (s *memoryStore) Create(ctx context.Context, it Item) error {
	return memstore.Add(ctx, &s.mu, &s.keys, s.items, it.ID, it, ErrExists)
}

func (s *memoryStore) Update(ctx context.Context, id string, p UpdateInput) (Item, error) {
	return memstore.Change(ctx, &s.mu, &s.keys, s.items, id, ErrNotFound, func(it Item) (Item, error) {
		if p.Name != nil {
			it.Name = *p.Name
		}
		if p.PriceCents != nil {
			it.PriceCents = *p.PriceCents
		}
		if p.Stock != nil {
			it.Stock = *p.Stock
		}
		s.items[id] = it
		return it, nil
	})
}

func (s *memoryStore) Delete(ctx context.Context, id string) (Item, error) {
	return memstore.Change(ctx, &s.mu, &s.keys, s.items, id, ErrNotFound, func(it Item) (Item, error) {
		delete(s.items, id)
		return it, nil
	})
}

func (s *memoryStore) Lookup(_ context.Context, ids []string) (map[string]Item, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]Item, len(ids))
	for _, id := range ids {
		if it, ok := s.items[id]; ok {
			out[id] = it
		}
	}
	return out, nil
}

func (s *memoryStore) Reserve(_ context.Context, r Reservation) (Reservation, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if stored, ok := s.reservations[r.ID]; ok {
		if stored.Status == ReservationHeld {
			stored.Version++
			s.reservations[r.ID] = stored
		}
		return stored.clone(), true, nil
	}
	var short []Shortage
	for _, l := range r.Reserved {
		if it := s.items[l.ItemID]; it.Stock < l.Quantity {
			short = append(short, Shortage{ItemID: l.ItemID, Requested: l.Quantity, InStock: it.Stock})
		}
	}
	if len(short) > 0 {
		return Reservation{}, false, &OutOfStockError{Missing: short}
	}
	for _, l := range r.Reserved {
		it := s.items[l.ItemID]
		it.Stock -= l.Quantity
		s.items[l.ItemID] = it
	}
	r.Status, r.Version = ReservationHeld, 1
	s.reservations[r.ID] = r.clone()
	return r, false, nil
}

func (s *memoryStore) Release(_ context.Context, id string, version int64) (Reservation, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.reservations[id]
	switch {
	case !ok:
		return Reservation{}, false, ErrNoReservation
	case r.Status != ReservationHeld:
		return r.clone(), false, nil
	case version != 0 && r.Version != version:
		return r.clone(), false, ErrReservationChanged
	}
	for _, l := range r.Reserved {
		if it, ok := s.items[l.ItemID]; ok && it.Stock > math.MaxInt64-l.Quantity {
			return Reservation{}, false, &OverflowError{Line: l}
		}
	}
	for _, l := range r.Reserved {
		if it, ok := s.items[l.ItemID]; ok {
			it.Stock += l.Quantity
			s.items[l.ItemID] = it
		}
	}
	r.Status = ReservationReleased
	s.reservations[id] = r
	return r.clone(), true, nil
}

func (s *memoryStore) GetReservation(_ context.Context, id string) (Reservation, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.reservations[id]
	if !ok {
		return Reservation{}, ErrNoReservation
	}
	return r.clone(), nil
}

func (s *memoryStore) ListReservations(_ context.Context, q ReservationQuery) ([]Reservation, error) {
	s.mu.Lock()
	out := []Reservation{}
	for _, r := range s.reservations {
		if r.ID > q.After && (q.Status == "" || r.Status == q.Status) {
			out = append(out, r.clone())
		}
	}
	s.mu.Unlock()
	return paging.First(out, q.Limit, func(r Reservation) string { return r.ID }), nil
}
