package inventory

import (
	"context"
	"math"
	"slices"
	"strings"
	"sync"

	"github.com/streamgate/streamgate/services/socket"
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

// Store keeps the items. Implementations are safe for concurrent use.
// Get, Update, Delete and Release answer NOT_FOUND for an unknown id and
// Create answers ALREADY_EXISTS for a taken one, as *socket.Error.
type Store interface {
	Get(ctx context.Context, id string) (Item, error)
	List(ctx context.Context, q ListQuery) ([]Item, error)
	Create(ctx context.Context, it Item) error
	// Update changes the fields set in p and returns the item as it is now.
	Update(ctx context.Context, id string, p UpdateInput) (Item, error)
	// Delete removes an item and returns it as it was.
	Delete(ctx context.Context, id string) (Item, error)
	// Lookup returns the items among ids that exist, by id.
	Lookup(ctx context.Context, ids []string) (map[string]Item, error)
	// Reserve takes the lines' quantities out of stock, all or none: when
	// any line lacks stock it changes nothing and returns the shortages
	// (in the lines' order). Lines name distinct items with quantities ≥ 1.
	Reserve(ctx context.Context, lines []Line) ([]Shortage, error)
	// Release puts the lines' quantities back into stock, all or none:
	// an unknown item is NOT_FOUND (the first in id order) and a stock
	// that would pass math.MaxInt64 is INVALID_ARGUMENT, and either
	// changes nothing. Lines name distinct items with quantities ≥ 1.
	Release(ctx context.Context, lines []Line) error
}

func errNotFound(id string) error {
	return socket.Errorf(socket.CodeNotFound, "no item %q", id)
}

func errExists(id string) error {
	return socket.Errorf(socket.CodeAlreadyExists, "item %q already exists", id)
}

func errStockOverflow(l Line) error {
	return socket.Errorf(socket.CodeInvalidArgument, "releasing %d of item %q would overflow its stock", l.Quantity, l.ItemID)
}

// byItemID returns a copy of lines sorted by item id, the order in which
// stores touch items so that concurrent changes cannot deadlock.
func byItemID(lines []Line) []Line {
	out := slices.Clone(lines)
	slices.SortFunc(out, func(a, b Line) int { return strings.Compare(a.ItemID, b.ItemID) })
	return out
}

// memoryStore keeps items in a map.
type memoryStore struct {
	mu    sync.Mutex // guards items
	items map[string]Item
}

var _ Store = (*memoryStore)(nil)

// NewMemoryStore returns an empty in-memory store, safe for concurrent use.
func NewMemoryStore() Store { return &memoryStore{items: map[string]Item{}} }

func (s *memoryStore) Get(_ context.Context, id string) (Item, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	it, ok := s.items[id]
	if !ok {
		return Item{}, errNotFound(id)
	}
	return it, nil
}

func (s *memoryStore) List(_ context.Context, q ListQuery) ([]Item, error) {
	s.mu.Lock()
	out := []Item{}
	for _, it := range s.items {
		if it.ID > q.After && strings.Contains(it.Name, q.NameContains) {
			out = append(out, it)
		}
	}
	s.mu.Unlock()
	slices.SortFunc(out, func(a, b Item) int { return strings.Compare(a.ID, b.ID) })
	return out[:min(len(out), q.Limit)], nil
}

func (s *memoryStore) Create(_ context.Context, it Item) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.items[it.ID]; ok {
		return errExists(it.ID)
	}
	s.items[it.ID] = it
	return nil
}

func (s *memoryStore) Update(_ context.Context, id string, p UpdateInput) (Item, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	it, ok := s.items[id]
	if !ok {
		return Item{}, errNotFound(id)
	}
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
}

func (s *memoryStore) Delete(_ context.Context, id string) (Item, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	it, ok := s.items[id]
	if !ok {
		return Item{}, errNotFound(id)
	}
	delete(s.items, id)
	return it, nil
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

func (s *memoryStore) Reserve(_ context.Context, lines []Line) ([]Shortage, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var short []Shortage
	for _, l := range lines {
		if it := s.items[l.ItemID]; it.Stock < l.Quantity {
			short = append(short, Shortage{ItemID: l.ItemID, Requested: l.Quantity, InStock: it.Stock})
		}
	}
	if len(short) > 0 {
		return short, nil
	}
	for _, l := range lines {
		it := s.items[l.ItemID]
		it.Stock -= l.Quantity
		s.items[l.ItemID] = it
	}
	return nil, nil
}

func (s *memoryStore) Release(_ context.Context, lines []Line) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range byItemID(lines) {
		it, ok := s.items[l.ItemID]
		switch {
		case !ok:
			return errNotFound(l.ItemID)
		case it.Stock > math.MaxInt64-l.Quantity:
			return errStockOverflow(l)
		}
	}
	for _, l := range lines {
		it := s.items[l.ItemID]
		it.Stock += l.Quantity
		s.items[l.ItemID] = it
	}
	return nil
}
