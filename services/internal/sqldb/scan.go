package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// Scanner is a *sql.Row or *sql.Rows: what a row scanner reads from.
type Scanner interface{ Scan(dest ...any) error }

// QueryAll runs query (with ? placeholders, rebound for the dialect) and
// returns every row turned into a T by scan, never nil; the first error
// of the query, a scan or the rows ends it, wrapped as "what: err".
//
//	return sqldb.QueryAll(ctx, db, scanUser, "list users", `SELECT … ORDER BY id LIMIT ?`, limit)
func QueryAll[T any](ctx context.Context, db *DB, scan func(Scanner) (T, error), what, query string, args ...any) ([]T, error) {
	out, err := queryAll(ctx, db, scan, query, args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return out, nil
}

func queryAll[T any](ctx context.Context, db *DB, scan func(Scanner) (T, error), query string, args ...any) ([]T, error) {
	rows, err := db.QueryContext(ctx, db.Rebind(query), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// QueryOne runs query (with ? placeholders, rebound for the dialect) for
// one row and turns it into a T by scan; the error is RowError's: no row
// is notFound, a failure "what: err".
//
//	return sqldb.QueryOne(ctx, db, scanUser, ErrNotFound, "get user", `SELECT … WHERE id = ?`, id)
func QueryOne[T any](ctx context.Context, db *DB, scan func(Scanner) (T, error), notFound error, what, query string, args ...any) (T, error) {
	v, err := scan(db.QueryRowContext(ctx, db.Rebind(query), args...))
	return v, RowError(err, notFound, what)
}

// RowError is the error of a query for one row as a store returns it: nil
// stays nil, sql.ErrNoRows becomes notFound (the store's own error), and
// any other error is wrapped as "what: err".
//
//	u, err := scanUser(db.QueryRowContext(ctx, db.Rebind(`SELECT … WHERE id = ?`), id))
//	return u, sqldb.RowError(err, ErrNotFound, "get user")
func RowError(err, notFound error, what string) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, sql.ErrNoRows):
		return notFound
	}
	return fmt.Errorf("%s: %w", what, err)
}

// Execer is what Affected runs a statement on: a *DB or a *sql.Tx.
type Execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// Affected runs the statement (rebound already) on e and returns how many
// rows it changed; its failure, or that of counting them, is wrapped as
// "what: err".
//
//	n, err := sqldb.Affected(ctx, tx, "hold voucher", db.Rebind(`INSERT … ON CONFLICT DO NOTHING`), code, id)
func Affected(ctx context.Context, e Execer, what, query string, args ...any) (int64, error) {
	res, err := e.ExecContext(ctx, query, args...)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", what, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("%s: %w", what, err)
	}
	return n, nil
}
