package inventory_test

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"go.uber.org/goleak"

	"github.com/streamgate/streamgate/services/internal/sqldb"
	"github.com/streamgate/streamgate/services/internal/sqldb/sqltest"
	"github.com/streamgate/streamgate/services/inventory"
	"github.com/streamgate/streamgate/services/socket"
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
		if err := st.Create(ctx, inventory.Item{ID: "apple", Name: "Other"}); socket.CodeOf(err) != socket.CodeAlreadyExists {
			t.Fatalf("Create with a taken id: %v, want ALREADY_EXISTS", err)
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
		if _, err := st.Update(ctx, "pear", inventory.UpdateInput{Name: ptr("x")}); socket.CodeOf(err) != socket.CodeNotFound {
			t.Fatalf("Update unknown: %v, want NOT_FOUND", err)
		}
		got, err := st.Delete(ctx, "apple")
		if want := (inventory.Item{ID: "apple", Name: "Green apple", Stock: 9}); err != nil || got != want {
			t.Fatalf("Delete = %+v, %v; want %+v", got, err, want)
		}
		for _, op := range []func() error{
			func() error { _, err := st.Get(ctx, "apple"); return err },
			func() error { _, err := st.Delete(ctx, "apple"); return err },
		} {
			if err := op(); socket.CodeOf(err) != socket.CodeNotFound {
				t.Fatalf("after Delete: %v, want NOT_FOUND", err)
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
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				ctx := context.Background()
				for id, stock := range map[string]int64{"a": 5, "b": 3} {
					_ = st.Create(ctx, inventory.Item{ID: id, Name: id})
					if _, err := st.Update(ctx, id, inventory.UpdateInput{Stock: ptr(stock)}); err != nil {
						t.Fatal(err)
					}
				}
				short, err := st.Reserve(ctx, tc.lines)
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(short, tc.short) {
					t.Errorf("shortages %+v, want %+v", short, tc.short)
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

func TestStoreReserveConcurrently(t *testing.T) {
	forEachStore(t, func(t *testing.T, st inventory.Store) {
		ctx := context.Background()
		t.Run("40 buyers, 10 in stock", func(t *testing.T) {
			mustCreate(t, st, inventory.Item{ID: "hot", Name: "Hot item", Stock: 10})
			var ok atomic.Int64
			var wg sync.WaitGroup
			for range 40 {
				wg.Go(func() {
					short, err := st.Reserve(ctx, []inventory.Line{{ItemID: "hot", Quantity: 1}})
					if err != nil {
						t.Error(err)
						return
					}
					if len(short) == 0 {
						ok.Add(1)
					} else if short[0].InStock < 0 {
						t.Errorf("negative stock seen: %+v", short)
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
					short, err := st.Reserve(ctx, lines)
					if err != nil {
						t.Error(err)
					} else if len(short) == 0 {
						ok.Add(1)
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
					short, err := st.Reserve(ctx, []inventory.Line{{ItemID: "r", Quantity: 1}})
					if err != nil {
						t.Error(err)
					} else if len(short) == 0 {
						ok.Add(1)
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
			inventory.Item{ID: "big", Name: "Big", Stock: math.MaxInt64 - 1},
		)
		wantStock := func(want map[string]int64) {
			t.Helper()
			for id, n := range want {
				if got := stockOf(t, st, id); got != n {
					t.Errorf("stock of %s = %d, want %d", id, got, n)
				}
			}
		}
		initial := map[string]int64{"a": 5, "b": 3, "big": math.MaxInt64 - 1}

		lines := []inventory.Line{{ItemID: "b", Quantity: 3}, {ItemID: "a", Quantity: 2}}
		if short, err := st.Reserve(ctx, lines); err != nil || len(short) > 0 {
			t.Fatalf("Reserve = %+v, %v", short, err)
		}
		wantStock(map[string]int64{"a": 3, "b": 0})
		if err := st.Release(ctx, lines); err != nil {
			t.Fatalf("Release: %v", err)
		}
		wantStock(initial)

		// "a" and "b" sort before the failing line, so they were
		// incremented first and must be rolled back.
		tests := []struct {
			name    string
			lines   []inventory.Line
			code    socket.Code
			message string
		}{
			{"unknown item", []inventory.Line{{ItemID: "zz", Quantity: 1}, {ItemID: "a", Quantity: 1}, {ItemID: "b", Quantity: 1}}, socket.CodeNotFound, `no item "zz"`},
			{"first unknown in id order", []inventory.Line{{ItemID: "zz", Quantity: 1}, {ItemID: "c", Quantity: 1}, {ItemID: "a", Quantity: 1}}, socket.CodeNotFound, `no item "c"`},
			{"stock overflow", []inventory.Line{{ItemID: "a", Quantity: 1}, {ItemID: "big", Quantity: 2}}, socket.CodeInvalidArgument, `releasing 2 of item "big" would overflow its stock`},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				err := st.Release(ctx, tc.lines)
				if socket.CodeOf(err) != tc.code || socket.AsError(err).Message != tc.message {
					t.Fatalf("Release: %v, want %s %q", err, tc.code, tc.message)
				}
				wantStock(initial)
			})
		}
		if err := st.Release(ctx, []inventory.Line{{ItemID: "big", Quantity: 1}}); err != nil {
			t.Fatalf("Release up to the maximum: %v", err)
		}
		wantStock(map[string]int64{"big": math.MaxInt64})

		t.Run("concurrent releases add up", func(t *testing.T) {
			var wg sync.WaitGroup
			for i := range 40 {
				lines := []inventory.Line{{ItemID: "a", Quantity: 1}, {ItemID: "b", Quantity: 1}}
				if i%2 == 1 {
					slices.Reverse(lines)
				}
				wg.Go(func() {
					if err := st.Release(ctx, lines); err != nil {
						t.Error(err)
					}
				})
			}
			wg.Wait()
			wantStock(map[string]int64{"a": 45, "b": 43})
		})
	})
}

func TestSQLStoreReopens(t *testing.T) {
	t.Parallel()
	db := sqltest.SQLite(t)
	st := openSQL(t, db)
	mustCreate(t, st, inventory.Item{ID: "kept", Name: "Kept", PriceCents: 7, Stock: 1})
	st = openSQL(t, db) // migrating again keeps the data
	if got := stockOf(t, st, "kept"); got != 1 {
		t.Fatalf("stock after reopening = %d, want 1", got)
	}
}

// ExampleNewMemoryStore shows the store contract on its own.
func ExampleNewMemoryStore() {
	ctx := context.Background()
	st := inventory.NewMemoryStore()
	_ = st.Create(ctx, inventory.Item{ID: "mug", Name: "Mug", PriceCents: 900, Stock: 2})
	short, _ := st.Reserve(ctx, []inventory.Line{{ItemID: "mug", Quantity: 3}})
	fmt.Println(short)
	short, _ = st.Reserve(ctx, []inventory.Line{{ItemID: "mug", Quantity: 2}})
	it, _ := st.Get(ctx, "mug")
	fmt.Println(short, it.Stock)
	// Output:
	// [{mug 3 2}]
	// [] 0
}
