package sqldb_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/streamgate/streamgate/services/internal/sqldb"
	"github.com/streamgate/streamgate/services/internal/sqldb/sqltest"
)

// TestKeysTimesAndOneRow checks what the stores' rows share in both
// dialects: keys in byte order, times as nanoseconds, one-row reads.
func TestKeysTimesAndOneRow(t *testing.T) {
	for name, open := range map[string]func(testing.TB) *sqldb.DB{"sqlite": sqltest.SQLite, "postgres": sqltest.Postgres} {
		t.Run(name, func(t *testing.T) {
			db := open(t)
			ctx := context.Background()
			if err := db.Migrate(ctx, "ev", []string{`CREATE TABLE IF NOT EXISTS ev (k ` + db.KeyText() + ` PRIMARY KEY, at BIGINT NOT NULL)`}); err != nil {
				t.Fatal(err)
			}
			at := time.Date(2026, 12, 7, 5, 30, 0, 123456789, time.FixedZone("x", 3600))
			for k, v := range map[string]time.Time{"b": at, "B": {}, "a": at} {
				if _, err := db.ExecContext(ctx, db.Rebind(`INSERT INTO ev (k, at) VALUES (?, ?)`), k, sqldb.Nanos(v)); err != nil {
					t.Fatal(err)
				}
			}
			scan := func(r sqldb.Scanner) (event, error) {
				var e event
				err := r.Scan(&e.k, sqldb.NanosInto(&e.at))
				return e, err
			}
			all, err := sqldb.QueryAll(ctx, db, scan, "list", `SELECT k, at FROM ev ORDER BY k`)
			if err != nil {
				t.Fatal(err)
			}
			var keys []string
			for _, e := range all {
				keys = append(keys, e.k)
			}
			if !slices.Equal(keys, []string{"B", "a", "b"}) {
				t.Fatalf("keys in order %v, want byte order [B a b]", keys)
			}
			if !all[0].at.IsZero() || !all[1].at.Equal(at) || all[1].at.Location() != time.UTC {
				t.Fatalf("times %v, %v; want the zero time, then %v in UTC", all[0].at, all[1].at, at)
			}
			one, err := sqldb.QueryOne(ctx, db, scan, errNoEvent, "get", `SELECT k, at FROM ev WHERE k = ?`, "a")
			if err != nil || one.k != "a" {
				t.Fatalf("QueryOne = %+v, %v", one, err)
			}
			if _, err := sqldb.QueryOne(ctx, db, scan, errNoEvent, "get", `SELECT k, at FROM ev WHERE k = ?`, "c"); !errors.Is(err, errNoEvent) {
				t.Fatalf("QueryOne of no row: %v, want errNoEvent", err)
			}
		})
	}
}

// event is a row of the test's table.
type event struct {
	k  string
	at time.Time
}

var errNoEvent = errors.New("no such event")
