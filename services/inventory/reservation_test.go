package inventory_test

import (
	"context"
	"encoding/json"
	"slices"
	"sync"
	"testing"

	"github.com/streamgate/streamgate/services/inventory"
	"github.com/streamgate/streamgate/services/socket"
	"github.com/streamgate/streamgate/services/socket/caller"
	"github.com/streamgate/streamgate/services/socket/sockettest"
	"github.com/streamgate/streamgate/status"
)

// wireReservation is RESERVE_STOCK's and RELEASE_STOCK's answer as the
// wire carries it.
type wireReservation struct {
	ReservationID string           `json:"reservation_id"`
	Reserved      []inventory.Line `json:"reserved"`
	Released      []inventory.Line `json:"released"`
	Status        string           `json:"status"`
}

// reservationTest is one inventory server on a store, with items a (stock
// 5) and b (stock 3).
type reservationTest struct {
	t    *testing.T
	c    *caller.Client
	st   inventory.Store
	user context.Context
}

func newReservationTest(t *testing.T, st inventory.Store) *reservationTest {
	t.Helper()
	c := serve(t, st)
	seed(t, c,
		inventory.Item{ID: "a", Name: "A", PriceCents: 100, Stock: 5},
		inventory.Item{ID: "b", Name: "B", PriceCents: 250, Stock: 3},
	)
	return &reservationTest{t: t, c: c, st: st, user: sockettest.As(t, "v1", "svc-gateway")}
}

// call sends action with the reservation id and body and decodes the answer.
func (r *reservationTest) call(action, id, body string) (wireReservation, error) {
	r.t.Helper()
	raw, err := r.c.Request(r.user, action, id, json.RawMessage(body))
	if err != nil {
		return wireReservation{}, err
	}
	var out wireReservation
	if err := json.Unmarshal(raw, &out); err != nil {
		r.t.Fatalf("%s answered %s: %v", action, raw, err)
	}
	return out, nil
}

// must is call that fails the test on an error.
func (r *reservationTest) must(action, id, body string) wireReservation {
	r.t.Helper()
	out, err := r.call(action, id, body)
	if err != nil {
		r.t.Fatalf("%s %s: %v", action, id, err)
	}
	return out
}

func (r *reservationTest) wantStock(a, b int64) {
	r.t.Helper()
	if got := stockOf(r.t, r.st, "a"); got != a {
		r.t.Errorf("stock of a = %d, want %d", got, a)
	}
	if got := stockOf(r.t, r.st, "b"); got != b {
		r.t.Errorf("stock of b = %d, want %d", got, b)
	}
}

const (
	twoA      = `{"lines":[{"item_id":"a","quantity":2}]}`
	twoAOneB  = `{"lines":[{"item_id":"a","quantity":1},{"item_id":"b","quantity":1},{"item_id":"a","quantity":1}]}`
	orderOfAB = `{"order":{"id":"ord_1","lines":[{"item_id":"a","quantity":2,"unit_price_cents":100},{"item_id":"b","quantity":1}]}}`
)

func TestReserveStockOncePerID(t *testing.T) {
	forEachStore(t, func(t *testing.T, st inventory.Store) {
		r := newReservationTest(t, st)
		first := r.must("RESERVE_STOCK", "pur_1", twoAOneB)
		want := wireReservation{ReservationID: "pur_1", Reserved: []inventory.Line{{ItemID: "a", Quantity: 2}, {ItemID: "b", Quantity: 1}}, Status: "held"}
		if first.ReservationID != want.ReservationID || !slices.Equal(first.Reserved, want.Reserved) || first.Status != want.Status {
			t.Fatalf("RESERVE_STOCK = %+v, want %+v", first, want)
		}
		r.wantStock(3, 2)

		// The same lines again, in another shape: the stored reservation,
		// no more stock taken.
		again := r.must("RESERVE_STOCK", "pur_1", orderOfAB)
		if again.ReservationID != "pur_1" || !slices.Equal(again.Reserved, want.Reserved) || again.Status != "held" {
			t.Fatalf("RESERVE_STOCK again = %+v, want %+v", again, want)
		}
		r.wantStock(3, 2)

		// Different lines under the same id: refused, nothing changes.
		_, err := r.call("RESERVE_STOCK", "pur_1", twoA)
		if e := status.AsError(err); status.CodeOf(err) != socket.CodeConflict || e.Details[socket.DetailReason] != inventory.ReasonReservationMismatch {
			t.Fatalf("RESERVE_STOCK with other lines: %v, want CONFLICT %s", err, inventory.ReasonReservationMismatch)
		}
		r.wantStock(3, 2)

		// Another id takes stock again.
		r.must("RESERVE_STOCK", "pur_2", twoA)
		r.wantStock(1, 2)
	})
}

func TestReserveStockIDFromIdempotencyKey(t *testing.T) {
	t.Parallel()
	r := newReservationTest(t, inventory.NewMemoryStore())
	m := socket.MetaFrom(r.user)
	m.IdempotencyKey = "key-1"
	r.user = caller.ContextWithMeta(r.user, m)
	for range 2 {
		got := r.must("RESERVE_STOCK", "", twoA)
		if got.ReservationID != "key-1" || got.Status != "held" {
			t.Fatalf("RESERVE_STOCK = %+v, want reservation key-1 held", got)
		}
	}
	r.wantStock(3, 3)
	// The resource id wins over the key.
	if got := r.must("RESERVE_STOCK", "pur_9", twoA); got.ReservationID != "pur_9" {
		t.Fatalf("RESERVE_STOCK with an id = %+v, want reservation pur_9", got)
	}
	r.wantStock(1, 3)
}

func TestReserveStockNeedsAnID(t *testing.T) {
	t.Parallel()
	r := newReservationTest(t, inventory.NewMemoryStore())
	_, err := r.call("RESERVE_STOCK", "", twoA)
	if status.CodeOf(err) != socket.CodeInvalidArgument || status.AsError(err).Message != "a reservation id is required" {
		t.Fatalf("RESERVE_STOCK without an id: %v, want INVALID_ARGUMENT", err)
	}
	_, err = r.call("RELEASE_STOCK", "", "")
	if status.CodeOf(err) != socket.CodeInvalidArgument {
		t.Fatalf("RELEASE_STOCK without an id: %v, want INVALID_ARGUMENT", err)
	}
	r.wantStock(5, 3)
}

func TestReserveStockAllOrNone(t *testing.T) {
	forEachStore(t, func(t *testing.T, st inventory.Store) {
		r := newReservationTest(t, st)
		short := `{"lines":[{"item_id":"a","quantity":2},{"item_id":"b","quantity":4}]}`
		_, err := r.call("RESERVE_STOCK", "pur_1", short)
		if e := status.AsError(err); status.CodeOf(err) != socket.CodeFailedPrecondition || e.Details[socket.DetailReason] != inventory.ReasonOutOfStock {
			t.Fatalf("RESERVE_STOCK short: %v, want FAILED_PRECONDITION out_of_stock", err)
		}
		r.wantStock(5, 3)
		// Nothing was recorded: after a restock the same id reserves.
		admin := sockettest.As(t, "v1", "root", "admin")
		if _, err := r.c.Request(admin, "UPDATE_ITEM", "b", json.RawMessage(`{"stock":4}`)); err != nil {
			t.Fatal(err)
		}
		if got := r.must("RESERVE_STOCK", "pur_1", short); got.Status != "held" {
			t.Fatalf("RESERVE_STOCK after restock = %+v", got)
		}
		r.wantStock(3, 0)
	})
}

func TestReserveStockConcurrentlyWithOneID(t *testing.T) {
	forEachStore(t, func(t *testing.T, st inventory.Store) {
		r := newReservationTest(t, st)
		var wg sync.WaitGroup
		for range 20 {
			wg.Go(func() {
				got, err := r.call("RESERVE_STOCK", "pur_1", twoAOneB)
				if err != nil {
					t.Error(err)
					return
				}
				if got.ReservationID != "pur_1" || got.Status != "held" || len(got.Reserved) != 2 {
					t.Errorf("RESERVE_STOCK = %+v", got)
				}
			})
		}
		wg.Wait()
		r.wantStock(3, 2)
	})
}

func TestReleaseStockOncePerReservation(t *testing.T) {
	forEachStore(t, func(t *testing.T, st inventory.Store) {
		r := newReservationTest(t, st)
		r.must("RESERVE_STOCK", "pur_1", twoAOneB)
		r.wantStock(3, 2)
		want := []inventory.Line{{ItemID: "a", Quantity: 2}, {ItemID: "b", Quantity: 1}}
		for i := range 2 {
			got := r.must("RELEASE_STOCK", "pur_1", "")
			if got.ReservationID != "pur_1" || got.Status != "released" || !slices.Equal(got.Released, want) {
				t.Fatalf("RELEASE_STOCK #%d = %+v, want pur_1 released %v", i+1, got, want)
			}
			r.wantStock(5, 3)
		}
		// A released reservation does not take stock again.
		_, err := r.call("RESERVE_STOCK", "pur_1", twoAOneB)
		if e := status.AsError(err); status.CodeOf(err) != socket.CodeFailedPrecondition || e.Details[socket.DetailReason] != inventory.ReasonReservationReleased {
			t.Fatalf("RESERVE_STOCK of a released id: %v, want FAILED_PRECONDITION %s", err, inventory.ReasonReservationReleased)
		}
		r.wantStock(5, 3)
	})
}

func TestReleaseStockConcurrently(t *testing.T) {
	forEachStore(t, func(t *testing.T, st inventory.Store) {
		r := newReservationTest(t, st)
		r.must("RESERVE_STOCK", "pur_1", twoAOneB)
		var wg sync.WaitGroup
		for range 20 {
			wg.Go(func() {
				got, err := r.call("RELEASE_STOCK", "pur_1", "")
				if err != nil {
					t.Error(err)
				} else if got.Status != "released" || len(got.Released) != 2 {
					t.Errorf("RELEASE_STOCK = %+v", got)
				}
			})
		}
		wg.Wait()
		r.wantStock(5, 3)
	})
}

func TestReleaseStockOfAnUnknownReservation(t *testing.T) {
	forEachStore(t, func(t *testing.T, st inventory.Store) {
		r := newReservationTest(t, st)
		r.must("RESERVE_STOCK", "pur_1", twoA)
		for _, body := range []string{"", twoA, orderOfAB} {
			got := r.must("RELEASE_STOCK", "pur_never", body)
			if got.Status != "unknown" || got.Released == nil || len(got.Released) != 0 {
				t.Fatalf("RELEASE_STOCK of an unknown id with %q = %+v, want status unknown, released []", body, got)
			}
			r.wantStock(3, 3)
		}
	})
}

func TestReleaseStockOnlyOfItsReservation(t *testing.T) {
	forEachStore(t, func(t *testing.T, st inventory.Store) {
		r := newReservationTest(t, st)
		r.must("RESERVE_STOCK", "pur_1", twoA)
		r.must("RESERVE_STOCK", "pur_2", twoAOneB)
		r.wantStock(1, 2)
		got := r.must("RELEASE_STOCK", "pur_1", twoA) // lines given and matching
		if got.Status != "released" || !slices.Equal(got.Released, []inventory.Line{{ItemID: "a", Quantity: 2}}) {
			t.Fatalf("RELEASE_STOCK pur_1 = %+v", got)
		}
		r.wantStock(3, 2)
		// pur_2 is still held and its lines must match when given.
		_, err := r.call("RELEASE_STOCK", "pur_2", twoA)
		if e := status.AsError(err); status.CodeOf(err) != socket.CodeConflict || e.Details[socket.DetailReason] != inventory.ReasonReservationMismatch {
			t.Fatalf("RELEASE_STOCK pur_2 with other lines: %v, want CONFLICT %s", err, inventory.ReasonReservationMismatch)
		}
		r.wantStock(3, 2)
		if got := r.must("RESERVE_STOCK", "pur_2", twoAOneB); got.Status != "held" {
			t.Fatalf("pur_2 = %+v, want held", got)
		}
		r.wantStock(3, 2)
		r.must("RELEASE_STOCK", "pur_2", orderOfAB)
		r.wantStock(5, 3)
	})
}

// TestReleaseStockAtAVersion: a RELEASE_STOCK given the version it read
// (as a reconciler does) releases nothing once the purchase reserved its
// id again, and releases at the version it is held at.
func TestReleaseStockAtAVersion(t *testing.T) {
	forEachStore(t, func(t *testing.T, st inventory.Store) {
		r := newReservationTest(t, st)
		r.must("RESERVE_STOCK", "pur_1", twoA)
		r.must("RESERVE_STOCK", "pur_1", twoA) // the purchase continued: version 2
		r.wantStock(3, 3)
		_, err := r.call("RELEASE_STOCK", "pur_1", `{"version":1}`)
		if e := status.AsError(err); status.CodeOf(err) != socket.CodeConflict || e.Details[socket.DetailReason] != inventory.ReasonReservationChanged || e.Details["version"] != 2.0 {
			t.Fatalf("RELEASE_STOCK at version 1: %v, want CONFLICT %s at version 2", err, inventory.ReasonReservationChanged)
		}
		r.wantStock(3, 3)
		if _, err := r.call("RELEASE_STOCK", "pur_1", `{"version":-1}`); status.CodeOf(err) != socket.CodeInvalidArgument {
			t.Fatalf("RELEASE_STOCK at version -1: %v, want INVALID_ARGUMENT", err)
		}
		if got := r.must("RELEASE_STOCK", "pur_1", `{"version":2,"lines":[{"item_id":"a","quantity":2}]}`); got.Status != "released" {
			t.Fatalf("RELEASE_STOCK at version 2 = %+v", got)
		}
		r.wantStock(5, 3)
	})
}

func TestListReservationsOverTheSocket(t *testing.T) {
	t.Parallel()
	r := newReservationTest(t, inventory.NewMemoryStore())
	for _, id := range []string{"p3", "p1", "p2"} {
		r.must("RESERVE_STOCK", id, `{"lines":[{"item_id":"a","quantity":1}]}`)
	}
	r.must("RELEASE_STOCK", "p2", "")
	admin := sockettest.As(t, "v1", "root", "admin")
	tests := []struct {
		name  string
		in    inventory.ReservationsInput
		pages [][]string
	}{
		{"all", inventory.ReservationsInput{}, [][]string{{"p1", "p2", "p3"}}},
		{"pages of 2", inventory.ReservationsInput{PageSize: 2}, [][]string{{"p1", "p2"}, {"p3"}}},
		{"held", inventory.ReservationsInput{Status: inventory.ReservationHeld, PageSize: 1}, [][]string{{"p1"}, {"p3"}}},
		{"released", inventory.ReservationsInput{Status: inventory.ReservationReleased}, [][]string{{"p2"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.in
			for i, want := range tc.pages {
				page, err := caller.Call[inventory.ReservationPage](admin, r.c, "LIST_RESERVATIONS", "", in)
				if err != nil {
					t.Fatal(err)
				}
				got := []string{}
				for _, res := range page.Reservations {
					got = append(got, res.ID)
					if res.CreatedAt.IsZero() || len(res.Reserved) != 1 {
						t.Errorf("reservation %+v", res)
					}
				}
				if !slices.Equal(got, want) {
					t.Fatalf("page %d = %v, want %v", i+1, got, want)
				}
				if last := i == len(tc.pages)-1; last != (page.NextPageToken == "") {
					t.Fatalf("page %d: next_page_token %q", i+1, page.NextPageToken)
				}
				in.PageToken = page.NextPageToken
			}
		})
	}
}
