package orders_test

import (
	"context"
	"errors"
	"testing"

	"go.uber.org/goleak"

	"github.com/streamgate/streamgate/services/internal/sqldb"
	"github.com/streamgate/streamgate/services/internal/sqldb/sqltest"
	"github.com/streamgate/streamgate/services/orders"
	"github.com/streamgate/streamgate/services/socket"
	socketcaller "github.com/streamgate/streamgate/services/socket/caller"
	"github.com/streamgate/streamgate/services/socket/sockettest"
	"github.com/streamgate/streamgate/status"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// storeMakers open a fresh store of each kind; PostgreSQL is skipped when
// STREAMGATE_TEST_POSTGRES is unset.
var storeMakers = []struct {
	name string
	open func(t *testing.T) orders.Store
}{
	{"memory", func(*testing.T) orders.Store { return orders.NewMemoryStore() }},
	{"sqlite", func(t *testing.T) orders.Store { return sqlStore(t, sqltest.SQLite(t)) }},
	{"postgres", func(t *testing.T) orders.Store { return sqlStore(t, sqltest.Postgres(t)) }},
}

func sqlStore(t *testing.T, db *sqldb.DB) orders.Store {
	t.Helper()
	st, err := orders.NewSQLStore(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// forEachStore runs fn in a parallel subtest per store kind.
func forEachStore(t *testing.T, fn func(t *testing.T, st orders.Store)) {
	t.Helper()
	for _, m := range storeMakers {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			fn(t, m.open(t))
		})
	}
}

// prices is the test catalogue.
var prices = map[string]int64{"apple": 150, "pear": 200, "melon": 1000, "free": 0, "gold": 1 << 60}

// catalogue prices the items it knows and leaves the others out.
var catalogue = orders.PricerFunc(func(_ context.Context, ids []string) (map[string]int64, error) {
	out := map[string]int64{}
	for _, id := range ids {
		if p, ok := prices[id]; ok {
			out[id] = p
		}
	}
	return out, nil
})

// startService serves orders over st on a loopback socket and returns a
// client; both stop at cleanup.
func startService(t *testing.T, st orders.Store, pricer orders.Pricer) *socketcaller.Client {
	t.Helper()
	srv, err := socket.NewServer(socket.Config{Name: "orders"}, socket.WithoutAuth())
	if err != nil {
		t.Fatal(err)
	}
	if err := orders.Register(srv, st, pricer); err != nil {
		t.Fatal(err)
	}
	return sockettest.Start(t, srv)
}

// wantErr fails unless err has the code (as the runtime would send it)
// and, if reason is set, that reason in its details; it returns the error.
func wantErr(t *testing.T, err error, code status.Code, reason string) *status.Error {
	t.Helper()
	e := status.AsError(err)
	if err == nil || e.Code != code {
		t.Fatalf("got error %v, want %s", err, code)
	}
	if reason != "" && e.Details[socket.DetailReason] != reason {
		t.Fatalf("got details %v, want reason %q", e.Details, reason)
	}
	return e
}

// wantStoreErr fails unless a Store returned target (errors.Is).
func wantStoreErr(t *testing.T, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("got %v, want %v", err, target)
	}
}
