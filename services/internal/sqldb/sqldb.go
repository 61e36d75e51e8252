// Package sqldb opens the example services' SQL databases — embedded
// SQLite (pure Go, no cgo) or PostgreSQL (pgx) — behind one small type, so
// a service writes its queries once.
//
//	db, err := sqldb.Open(ctx, sqldb.SQLite, "data/users.db")   // or sqldb.Postgres, "postgres://…"
//	err = db.Migrate(ctx, "users", []string{`CREATE TABLE IF NOT EXISTS users (…)`})
//	row := db.QueryRowContext(ctx, db.Rebind(`SELECT name FROM users WHERE id = ?`), id)
package sqldb

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Dialect is the kind of database.
type Dialect string

// The supported dialects.
const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

// DB is an open database and its dialect.
type DB struct {
	*sql.DB
	Dialect Dialect
}

// KeyText is the column type of a text key that sorts byte-wise in both
// dialects, as paging expects: TEXT, with the "C" collation on PostgreSQL
// whatever the server's default collation.
func (db *DB) KeyText() string {
	if db.Dialect == Postgres {
		return `TEXT COLLATE "C"`
	}
	return "TEXT"
}

// Open opens a database. For SQLite the DSN is a file path (created if
// missing) and the connection runs in WAL mode with a busy timeout and
// foreign keys on; transactions take the write lock at BEGIN, so
// read-modify-write transactions serialize instead of failing. For
// PostgreSQL the DSN is a URL; an optional "search_path" query parameter
// selects the schema.
func Open(ctx context.Context, d Dialect, dsn string) (*DB, error) {
	var db *sql.DB
	var err error
	switch d {
	case SQLite:
		db, err = sql.Open("sqlite", "file:"+dsn+"?_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)&_pragma=foreign_keys(1)&_txlock=immediate")
		if err == nil {
			db.SetMaxOpenConns(4)
		}
	case Postgres:
		db, err = sql.Open("pgx", dsn)
		if err == nil {
			db.SetMaxOpenConns(16)
		}
	default:
		return nil, fmt.Errorf("sqldb: unknown dialect %q (want sqlite or postgres)", d)
	}
	if err != nil {
		return nil, err
	}
	if err := db.PingContext(ctx); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("sqldb: open %s: %w", d, err)
	}
	return &DB{DB: db, Dialect: d}, nil
}

// Rebind turns ? placeholders into the dialect's: $1, $2, … for PostgreSQL.
// Queries must not contain a literal question mark.
func (db *DB) Rebind(query string) string {
	if db.Dialect != Postgres {
		return query
	}
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// Migrate creates the schema: it runs the statements in order in one
// transaction. Statements must be idempotent (CREATE … IF NOT EXISTS).
// name is only used in errors.
func (db *DB) Migrate(ctx context.Context, name string, stmts []string) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	for i, s := range stmts {
		if _, err := tx.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("sqldb: migrate %s, statement %d: %w", name, i+1, err)
		}
	}
	return tx.Commit()
}

// IsUniqueViolation reports whether err is a unique or primary key
// constraint failure in either dialect.
func IsUniqueViolation(err error) bool {
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		return pg.Code == "23505"
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	return false
}

// IsUnreachable reports whether err says the database server cannot be
// reached now (a failed connect, a refused, reset or cut connection): an
// outage to retry later, not a fault of the request or of the data. A
// write that failed so may or may not have committed.
func IsUnreachable(err error) bool {
	var op *net.OpError
	var connect *pgconn.ConnectError
	return errors.As(err, &op) || errors.As(err, &connect) ||
		errors.Is(err, driver.ErrBadConn) || errors.Is(err, sql.ErrConnDone) || errors.Is(err, io.ErrUnexpectedEOF)
}
