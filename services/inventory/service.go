// Package inventory is the example service that owns the items for sale,
// their prices and their stock. Anyone may read items; only admins change
// them; the purchase pipeline checks and reserves stock (and releases it
// again when a later step fails), and the orders service reads prices.
//
//	db, _ := sqldb.Open(ctx, sqldb.SQLite, "data/inventory.db")
//	st, _ := inventory.NewSQLStore(ctx, db) // or inventory.NewMemoryStore()
//	srv, _ := socket.NewServer(socket.Config{Name: "inventory"}, socket.WithKeys(keys))
//	_ = inventory.Register(srv, st)
//	_ = srv.Serve(ctx, lis)
//
// Actions: GET_ITEM, LIST_ITEMS, CREATE_ITEM, UPDATE_ITEM, DELETE_ITEM,
// CHECK_AVAILABLE, REQUIRE_AVAILABLE, RESERVE_STOCK, RELEASE_STOCK,
// LIST_RESERVATIONS and GET_PRICES. Lines name an item and a quantity;
// lines naming the same item add up. Under an idempotency key (the
// gateway's derived key, socket.Meta) CREATE_ITEM, UPDATE_ITEM and
// DELETE_ITEM apply once: a retry answers the first result, marked
// replayed; the key with another request is CONFLICT, reason
// idempotency_key_reused.
//
// Stock is taken by reservations, records with an id the caller chooses
// (the purchase's id; else the request's Idempotency-Key). RESERVE_STOCK
// records the reservation as held and takes stock for all its lines or
// none, in one transaction, never letting stock go below zero, across
// goroutines and instances sharing a database. It does so once per id:
// the same id and lines again, however many at once, answer the stored
// reservation as a replay; other lines are CONFLICT (reservation_mismatch);
// a released id is FAILED_PRECONDITION (reservation_released).
// RELEASE_STOCK, its compensation, puts a held reservation's stock back
// exactly once and marks it released; releasing it again answers it
// unchanged, and an id that was never reserved answers status "unknown"
// and touches no stock: a release only ever undoes what its own
// reservation took. LIST_RESERVATIONS lets an admin (a reconciler) find
// the reservations still held by abandoned purchases; each carries a
// version that every RESERVE_STOCK of its id (a purchase continued) moves
// on, and a RELEASE_STOCK given that version releases the reservation
// only if it is still held at it.
package inventory

import (
	"context"
	"errors"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/streamgate/streamgate/services/internal/access"
	"github.com/streamgate/streamgate/services/internal/actions"
	"github.com/streamgate/streamgate/services/internal/events"
	"github.com/streamgate/streamgate/services/internal/ids"
	"github.com/streamgate/streamgate/services/internal/once"
	"github.com/streamgate/streamgate/services/internal/paging"
	"github.com/streamgate/streamgate/services/socket"
)

// ReasonOutOfStock is the details reason of the FAILED_PRECONDITION that
// REQUIRE_AVAILABLE and RESERVE_STOCK answer when stock is short; details
// also carry "missing", a list of Shortage.
const ReasonOutOfStock = "out_of_stock"

const (
	maxNameLen = 200 // characters
	idPrefix   = "itm_"
)

// validID is what an id chosen by an admin may look like: it must fit in a
// URL path segment.
var validID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// CreateInput is the body of CREATE_ITEM. ID is optional (one is made when
// empty); Name and PriceCents are required.
type CreateInput struct {
	ID         string `json:"id,omitempty"`
	Name       string `json:"name"`
	PriceCents *int64 `json:"price_cents"`
	Stock      int64  `json:"stock,omitempty"`
}

// UpdateInput is the body of UPDATE_ITEM: only the fields set change.
type UpdateInput struct {
	Name       *string `json:"name,omitempty"`
	PriceCents *int64  `json:"price_cents,omitempty"`
	Stock      *int64  `json:"stock,omitempty"`
}

// ListInput is the body of LIST_ITEMS: an optional name filter (a
// case-sensitive substring) and paging.
type ListInput struct {
	Name      string `json:"name,omitempty"`
	PageSize  int    `json:"page_size,omitempty"`
	PageToken string `json:"page_token,omitempty"`
}

// Page is the result of LIST_ITEMS (paging.Page).
type Page = paging.Page[Item]

// Availability is the result of CHECK_AVAILABLE and REQUIRE_AVAILABLE.
// Missing is never null.
type Availability struct {
	Available bool       `json:"available"`
	Missing   []Shortage `json:"missing"`
}

// PricesInput is the body of GET_PRICES.
type PricesInput struct {
	ItemIDs []string `json:"item_ids"`
}

// Prices is the result of GET_PRICES: cents by item id.
type Prices struct {
	Prices map[string]int64 `json:"prices"`
}

type service struct {
	st Store
}

// Register adds the inventory actions to srv, kept in st.
func Register(srv *socket.Server, st Store) error {
	if st == nil {
		return errors.New("inventory: nil store")
	}
	s := &service{st: publishing{Store: st, pub: events.New(srv)}}
	keyed := once.Keyed(s.st) // item writes apply once per idempotency key
	r := actions.On(srv)
	r.Handle("GET_ITEM", socket.Typed(s.get), socket.Read(),
		socket.Doc("Returns one item {id, name, price_cents, stock}. Anyone may read."))
	r.Handle("LIST_ITEMS", socket.Typed(s.list), socket.Read(),
		socket.Doc("Lists items by id, filtered by name (case-sensitive substring), paged by page_size (default 50, max 1000) and page_token. Anyone may read."))
	r.Handle("CREATE_ITEM", access.AdminOnly("create items")(keyed(socket.Typed(s.create))),
		socket.Doc("Creates an item from {id?, name, price_cents, stock?}; admins only. A taken id is ALREADY_EXISTS."))
	r.Handle("UPDATE_ITEM", access.AdminOnly("update items")(keyed(socket.Typed(s.update))), socket.Idempotent(),
		socket.Doc("Changes the fields given of {name, price_cents, stock}; admins only."))
	r.Handle("DELETE_ITEM", access.AdminOnly("delete items")(keyed(socket.Typed(s.delete))), socket.Idempotent(),
		socket.Doc("Deletes an item and returns it; admins only."))
	r.Handle("CHECK_AVAILABLE", socket.Typed(s.check), socket.Read(),
		socket.Doc(`Reports whether stock covers {"lines": [{item_id, quantity}]} or {"order": {"lines": …}}: {available, missing: [{item_id, requested, in_stock}]}. Never fails for lack of stock.`))
	r.Handle("REQUIRE_AVAILABLE", socket.Typed(s.require), socket.Read(),
		socket.Doc("CHECK_AVAILABLE that fails with FAILED_PRECONDITION (reason out_of_stock, details missing) when stock is short; for pipelines."))
	r.Handle("RESERVE_STOCK", socket.Typed(s.reserve), socket.Idempotent(),
		socket.Doc(`Reserves stock for {"lines": […]} or {"order": {"lines": …}} under a reservation id: the resource id, else the Idempotency-Key, else INVALID_ARGUMENT. The first time it takes the quantities out of stock, all or none, and records the reservation: {reservation_id, reserved: [{item_id, quantity}], status: "held", created_at}; short stock is FAILED_PRECONDITION (reason out_of_stock, details missing) and records nothing. The same id and lines again answer the stored reservation (a replay) without taking stock; other lines are CONFLICT (reason reservation_mismatch); a released id is FAILED_PRECONDITION (reason reservation_released).`))
	r.Handle("RELEASE_STOCK", socket.Typed(s.release), socket.Idempotent(),
		socket.Doc(`RESERVE_STOCK's compensation, for reservation id (required): puts a held reservation's stock back, all lines or none, exactly once, and answers {reservation_id, released: [{item_id, quantity}], status: "released"}; a released one is answered unchanged. An id never reserved answers {released: [], status: "unknown"} and touches no stock. A body with lines is optional; given, it must be the reservation's (else CONFLICT, reason reservation_mismatch). A version (from LIST_RESERVATIONS) is optional; given, a reservation held at another version (reserved again since: its purchase goes on) is not released: CONFLICT, reason reservation_changed. Items deleted since the reservation are skipped.`))
	r.Handle("LIST_RESERVATIONS", access.AdminOnly("list reservations")(socket.Typed(s.listReservations)), socket.Read(),
		socket.Doc(`Lists reservations by id, filtered by status ("held" or "released"), paged by page_size (default 50, max 1000) and page_token: {reservations: [{reservation_id, reserved, status, version, created_at}], next_page_token}. Admins only; for reconciling reservations held by abandoned purchases.`))
	r.Handle("GET_PRICES", socket.Typed(s.prices), socket.Read(),
		socket.Doc(`Returns {"prices": {id: cents}} for {"item_ids": […]}; unknown ids are NOT_FOUND.`))
	return r.Err()
}

func (s *service) get(ctx context.Context, id string, _ struct{}) (Item, error) {
	if err := requireID(id); err != nil {
		return Item{}, err
	}
	it, err := s.st.Get(ctx, id)
	return it, storeError(err, id)
}

func (s *service) list(ctx context.Context, _ string, in ListInput) (Page, error) {
	size, err := paging.Size(in.PageSize)
	if err != nil {
		return Page{}, err
	}
	items, err := s.st.List(ctx, ListQuery{NameContains: in.Name, After: in.PageToken, Limit: size + 1})
	if err != nil {
		return Page{}, err
	}
	return paging.PageOf(items, size, func(it Item) string { return it.ID }), nil
}

func (s *service) create(ctx context.Context, _ string, in CreateInput) (Item, error) {
	name, err := checkName(in.Name)
	if err != nil {
		return Item{}, err
	}
	switch {
	case in.ID != "" && !validID.MatchString(in.ID):
		return Item{}, socket.Errorf(socket.CodeInvalidArgument, "id must be 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit")
	case in.PriceCents == nil:
		return Item{}, socket.Errorf(socket.CodeInvalidArgument, "price_cents is required")
	case *in.PriceCents < 0:
		return Item{}, socket.Errorf(socket.CodeInvalidArgument, "price_cents must not be negative")
	case in.Stock < 0:
		return Item{}, socket.Errorf(socket.CodeInvalidArgument, "stock must not be negative")
	}
	it := Item{ID: in.ID, Name: name, PriceCents: *in.PriceCents, Stock: in.Stock}
	if it.ID != "" {
		return it, storeError(s.st.Create(ctx, it), it.ID)
	}
	for try := 1; ; try++ { // a made id is taken only by a rare collision
		it.ID = ids.New(idPrefix)
		err := s.st.Create(ctx, it)
		if try == 3 || !errors.Is(err, ErrExists) {
			return it, storeError(err, it.ID)
		}
	}
}

func (s *service) update(ctx context.Context, id string, in UpdateInput) (Item, error) {
	if err := requireID(id); err != nil {
		return Item{}, err
	}
	if in.Name != nil {
		name, err := checkName(*in.Name)
		if err != nil {
			return Item{}, err
		}
		in.Name = &name
	}
	switch {
	case in.PriceCents != nil && *in.PriceCents < 0:
		return Item{}, socket.Errorf(socket.CodeInvalidArgument, "price_cents must not be negative")
	case in.Stock != nil && *in.Stock < 0:
		return Item{}, socket.Errorf(socket.CodeInvalidArgument, "stock must not be negative")
	}
	it, err := s.st.Update(ctx, id, in)
	return it, storeError(err, id)
}

func (s *service) delete(ctx context.Context, id string, _ struct{}) (Item, error) {
	if err := requireID(id); err != nil {
		return Item{}, err
	}
	it, err := s.st.Delete(ctx, id)
	return it, storeError(err, id)
}

// requireID refuses an action on an item without the item's id.
func requireID(id string) error {
	if id == "" {
		return socket.Errorf(socket.CodeInvalidArgument, "item id is required")
	}
	return nil
}

func (s *service) check(ctx context.Context, _ string, in LinesInput) (Availability, error) {
	lines, err := in.merged()
	if err != nil {
		return Availability{}, err
	}
	ids := make([]string, len(lines))
	for i, l := range lines {
		ids[i] = l.ItemID
	}
	items, err := s.st.Lookup(ctx, ids)
	if err != nil {
		return Availability{}, err
	}
	missing := []Shortage{}
	for _, l := range lines {
		if stock := items[l.ItemID].Stock; stock < l.Quantity {
			missing = append(missing, Shortage{ItemID: l.ItemID, Requested: l.Quantity, InStock: stock})
		}
	}
	return Availability{Available: len(missing) == 0, Missing: missing}, nil
}

func (s *service) require(ctx context.Context, id string, in LinesInput) (Availability, error) {
	a, err := s.check(ctx, id, in)
	if err != nil {
		return Availability{}, err
	}
	if !a.Available {
		return Availability{}, outOfStock(a.Missing)
	}
	return a, nil
}

func (s *service) prices(ctx context.Context, _ string, in PricesInput) (Prices, error) {
	switch {
	case len(in.ItemIDs) == 0:
		return Prices{}, socket.Errorf(socket.CodeInvalidArgument, "item_ids: at least one id is required")
	case len(in.ItemIDs) > maxLines:
		return Prices{}, socket.Errorf(socket.CodeInvalidArgument, "item_ids: at most %d ids", maxLines)
	}
	ids := make([]string, 0, len(in.ItemIDs))
	seen := make(map[string]bool, len(in.ItemIDs))
	for i, id := range in.ItemIDs {
		if id == "" {
			return Prices{}, socket.Errorf(socket.CodeInvalidArgument, "item_ids[%d] must not be empty", i)
		}
		if !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	items, err := s.st.Lookup(ctx, ids)
	if err != nil {
		return Prices{}, err
	}
	out := Prices{Prices: make(map[string]int64, len(ids))}
	var unknown []string
	for _, id := range ids {
		it, ok := items[id]
		if !ok {
			unknown = append(unknown, id)
			continue
		}
		out.Prices[id] = it.PriceCents
	}
	if len(unknown) > 0 {
		quoted := make([]string, len(unknown))
		for i, id := range unknown {
			quoted[i] = strconv.Quote(id)
		}
		return Prices{}, socket.Errorf(socket.CodeNotFound, "no items %s", strings.Join(quoted, ", ")).
			WithDetails(map[string]any{"item_ids": unknown})
	}
	return out, nil
}

func checkName(name string) (string, error) {
	name = strings.TrimSpace(name)
	switch {
	case name == "":
		return "", socket.Errorf(socket.CodeInvalidArgument, "name is required")
	case utf8.RuneCountInString(name) > maxNameLen:
		return "", socket.Errorf(socket.CodeInvalidArgument, "name must be at most %d characters", maxNameLen)
	}
	return name, nil
}
