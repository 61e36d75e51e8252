package sqldb_test

import (
	"context"
	"path/filepath"
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
		})
	}
	if _, err := sqldb.Open(context.Background(), "oracle", filepath.Join(t.TempDir(), "x")); err == nil {
		t.Fatal("unknown dialect accepted")
	}
}
