package inventory_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/streamgate/streamgate/services/internal/sqldb"
	"github.com/streamgate/streamgate/services/internal/sqldb/sqltest"
	"github.com/streamgate/streamgate/services/inventory"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// storeKinds opens a fresh store of each kind; the PostgreSQL one skips
// when STREAMGATE_TEST_POSTGRES is unset.
var storeKinds = []struct {
	name string
	open func(t *testing.T) inventory.Store
}{
	{"memory", func(*testing.T) inventory.Store { return inventory.NewMemoryStore() }},
	{"sqlite", func(t *testing.T) inventory.Store { return openSQL(t, sqltest.SQLite(t)) }},
	{"postgres", func(t *testing.T) inventory.Store { return openSQL(t, sqltest.Postgres(t)) }},
}

func openSQL(t *testing.T, db *sqldb.DB) inventory.Store {
	t.Helper()
	st, err := inventory.NewSQLStore(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// forEachStore runs fn as a parallel subtest on a fresh store of each kind.
func forEachStore(t *testing.T, fn func(t *testing.T, st inventory.Store)) {
	t.Helper()
	for _, k := range storeKinds {
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			fn(t, k.open(t))
		})
	}
}

func mustCreate(t *testing.T, st inventory.Store, items ...inventory.Item) {
	t.Helper()
	for _, it := range items {
		if err := st.Create(context.Background(), it); err != nil {
			t.Fatalf("create %+v: %v", it, err)
		}
	}
}

func stockOf(t *testing.T, st inventory.Store, id string) int64 {
	t.Helper()
	it, err := st.Get(context.Background(), id)
	if err != nil {
		t.Fatalf("get %s: %v", id, err)
	}
	return it.Stock
}

func ptr[T any](v T) *T { return &v }

func TestStoreCRUD(t *testing.T) {
	forEachStore(t, func(t *testing.T, st inventory.Store) {
		ctx := context.Background()
		apple := inventory.Item{ID: "apple", Name: "Apple", PriceCents: 120, Stock: 5}
		mustCreate(t, st, apple)
		if got, err := st.Get(ctx, "apple"); err != nil || got != apple {
			t.Fatalf("Get = %+v, %v; want %+v", got, err, apple)
		}
		if err := st.Create(ctx, inventory.Item{ID: "apple", Name: "Other"}); !errors.Is(err, inventory.ErrExists) {
			t.Fatalf("Create with a taken id: %v, want ErrExists", err)
		}
		updates := []struct {
			name  string
			patch inventory.UpdateInput
			want  inventory.Item
		}{
			{"nothing", inventory.UpdateInput{}, apple},
			{"name only", inventory.UpdateInput{Name: ptr("Green apple")}, inventory.Item{ID: "apple", Name: "Green apple", PriceCents: 120, Stock: 5}},
			{"price and stock", inventory.UpdateInput{PriceCents: ptr[int64](0), Stock: ptr[int64](9)}, inventory.Item{ID: "apple", Name: "Green apple", PriceCents: 0, Stock: 9}},
		}
		for _, u := range updates {
			got, err := st.Update(ctx, "apple", u.patch)
			if err != nil || got != u.want {
				t.Fatalf("Update %s = %+v, %v; want %+v", u.name, got, err, u.want)
			}
			if got, _ := st.Get(ctx, "apple"); got != u.want {
				t.Fatalf("Get after Update %s = %+v; want %+v", u.name, got, u.want)
			}
		}
		if _, err := st.Update(ctx, "pear", inventory.UpdateInput{Name: ptr("x")}); !errors.Is(err, inventory.ErrNotFound) {
			t.Fatalf("Update unknown: %v, want ErrNotFound", err)
		}
		got, err := st.Delete(ctx, "apple")
		if want := (inventory.Item{ID: "apple", Name: "Green apple", Stock: 9}); err != nil || got != want {
			t.Fatalf("Delete = %+v, %v; want %+v", got, err, want)
		}
		for _, op := range []func() error{
			func() error { _, err := st.Get(ctx, "apple"); return err },
			func() error { _, err := st.Delete(ctx, "apple"); return err },
		} {
			if err := op(); !errors.Is(err, inventory.ErrNotFound) {
				t.Fatalf("after Delete: %v, want ErrNotFound", err)
			}
		}
	})
}

func TestStoreList(t *testing.T) {
	forEachStore(t, func(t *testing.T, st inventory.Store) {
		// Byte order: "B" < "_x" < "a" < "b" < "c"; a locale collation
		// would order them differently.
		mustCreate(t, st,
			inventory.Item{ID: "c", Name: "grape"},
			inventory.Item{ID: "a", Name: "Apple"},
			inventory.Item{ID: "_x", Name: "pineapple"},
			inventory.Item{ID: "B", Name: "banana"},
			inventory.Item{ID: "b", Name: "apple pie"},
		)
		tests := []struct {
			name string
			q    inventory.ListQuery
			want []string
		}{
			{"first page", inventory.ListQuery{Limit: 2}, []string{"B", "_x"}},
			{"next page", inventory.ListQuery{After: "_x", Limit: 2}, []string{"a", "b"}},
			{"last page", inventory.ListQuery{After: "b", Limit: 2}, []string{"c"}},
			{"past the end", inventory.ListQuery{After: "c", Limit: 2}, []string{}},
			{"all", inventory.ListQuery{Limit: 100}, []string{"B", "_x", "a", "b", "c"}},
			{"name is case-sensitive", inventory.ListQuery{NameContains: "apple", Limit: 100}, []string{"_x", "b"}},
			{"name and paging", inventory.ListQuery{NameContains: "ap", After: "_x", Limit: 100}, []string{"b", "c"}},
			{"no match", inventory.ListQuery{NameContains: "kiwi", Limit: 100}, []string{}},
		}
		for _, tc := range tests {
			items, err := st.List(context.Background(), tc.q)
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			got := []string{}
			for _, it := range items {
				got = append(got, it.ID)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("%s: ids %v, want %v", tc.name, got, tc.want)
			}
		}
	})
}

func TestStoreLookup(t *testing.T) {
	forEachStore(t, func(t *testing.T, st inventory.Store) {
		mustCreate(t, st, inventory.Item{ID: "a", Name: "A", PriceCents: 1}, inventory.Item{ID: "b", Name: "B", PriceCents: 2})
		got, err := st.Lookup(context.Background(), []string{"b", "zz", "a"})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got["a"].PriceCents != 1 || got["b"].PriceCents != 2 {
			t.Fatalf("Lookup = %+v", got)
		}
		if got, err := st.Lookup(context.Background(), nil); err != nil || len(got) != 0 {
			t.Fatalf("Lookup(nil) = %+v, %v", got, err)
		}
	})
}

// reservation makes a Reservation to hand to Store.Reserve.
func reservation(id string, lines ...inventory.Line) inventory.Reservation {
	return inventory.Reservation{ID: id, Reserved: lines, Version: 1, CreatedAt: time.Unix(1700000000, 123).UTC()}
}

// shortages returns the shortages of Store.Reserve's *OutOfStockError,
// or fails.
func shortages(t *testing.T, err error) []inventory.Shortage {
	t.Helper()
	var short *inventory.OutOfStockError
	if !errors.As(err, &short) || len(short.Missing) == 0 {
		t.Fatalf("Reserve: %v, want an *OutOfStockError with shortages", err)
	}
	return short.Missing
}

func TestStoreReserve(t *testing.T) {
	tests := []struct {
		name      string
		lines     []inventory.Line
		short     []inventory.Shortage
		wantStock map[string]int64 // after, for a: 5, b: 3
	}{
		{
			name:      "all lines covered",
			lines:     []inventory.Line{{ItemID: "b", Quantity: 3}, {ItemID: "a", Quantity: 2}},
			wantStock: map[string]int64{"a": 3, "b": 0},
		},
		{
			name:      "second line short leaves the first unchanged",
			lines:     []inventory.Line{{ItemID: "a", Quantity: 1}, {ItemID: "b", Quantity: 4}},
			short:     []inventory.Shortage{{ItemID: "b", Requested: 4, InStock: 3}},
			wantStock: map[string]int64{"a": 5, "b": 3},
		},
		{
			name:      "first line short",
			lines:     []inventory.Line{{ItemID: "a", Quantity: 6}, {ItemID: "b", Quantity: 1}},
			short:     []inventory.Shortage{{ItemID: "a", Requested: 6, InStock: 5}},
			wantStock: map[string]int64{"a": 5, "b": 3},
		},
		{
			name:      "every shortage reported in line order",
			lines:     []inventory.Line{{ItemID: "zz", Quantity: 1}, {ItemID: "b", Quantity: 9}, {ItemID: "a", Quantity: 6}},
			short:     []inventory.Shortage{{ItemID: "zz", Requested: 1, InStock: 0}, {ItemID: "b", Requested: 9, InStock: 3}, {ItemID: "a", Requested: 6, InStock: 5}},
			wantStock: map[string]int64{"a": 5, "b": 3},
		},
		{
			name:      "unknown item",
			lines:     []inventory.Line{{ItemID: "a", Quantity: 1}, {ItemID: "nope", Quantity: 1}},
			short:     []inventory.Shortage{{ItemID: "nope", Requested: 1, InStock: 0}},
			wantStock: map[string]int64{"a": 5, "b": 3},
		},
	}
	forEachStore(t, func(t *testing.T, st inventory.Store) {
		for i, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				ctx := context.Background()
				for id, stock := range map[string]int64{"a": 5, "b": 3} {
					_ = st.Create(ctx, inventory.Item{ID: id, Name: id})
					if _, err := st.Update(ctx, id, inventory.UpdateInput{Stock: ptr(stock)}); err != nil {
						t.Fatal(err)
					}
				}
				id := fmt.Sprint("r", i)
				want := reservation(id, tc.lines...)
				got, existed, err := st.Reserve(ctx, want)
				want.Status = inventory.ReservationHeld
				if tc.short == nil {
					if err != nil || existed || !reflect.DeepEqual(got, want) {
						t.Fatalf("Reserve = %+v, %v, %v; want %+v", got, existed, err, want)
					}
					if stored, err := st.GetReservation(ctx, id); err != nil || !reflect.DeepEqual(stored, want) {
						t.Errorf("GetReservation = %+v, %v; want %+v", stored, err, want)
					}
				} else {
					if short := shortages(t, err); !slices.Equal(short, tc.short) {
						t.Errorf("shortages %+v, want %+v", short, tc.short)
					}
					if _, err := st.GetReservation(ctx, id); !errors.Is(err, inventory.ErrNoReservation) {
						t.Errorf("GetReservation of a short reservation: %v, want ErrNoReservation", err)
					}
				}
				for id, want := range tc.wantStock {
					if got := stockOf(t, st, id); got != want {
						t.Errorf("stock of %s = %d, want %d", id, got, want)
					}
				}
			})
		}
	})
}

func TestStoreReserveOncePerID(t *testing.T) {
	forEachStore(t, func(t *testing.T, st inventory.Store) {
		ctx := context.Background()
		mustCreate(t, st, inventory.Item{ID: "a", Name: "A", Stock: 10})
		first := reservation("p1", inventory.Line{ItemID: "a", Quantity: 2})
		if _, existed, err := st.Reserve(ctx, first); err != nil || existed {
			t.Fatalf("Reserve = %v, %v", existed, err)
		}
		// The same id again, even with other lines: the stored one, no stock.
		other := reservation("p1", inventory.Line{ItemID: "a", Quantity: 3})
		other.CreatedAt = other.CreatedAt.Add(time.Hour)
		got, existed, err := st.Reserve(ctx, other)
		first.Status, first.Version = inventory.ReservationHeld, 2 // answered again while held
		if err != nil || !existed || !reflect.DeepEqual(got, first) {
			t.Fatalf("Reserve again = %+v, %v, %v; want %+v stored", got, existed, err, first)
		}
		if n := stockOf(t, st, "a"); n != 8 {
			t.Fatalf("stock = %d, want 8", n)
		}
		// Twenty at once with a new id: one takes stock.
		var created atomic.Int64
		var wg sync.WaitGroup
		for range 20 {
			wg.Go(func() {
				_, existed, err := st.Reserve(ctx, reservation("p2", inventory.Line{ItemID: "a", Quantity: 3}))
				if err != nil {
					t.Error(err)
				} else if !existed {
					created.Add(1)
				}
			})
		}
		wg.Wait()
		if created.Load() != 1 {
			t.Errorf("%d calls created p2, want 1", created.Load())
		}
		if n := stockOf(t, st, "a"); n != 5 {
			t.Errorf("stock = %d, want 5", n)
		}
	})
}

// TestStoreReleaseAtVersion: a release given the version it read releases
// only a reservation still held at it; a Reserve of the id meanwhile (a
// purchase continued) moves the version on and keeps the stock taken.
func TestStoreReleaseAtVersion(t *testing.T) {
	forEachStore(t, func(t *testing.T, st inventory.Store) {
		ctx := context.Background()
		mustCreate(t, st, inventory.Item{ID: "a", Name: "A", Stock: 10})
		r := reservation("p", inventory.Line{ItemID: "a", Quantity: 4})
		made, _, err := st.Reserve(ctx, r)
		if err != nil || made.Version != 1 {
			t.Fatalf("Reserve = %+v, %v; want version 1", made, err)
		}
		again, existed, err := st.Reserve(ctx, r)
		if err != nil || !existed || again.Version != 2 {
			t.Fatalf("Reserve again = %+v, %v, %v; want version 2", again, existed, err)
		}
		got, released, err := st.Release(ctx, "p", 1)
		if !errors.Is(err, inventory.ErrReservationChanged) || released || got.Version != 2 || got.Status != inventory.ReservationHeld {
			t.Fatalf("Release at version 1 = %+v, %v, %v; want ErrReservationChanged, held at 2", got, released, err)
		}
		if n := stockOf(t, st, "a"); n != 6 {
			t.Fatalf("stock = %d after a refused release, want 6", n)
		}
		if got, released, err := st.Release(ctx, "p", 2); err != nil || !released || got.Status != inventory.ReservationReleased {
			t.Fatalf("Release at version 2 = %+v, %v, %v", got, released, err)
		}
		// Released: answered unchanged, whatever the version; a Reserve of
		// the id changes nothing.
		if got, released, err := st.Release(ctx, "p", 1); err != nil || released || got.Status != inventory.ReservationReleased {
			t.Fatalf("Release again = %+v, %v, %v", got, released, err)
		}
		if got, _, err := st.Reserve(ctx, r); err != nil || got.Status != inventory.ReservationReleased || got.Version != 2 {
			t.Fatalf("Reserve after the release = %+v, %v", got, err)
		}
		if n := stockOf(t, st, "a"); n != 10 {
			t.Fatalf("stock = %d, want 10", n)
		}
	})
}

func TestStoreReserveConcurrently(t *testing.T) {
	forEachStore(t, func(t *testing.T, st inventory.Store) {
		ctx := context.Background()
		var next atomic.Int64
		newID := func() string { return fmt.Sprint("r", next.Add(1)) }
		t.Run("40 buyers, 10 in stock", func(t *testing.T) {
			mustCreate(t, st, inventory.Item{ID: "hot", Name: "Hot item", Stock: 10})
			var ok atomic.Int64
			var wg sync.WaitGroup
			for range 40 {
				wg.Go(func() {
					_, _, err := st.Reserve(ctx, reservation(newID(), inventory.Line{ItemID: "hot", Quantity: 1}))
					var short *inventory.OutOfStockError
					switch {
					case err == nil:
						ok.Add(1)
					case errors.As(err, &short):
						if short.Missing[0].InStock < 0 {
							t.Errorf("negative stock seen: %+v", short.Missing)
						}
					default:
						t.Error(err)
					}
				})
			}
			wg.Wait()
			if ok.Load() != 10 {
				t.Errorf("%d reservations succeeded, want 10", ok.Load())
			}
			if got := stockOf(t, st, "hot"); got != 0 {
				t.Errorf("stock = %d, want 0", got)
			}
			held, err := st.ListReservations(ctx, inventory.ReservationQuery{Status: inventory.ReservationHeld, Limit: 100})
			if err != nil || len(held) != 10 {
				t.Errorf("%d reservations held (%v), want 10", len(held), err)
			}
		})
		t.Run("two items in both orders", func(t *testing.T) {
			mustCreate(t, st, inventory.Item{ID: "x", Name: "X", Stock: 15}, inventory.Item{ID: "y", Name: "Y", Stock: 15})
			var ok atomic.Int64
			var wg sync.WaitGroup
			for i := range 40 {
				lines := []inventory.Line{{ItemID: "x", Quantity: 1}, {ItemID: "y", Quantity: 1}}
				if i%2 == 1 {
					slices.Reverse(lines)
				}
				wg.Go(func() {
					_, _, err := st.Reserve(ctx, reservation(newID(), lines...))
					if err == nil {
						ok.Add(1)
					} else if !errors.As(err, new(*inventory.OutOfStockError)) {
						t.Error(err)
					}
				})
			}
			wg.Wait()
			if ok.Load() != 15 {
				t.Errorf("%d reservations succeeded, want 15", ok.Load())
			}
			for _, id := range []string{"x", "y"} {
				if got := stockOf(t, st, id); got != 0 {
					t.Errorf("stock of %s = %d, want 0", id, got)
				}
			}
		})
		t.Run("restocking while buying", func(t *testing.T) {
			mustCreate(t, st, inventory.Item{ID: "r", Name: "R", Stock: 0})
			var ok atomic.Int64
			var wg sync.WaitGroup
			for i := range 40 {
				wg.Go(func() {
					if i%4 == 0 { // 10 restocks setting stock to 2
						if _, err := st.Update(ctx, "r", inventory.UpdateInput{Stock: ptr[int64](2)}); err != nil {
							t.Error(err)
						}
						return
					}
					_, _, err := st.Reserve(ctx, reservation(newID(), inventory.Line{ItemID: "r", Quantity: 1}))
					if err == nil {
						ok.Add(1)
					} else if !errors.As(err, new(*inventory.OutOfStockError)) {
						t.Error(err)
					}
				})
			}
			wg.Wait()
			if got := stockOf(t, st, "r"); got < 0 || got > 2 {
				t.Errorf("stock = %d, want 0..2", got)
			}
			if n := ok.Load(); n > 20 {
				t.Errorf("%d reservations succeeded, more than the 20 restocked", n)
			}
		})
	})
}

func TestStoreRelease(t *testing.T) {
	forEachStore(t, func(t *testing.T, st inventory.Store) {
		ctx := context.Background()
		mustCreate(t, st,
			inventory.Item{ID: "a", Name: "A", Stock: 5},
			inventory.Item{ID: "b", Name: "B", Stock: 3},
			inventory.Item{ID: "big", Name: "Big", Stock: 10},
			inventory.Item{ID: "gone", Name: "Gone", Stock: 1},
		)
		wantStock := func(want map[string]int64) {
			t.Helper()
			for id, n := range want {
				if got := stockOf(t, st, id); got != n {
					t.Errorf("stock of %s = %d, want %d", id, got, n)
				}
			}
		}
		reserve := func(r inventory.Reservation) {
			t.Helper()
			if _, _, err := st.Reserve(ctx, r); err != nil {
				t.Fatalf("Reserve %s: %v", r.ID, err)
			}
		}

		ab := reservation("ab", inventory.Line{ItemID: "b", Quantity: 3}, inventory.Line{ItemID: "a", Quantity: 2})
		reserve(ab)
		reserve(reservation("a1", inventory.Line{ItemID: "a", Quantity: 1}))
		wantStock(map[string]int64{"a": 2, "b": 0})
		if _, _, err := st.Release(ctx, "nope", 0); !errors.Is(err, inventory.ErrNoReservation) {
			t.Fatalf("Release of an unknown id: %v, want ErrNoReservation", err)
		}
		wantStock(map[string]int64{"a": 2, "b": 0})

		ab.Status = inventory.ReservationReleased
		for i, wantReleased := range []bool{true, false} {
			got, released, err := st.Release(ctx, "ab", 0)
			if err != nil || released != wantReleased || !reflect.DeepEqual(got, ab) {
				t.Fatalf("Release #%d = %+v, %v, %v; want %+v, %v", i+1, got, released, err, ab, wantReleased)
			}
			// a1 still holds one a.
			wantStock(map[string]int64{"a": 4, "b": 3})
		}
		if got, err := st.GetReservation(ctx, "a1"); err != nil || got.Status != inventory.ReservationHeld {
			t.Fatalf("a1 = %+v, %v; want held", got, err)
		}

		t.Run("overflow changes nothing", func(t *testing.T) {
			reserve(reservation("big", inventory.Line{ItemID: "a", Quantity: 1}, inventory.Line{ItemID: "big", Quantity: 2}))
			if _, err := st.Update(ctx, "big", inventory.UpdateInput{Stock: ptr[int64](math.MaxInt64 - 1)}); err != nil {
				t.Fatal(err)
			}
			// "a" sorts before "big", so it was incremented first and
			// must be rolled back.
			_, _, err := st.Release(ctx, "big", 0)
			var over *inventory.OverflowError
			if !errors.As(err, &over) || over.Line != (inventory.Line{ItemID: "big", Quantity: 2}) {
				t.Fatalf("Release: %v, want an *OverflowError for 2 of big", err)
			}
			wantStock(map[string]int64{"a": 3, "big": math.MaxInt64 - 1})
			if got, err := st.GetReservation(ctx, "big"); err != nil || got.Status != inventory.ReservationHeld {
				t.Fatalf("big = %+v, %v; want still held", got, err)
			}
		})
		t.Run("a deleted item is skipped", func(t *testing.T) {
			reserve(reservation("g", inventory.Line{ItemID: "gone", Quantity: 1}, inventory.Line{ItemID: "b", Quantity: 1}))
			if _, err := st.Delete(ctx, "gone"); err != nil {
				t.Fatal(err)
			}
			if _, released, err := st.Release(ctx, "g", 0); err != nil || !released {
				t.Fatalf("Release = %v, %v", released, err)
			}
			wantStock(map[string]int64{"b": 3})
		})
		t.Run("concurrent releases put stock back once", func(t *testing.T) {
			reserve(reservation("c", inventory.Line{ItemID: "b", Quantity: 2}, inventory.Line{ItemID: "a", Quantity: 2}))
			wantStock(map[string]int64{"a": 1, "b": 1})
			var released atomic.Int64
			var wg sync.WaitGroup
			for range 20 {
				wg.Go(func() {
					_, ok, err := st.Release(ctx, "c", 0)
					if err != nil {
						t.Error(err)
					} else if ok {
						released.Add(1)
					}
				})
			}
			wg.Wait()
			if released.Load() != 1 {
				t.Errorf("%d calls released c, want 1", released.Load())
			}
			wantStock(map[string]int64{"a": 3, "b": 3})
		})
	})
}

func TestStoreListReservations(t *testing.T) {
	forEachStore(t, func(t *testing.T, st inventory.Store) {
		ctx := context.Background()
		mustCreate(t, st, inventory.Item{ID: "a", Name: "A", Stock: 100})
		// Byte order: "B" < "_x" < "a" < "b" < "c".
		for _, id := range []string{"c", "a", "_x", "B", "b"} {
			if _, _, err := st.Reserve(ctx, reservation(id, inventory.Line{ItemID: "a", Quantity: 1})); err != nil {
				t.Fatal(err)
			}
		}
		for _, id := range []string{"a", "c"} {
			if _, _, err := st.Release(ctx, id, 0); err != nil {
				t.Fatal(err)
			}
		}
		tests := []struct {
			name string
			q    inventory.ReservationQuery
			want []string
		}{
			{"first page", inventory.ReservationQuery{Limit: 2}, []string{"B", "_x"}},
			{"next page", inventory.ReservationQuery{After: "_x", Limit: 2}, []string{"a", "b"}},
			{"past the end", inventory.ReservationQuery{After: "c", Limit: 2}, []string{}},
			{"held", inventory.ReservationQuery{Status: inventory.ReservationHeld, Limit: 100}, []string{"B", "_x", "b"}},
			{"released", inventory.ReservationQuery{Status: inventory.ReservationReleased, Limit: 100}, []string{"a", "c"}},
			{"held and paging", inventory.ReservationQuery{Status: inventory.ReservationHeld, After: "_x", Limit: 100}, []string{"b"}},
		}
		for _, tc := range tests {
			rs, err := st.ListReservations(ctx, tc.q)
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			got := []string{}
			for _, r := range rs {
				got = append(got, r.ID)
				if len(r.Reserved) != 1 || !r.CreatedAt.Equal(time.Unix(1700000000, 123)) {
					t.Errorf("%s: reservation %+v", tc.name, r)
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("%s: ids %v, want %v", tc.name, got, tc.want)
			}
		}
	})
}

func TestSQLStoreReopens(t *testing.T) {
	t.Parallel()
	db := sqltest.SQLite(t)
	st := openSQL(t, db)
	mustCreate(t, st, inventory.Item{ID: "kept", Name: "Kept", PriceCents: 7, Stock: 1})
	if _, _, err := st.Reserve(context.Background(), reservation("p", inventory.Line{ItemID: "kept", Quantity: 1})); err != nil {
		t.Fatal(err)
	}
	st = openSQL(t, db) // migrating again keeps the data
	if got := stockOf(t, st, "kept"); got != 0 {
		t.Fatalf("stock after reopening = %d, want 0", got)
	}
	if r, err := st.GetReservation(context.Background(), "p"); err != nil || r.Status != inventory.ReservationHeld {
		t.Fatalf("reservation after reopening = %+v, %v", r, err)
	}
}

// TestSQLStoreOpensTheEarlierSchema opens a database made before
// reservations existed: its items stay and reservations work.
func TestSQLStoreOpensTheEarlierSchema(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := sqltest.SQLite(t)
	err := db.Migrate(ctx, "inventory", []string{
		`CREATE TABLE items (
			id          TEXT PRIMARY KEY,
			name        TEXT   NOT NULL,
			price_cents BIGINT NOT NULL CHECK (price_cents >= 0),
			stock       BIGINT NOT NULL CHECK (stock >= 0)
		)`,
		`INSERT INTO items (id, name, price_cents, stock) VALUES ('old', 'Old', 5, 3)`,
	})
	if err != nil {
		t.Fatal(err)
	}
	st := openSQL(t, db)
	if _, _, err := st.Reserve(ctx, reservation("p", inventory.Line{ItemID: "old", Quantity: 2})); err != nil {
		t.Fatal(err)
	}
	if got := stockOf(t, st, "old"); got != 1 {
		t.Fatalf("stock = %d, want 1", got)
	}
}

// TestSQLStoreAddsTheReservationVersion opens a database whose
// reservations were made before they had versions: they are at version 1
// and a release at it works.
func TestSQLStoreAddsTheReservationVersion(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := sqltest.SQLite(t)
	err := db.Migrate(ctx, "inventory", []string{
		`CREATE TABLE items (id TEXT PRIMARY KEY, name TEXT NOT NULL, price_cents BIGINT NOT NULL, stock BIGINT NOT NULL)`,
		`CREATE TABLE reservations (id TEXT PRIMARY KEY, lines TEXT NOT NULL, status TEXT NOT NULL, created_at BIGINT NOT NULL)`,
		`INSERT INTO items (id, name, price_cents, stock) VALUES ('old', 'Old', 5, 1)`,
		`INSERT INTO reservations (id, lines, status, created_at) VALUES ('p', '[{"item_id":"old","quantity":2}]', 'held', 0)`,
	})
	if err != nil {
		t.Fatal(err)
	}
	st := openSQL(t, db)
	openSQL(t, db) // a second opening adds nothing
	if r, err := st.GetReservation(ctx, "p"); err != nil || r.Version != 1 {
		t.Fatalf("GetReservation = %+v, %v; want version 1", r, err)
	}
	if _, released, err := st.Release(ctx, "p", 1); err != nil || !released {
		t.Fatalf("Release at version 1 = %v, %v", released, err)
	}
	if got := stockOf(t, st, "old"); got != 3 {
		t.Fatalf("stock = %d, want 3", got)
	}
}

// ExampleNewMemoryStore shows the store contract on its own.
func ExampleNewMemoryStore() {
	ctx := context.Background()
	st := inventory.NewMemoryStore()
	_ = st.Create(ctx, inventory.Item{ID: "mug", Name: "Mug", PriceCents: 900, Stock: 2})
	_, _, err := st.Reserve(ctx, inventory.Reservation{ID: "pur_1", Reserved: []inventory.Line{{ItemID: "mug", Quantity: 3}}})
	fmt.Println(err)
	r, _, _ := st.Reserve(ctx, inventory.Reservation{ID: "pur_2", Reserved: []inventory.Line{{ItemID: "mug", Quantity: 2}}})
	_, again, _ := st.Reserve(ctx, inventory.Reservation{ID: "pur_2", Reserved: []inventory.Line{{ItemID: "mug", Quantity: 2}}})
	it, _ := st.Get(ctx, "mug")
	fmt.Println(r.Status, again, it.Stock)
	_, released, _ := st.Release(ctx, "pur_2", 0)
	_, releasedAgain, _ := st.Release(ctx, "pur_2", 0)
	it, _ = st.Get(ctx, "mug")
	fmt.Println(released, releasedAgain, it.Stock)
	// Output:
	// inventory: out of stock
	// held true 0
	// true false 2
}
