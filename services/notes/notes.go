// Package notes is a small example service with full CRUD over two
// in-memory collections, notes and tags, following the gateway's CRUD
// convention (GET_NOTE, LIST_NOTES, CREATE_NOTE, UPDATE_NOTE, DELETE_NOTE,
// and the same for TAG). It is what the example gateway configuration
// routes to.
//
//	srv, _ := socket.NewServer(socket.Config{Name: "notes"}, socket.WithKeys(keys))
//	_ = notes.Register(srv, notes.NewStore())
//	_ = srv.Serve(ctx, lis)
package notes

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/streamgate/streamgate/services/socket"
)

// Item is a note or a tag.
type Item struct {
	ID        string    `json:"id"`
	Text      string    `json:"text"`
	Owner     string    `json:"owner"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Input is the body of CREATE and UPDATE.
type Input struct {
	Text string `json:"text"`
}

// ListInput is the body of LIST: an optional owner filter and paging.
type ListInput struct {
	Owner     string `json:"owner,omitempty"`
	PageSize  int    `json:"page_size,omitempty"`
	PageToken string `json:"page_token,omitempty"`
}

// Page is LIST's result.
type Page struct {
	Items         []Item `json:"items"`
	NextPageToken string `json:"next_page_token,omitempty"`
}

// Store keeps the collections in memory. It is safe for concurrent use.
type Store struct {
	mu    sync.Mutex // guards items and next
	items map[string]map[string]Item
	next  int
}

// NewStore returns an empty store.
func NewStore() *Store { return &Store{items: map[string]map[string]Item{}} }

// Register adds the CRUD actions of notes and tags to a server.
func Register(srv *socket.Server, st *Store) error {
	for _, kind := range []string{"note", "tag"} {
		k := strings.ToUpper(kind)
		actions := []struct {
			name string
			h    socket.Handler
			opts []socket.ActionOption
		}{
			{"GET_" + k, socket.Typed(func(_ context.Context, id string, _ struct{}) (Item, error) { return st.get(kind, id) }), []socket.ActionOption{socket.Read(), socket.Doc("Returns one " + kind + ".")}},
			{"LIST_" + k + "S", socket.Typed(func(_ context.Context, _ string, in ListInput) (Page, error) { return st.list(kind, in) }), []socket.ActionOption{socket.Read(), socket.Doc("Lists " + kind + "s, filtered by owner, paged by page_size and page_token.")}},
			{"CREATE_" + k, socket.Typed(func(ctx context.Context, _ string, in Input) (Item, error) { return st.create(ctx, kind, in) }), []socket.ActionOption{socket.Doc("Creates a " + kind + " owned by the caller.")}},
			{"UPDATE_" + k, socket.Typed(func(ctx context.Context, id string, in Input) (Item, error) { return st.update(ctx, kind, id, in) }), []socket.ActionOption{socket.Idempotent(), socket.Doc("Replaces a " + kind + "'s text; owner or admin only.")}},
			{"DELETE_" + k, socket.Typed(func(ctx context.Context, id string, _ struct{}) (Item, error) { return st.delete(ctx, kind, id) }), []socket.ActionOption{socket.Idempotent(), socket.Doc("Deletes a " + kind + "; owner or admin only.")}},
		}
		for _, a := range actions {
			if err := srv.Handle(a.name, a.h, a.opts...); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *Store) get(kind, id string) (Item, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	it, ok := s.items[kind][id]
	if !ok {
		return Item{}, socket.Errorf(socket.CodeNotFound, "no %s %q", kind, id)
	}
	return it, nil
}

func (s *Store) list(kind string, in ListInput) (Page, error) {
	if in.PageSize < 0 || in.PageSize > 1000 {
		return Page{}, socket.Errorf(socket.CodeInvalidArgument, "page_size must be between 0 and 1000")
	}
	if in.PageSize == 0 {
		in.PageSize = 50
	}
	s.mu.Lock()
	var all []Item
	for _, it := range s.items[kind] {
		if in.Owner == "" || it.Owner == in.Owner {
			all = append(all, it)
		}
	}
	s.mu.Unlock()
	slices.SortFunc(all, func(a, b Item) int { return cmpID(a.ID, b.ID) })
	start := 0
	if in.PageToken != "" {
		start = slices.IndexFunc(all, func(it Item) bool { return cmpID(it.ID, in.PageToken) > 0 })
		if start < 0 {
			start = len(all)
		}
	}
	end := min(start+in.PageSize, len(all))
	p := Page{Items: append([]Item{}, all[start:end]...)}
	if end < len(all) {
		p.NextPageToken = all[end-1].ID
	}
	return p, nil
}

func (s *Store) create(ctx context.Context, kind string, in Input) (Item, error) {
	if strings.TrimSpace(in.Text) == "" {
		return Item{}, socket.Errorf(socket.CodeInvalidArgument, "text is required")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.next++
	it := Item{ID: strconv.Itoa(s.next), Text: in.Text, Owner: socket.MetaFrom(ctx).Principal.Subject, UpdatedAt: time.Now().UTC()}
	if s.items[kind] == nil {
		s.items[kind] = map[string]Item{}
	}
	s.items[kind][it.ID] = it
	return it, nil
}

func (s *Store) update(ctx context.Context, kind, id string, in Input) (Item, error) {
	if strings.TrimSpace(in.Text) == "" {
		return Item{}, socket.Errorf(socket.CodeInvalidArgument, "text is required")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	it, err := s.owned(ctx, kind, id)
	if err != nil {
		return Item{}, err
	}
	it.Text, it.UpdatedAt = in.Text, time.Now().UTC()
	s.items[kind][id] = it
	return it, nil
}

func (s *Store) delete(ctx context.Context, kind, id string) (Item, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	it, err := s.owned(ctx, kind, id)
	if err != nil {
		return Item{}, err
	}
	delete(s.items[kind], id)
	return it, nil
}

// owned returns an item the caller may change: their own, or any for an
// admin. Callers hold s.mu.
func (s *Store) owned(ctx context.Context, kind, id string) (Item, error) {
	it, ok := s.items[kind][id]
	if !ok {
		return Item{}, socket.Errorf(socket.CodeNotFound, "no %s %q", kind, id)
	}
	p := socket.MetaFrom(ctx).Principal
	if it.Owner != p.Subject && !p.HasRole("admin") {
		return Item{}, socket.Errorf(socket.CodePermissionDenied, "%s %q belongs to someone else", kind, id)
	}
	return it, nil
}

// cmpID orders numeric ids numerically.
func cmpID(a, b string) int {
	x, errA := strconv.Atoi(a)
	y, errB := strconv.Atoi(b)
	if errA == nil && errB == nil {
		return x - y
	}
	return strings.Compare(a, b)
}
