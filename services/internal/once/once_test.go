package once_test

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/streamgate/streamgate/services/internal/once"
	"github.com/streamgate/streamgate/services/internal/sqldb"
	"github.com/streamgate/streamgate/services/internal/sqldb/sqltest"
	"github.com/streamgate/streamgate/services/socket"
)

func TestFingerprintIsCanonical(t *testing.T) {
	t.Parallel()
	fp := func(action, id, body string) string {
		return once.Fingerprint(&socket.Request{Action: action, ResourceID: id, Body: []byte(body)})
	}
	base := fp("CREATE_ORDER", "", `{"a":1,"b":[1,2]}`)
	if got := fp("CREATE_ORDER", "", ` { "b": [1, 2], "a": 1 } `); got != base {
		t.Errorf("key order and spacing changed the fingerprint")
	}
	for name, other := range map[string]string{
		"action": fp("UPDATE_ORDER", "", `{"a":1,"b":[1,2]}`),
		"id":     fp("CREATE_ORDER", "x", `{"a":1,"b":[1,2]}`),
		"body":   fp("CREATE_ORDER", "", `{"a":1,"b":[2,1]}`),
		"number": fp("CREATE_ORDER", "", `{"a":1.0,"b":[1,2]}`),
		"split":  fp("CREATE_ORDE", "R", `{"a":1,"b":[1,2]}`),
	} {
		if other == base {
			t.Errorf("another %s, the same fingerprint", name)
		}
	}
}

// TestTableWritesOncePerKey: concurrent writes under one key, each in its
// own transaction, insert one row; the others get the first result; a
// failed write keeps no key.
func TestTableWritesOncePerKey(t *testing.T) {
	t.Parallel()
	for name, open := range map[string]func(testing.TB) *sqldb.DB{"sqlite": sqltest.SQLite, "postgres": sqltest.Postgres} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			db := open(t)
			ctx := context.Background()
			if _, err := db.ExecContext(ctx, `CREATE TABLE rows (n BIGINT NOT NULL)`); err != nil {
				t.Fatal(err)
			}
			keys, err := once.NewTable(ctx, db, "test_applied_keys")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := once.NewTable(ctx, db, "test_applied_keys"); err != nil { // migrating again is harmless
				t.Fatal(err)
			}
			insert := func(ctx context.Context, n int) error {
				return keys.Write(ctx, func(tx *sql.Tx) (any, error) {
					_, err := tx.ExecContext(ctx, db.Rebind(`INSERT INTO rows (n) VALUES (?)`), n)
					return map[string]int{"n": n}, err
				})
			}
			k := once.Key{Subject: "ann", ID: "h:CREATE", Fingerprint: "fp"}
			kctx := once.With(ctx, k)

			failed := errors.New("refused")
			if err := keys.Write(kctx, func(*sql.Tx) (any, error) { return nil, failed }); !errors.Is(err, failed) {
				t.Fatalf("a failing write: %v", err)
			}
			if _, ok, err := keys.Applied(ctx, k); ok || err != nil {
				t.Fatalf("a failed write kept its key (%v)", err)
			}

			const n = 8
			errs := make([]error, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() { errs[i] = insert(kctx, i) })
			}
			wg.Wait()
			won := -1
			for i, err := range errs {
				var applied *once.AppliedError
				switch {
				case err == nil && won >= 0:
					t.Fatalf("writes %d and %d both applied", won, i)
				case err == nil:
					won = i
				case !errors.As(err, &applied):
					t.Fatalf("write %d: %v", i, err)
				}
			}
			var rows int
			if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM rows`).Scan(&rows); err != nil || rows != 1 {
				t.Fatalf("%d rows (%v), want 1", rows, err)
			}
			rec, ok, err := keys.Applied(ctx, k)
			if err != nil || !ok || rec.Fingerprint != "fp" {
				t.Fatalf("record %+v %v %v", rec, ok, err)
			}
			if want := `{"n":` + string(rune('0'+won)) + `}`; string(rec.Result) != want {
				t.Fatalf("kept %s, want %s", rec.Result, want)
			}
			// Another subject's same key is another key.
			if err := insert(once.With(ctx, once.Key{Subject: "bob", ID: k.ID, Fingerprint: "fp"}), 9); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestMemoryWritesOncePerKey(t *testing.T) {
	t.Parallel()
	var m once.Memory
	ctx := once.With(context.Background(), once.Key{Subject: "ann", ID: "k", Fingerprint: "fp"})
	writes := 0
	write := func() (any, error) { writes++; return writes, nil }
	if err := m.Write(ctx, write); err != nil {
		t.Fatal(err)
	}
	var applied *once.AppliedError
	if err := m.Write(ctx, write); !errors.As(err, &applied) || string(applied.Record.Result) != "1" {
		t.Fatalf("the second write: %v", err)
	}
	if writes != 1 {
		t.Fatalf("%d writes ran", writes)
	}
	if err := m.Write(context.Background(), write); err != nil || writes != 2 {
		t.Fatalf("a write without a key: %v, %d writes", err, writes)
	}
}

// TestWriteTableTyped: WriteTable returns the write's result and keeps it
// under the key; a write applied already returns the zero value and an
// *AppliedError, a failed one its error.
func TestWriteTableTyped(t *testing.T) {
	t.Parallel()
	keys := tableWith(t)
	ctx := context.Background()
	kctx := once.With(ctx, once.Key{Subject: "ann", ID: "k", Fingerprint: "fp"})
	double := func(n int) func(*sql.Tx) (int, error) {
		return func(*sql.Tx) (int, error) { return 2 * n, nil }
	}
	failed := errors.New("refused")
	if v, err := once.WriteTable(kctx, keys, func(*sql.Tx) (int, error) { return 1, failed }); v != 0 || !errors.Is(err, failed) {
		t.Fatalf("a failing write = %d, %v; want 0, %v", v, err, failed)
	}
	if v, err := once.WriteTable(kctx, keys, double(21)); v != 42 || err != nil {
		t.Fatalf("first write = %d, %v; want 42, nil", v, err)
	}
	v, err := once.WriteTable(kctx, keys, double(1))
	var applied *once.AppliedError
	if v != 0 || !errors.As(err, &applied) || string(applied.Record.Result) != "42" {
		t.Fatalf("second write = %d, %v; want 0 and an *AppliedError keeping 42", v, err)
	}
}

// TestTableInsert: Insert keeps the row as the write's result, answers
// exists for a row that violates a unique constraint, and wraps any other
// failure with what.
func TestTableInsert(t *testing.T) {
	t.Parallel()
	keys := tableWith(t, `CREATE TABLE things (id TEXT PRIMARY KEY)`)
	ctx := context.Background()
	errTaken := errors.New("taken")
	kctx := once.With(ctx, once.Key{Subject: "ann", ID: "k", Fingerprint: "fp"})
	if err := keys.Insert(kctx, map[string]string{"id": "a"}, errTaken, "insert thing", `INSERT INTO things (id) VALUES (?)`, "a"); err != nil {
		t.Fatal(err)
	}
	rec, ok, err := keys.Applied(ctx, once.Key{Subject: "ann", ID: "k"})
	if err != nil || !ok || string(rec.Result) != `{"id":"a"}` {
		t.Fatalf("record %s %v %v, want the row kept", rec.Result, ok, err)
	}
	if err := keys.Insert(ctx, nil, errTaken, "insert thing", `INSERT INTO things (id) VALUES (?)`, "a"); !errors.Is(err, errTaken) {
		t.Fatalf("a taken id: %v, want %v", err, errTaken)
	}
	if err := keys.Insert(ctx, nil, errTaken, "insert thing", `INSERT INTO nowhere (id) VALUES (?)`, "b"); err == nil || !strings.HasPrefix(err.Error(), "insert thing: ") {
		t.Fatalf("a missing table: %v, want an error wrapped as insert thing: …", err)
	}
}

// tableWith returns the keys table of a new SQLite database in which the
// statements ran.
func tableWith(t *testing.T, stmts ...string) *once.Table {
	t.Helper()
	db := sqltest.SQLite(t)
	ctx := context.Background()
	for _, stmt := range stmts {
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			t.Fatal(err)
		}
	}
	keys, err := once.NewTable(ctx, db, "applied_keys")
	if err != nil {
		t.Fatal(err)
	}
	return keys
}
