// Package sqltest gives tests a fresh database: a SQLite file in a temp
// dir, or a schema of its own in the PostgreSQL server named by
// STREAMGATE_TEST_POSTGRES (skipping the test when it is unset).
package sqltest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/streamgate/streamgate/services/internal/sqldb"
)

// EnvPostgres names the env var with the test server's URL.
const EnvPostgres = "STREAMGATE_TEST_POSTGRES"

// SQLite opens a fresh SQLite database, closed at cleanup.
func SQLite(t testing.TB) *sqldb.DB {
	t.Helper()
	db, err := sqldb.Open(context.Background(), sqldb.SQLite, filepath.Join(t.TempDir(), "test.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// PostgresDSN returns a DSN for a fresh schema, dropped at cleanup; the
// test is skipped when STREAMGATE_TEST_POSTGRES is unset.
func PostgresDSN(t testing.TB) string {
	t.Helper()
	base := os.Getenv(EnvPostgres)
	if base == "" {
		t.Skipf("%s is unset: skipping the PostgreSQL test (e.g. %s=postgres://postgres@127.0.0.1:5432/test?sslmode=disable)", EnvPostgres, EnvPostgres)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "t_" + hex.EncodeToString(b[:])
	admin, err := sqldb.Open(context.Background(), sqldb.Postgres, base)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec(`CREATE SCHEMA ` + schema); err != nil {
		_ = admin.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = admin.Exec(`DROP SCHEMA ` + schema + ` CASCADE`)
		_ = admin.Close()
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// Postgres opens a fresh schema in the test server, closed and dropped at
// cleanup; the test is skipped when STREAMGATE_TEST_POSTGRES is unset.
func Postgres(t testing.TB) *sqldb.DB {
	t.Helper()
	dsn := PostgresDSN(t)
	db, err := sqldb.Open(context.Background(), sqldb.Postgres, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}
