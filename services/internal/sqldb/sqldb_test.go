package sqldb_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/streamgate/streamgate/services/internal/sqldb"
	"github.com/streamgate/streamgate/services/internal/sqldb/sqltest"
)

func TestBothDialects(t *testing.T) {
	for _, tc := range []struct {
		name string
		open func(t *testing.T) *sqldb.DB
	}{
		{"sqlite", func(t *testing.T) *sqldb.DB { return sqltest.SQLite(t) }},
		{"postgres", func(t *testing.T) *sqldb.DB { return sqltest.Postgres(t) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := tc.open(t)
			ctx := context.Background()
			stmts := []string{`CREATE TABLE IF NOT EXISTS kv (k TEXT PRIMARY KEY, v INTEGER NOT NULL)`}
			for range 2 { // migrations are idempotent
				if err := db.Migrate(ctx, "kv", stmts); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := db.ExecContext(ctx, db.Rebind(`INSERT INTO kv (k, v) VALUES (?, ?)`), "a", 1); err != nil {
				t.Fatal(err)
			}
			_, err := db.ExecContext(ctx, db.Rebind(`INSERT INTO kv (k, v) VALUES (?, ?)`), "a", 2)
			if !sqldb.IsUniqueViolation(err) {
				t.Fatalf("duplicate key: %v, want a unique violation", err)
			}
			var v int
			if err := db.QueryRowContext(ctx, db.Rebind(`SELECT v FROM kv WHERE k = ?`), "a").Scan(&v); err != nil || v != 1 {
				t.Fatalf("v = %d, %v", v, err)
			}
			if _, err := db.ExecContext(ctx, db.Rebind(`INSERT INTO kv (k, v) VALUES (?, ?)`), "b", 2); err != nil {
				t.Fatal(err)
			}
			scanV := func(r sqldb.Scanner) (int, error) {
				var v int
				err := r.Scan(&v)
				return v, err
			}
			all, err := sqldb.QueryAll(ctx, db, scanV, "list", `SELECT v FROM kv WHERE k >= ? ORDER BY k`, "a")
			if err != nil || !slices.Equal(all, []int{1, 2}) {
				t.Fatalf("QueryAll = %v, %v; want [1 2]", all, err)
			}
			none, err := sqldb.QueryAll(ctx, db, scanV, "list", `SELECT v FROM kv WHERE k > ?`, "z")
			if err != nil || none == nil || len(none) != 0 {
				t.Fatalf("QueryAll of no rows = %#v, %v; want an empty, non-nil slice", none, err)
			}
			if _, err := sqldb.QueryAll(ctx, db, scanV, "list", `SELECT v FROM nowhere`); err == nil || !strings.HasPrefix(err.Error(), "list: ") {
				t.Fatalf("QueryAll of a missing table: %v, want an error wrapped as list: …", err)
			}
			if n, err := sqldb.Affected(ctx, db, "bump", db.Rebind(`UPDATE kv SET v = v + 1 WHERE k >= ?`), "a"); n != 2 || err != nil {
				t.Fatalf("Affected = %d, %v; want 2, nil", n, err)
			}
			if n, err := sqldb.Affected(ctx, db, "bump", db.Rebind(`UPDATE nowhere SET v = 1`)); n != 0 || err == nil || !strings.HasPrefix(err.Error(), "bump: ") {
				t.Fatalf("Affected on a missing table = %d, %v; want 0 and an error wrapped as bump: …", n, err)
			}
		})
	}
	if _, err := sqldb.Open(context.Background(), "oracle", filepath.Join(t.TempDir(), "x")); err == nil {
		t.Fatal("unknown dialect accepted")
	}
}

func TestRowError(t *testing.T) {
	t.Parallel()
	errMissing := errors.New("missing")
	boom := errors.New("boom")
	if err := sqldb.RowError(nil, errMissing, "get x"); err != nil {
		t.Errorf("nil: %v", err)
	}
	if err := sqldb.RowError(fmt.Errorf("scan: %w", sql.ErrNoRows), errMissing, "get x"); err != errMissing {
		t.Errorf("no rows: %v, want the store's own error", err)
	}
	if err := sqldb.RowError(boom, errMissing, "get x"); !errors.Is(err, boom) || err.Error() != "get x: boom" {
		t.Errorf("other: %v, want it wrapped as get x: boom", err)
	}
}
