package once

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/streamgate/streamgate/services/internal/sqldb"
)

// Table keeps the records of a SQL store's keys in a table of its
// database, one row per subject and key (the primary key), written in the
// same transaction as the row it stands for.
type Table struct {
	db   *sqldb.DB
	name string
}

var _ Ledger = (*Table)(nil)

// NewTable creates the table name in db if it is missing (CREATE … IF NOT
// EXISTS, so a database of an earlier schema gains it) and returns it.
func NewTable(ctx context.Context, db *sqldb.DB, name string) (*Table, error) {
	err := db.Migrate(ctx, name, []string{
		`CREATE TABLE IF NOT EXISTS ` + name + ` (
			subject     TEXT   NOT NULL,
			idem_key    TEXT   NOT NULL,
			fingerprint TEXT   NOT NULL,
			result      TEXT   NOT NULL,
			created_at  BIGINT NOT NULL,
			PRIMARY KEY (subject, idem_key)
		)`,
	})
	if err != nil {
		return nil, err
	}
	return &Table{db: db, name: name}, nil
}

// queryRower is a *sql.DB or a *sql.Tx.
type queryRower interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// Applied returns the record of k's subject and id, and whether there is
// one.
func (t *Table) Applied(ctx context.Context, k Key) (Record, bool, error) {
	return t.applied(ctx, t.db, k)
}

func (t *Table) applied(ctx context.Context, q queryRower, k Key) (Record, bool, error) {
	var rec Record
	var result string
	err := q.QueryRowContext(ctx, t.db.Rebind(`SELECT fingerprint, result FROM `+t.name+` WHERE subject = ? AND idem_key = ?`), k.Subject, k.ID).
		Scan(&rec.Fingerprint, &result)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return Record{}, false, nil
	case err != nil:
		return Record{}, false, fmt.Errorf("read idempotency key: %w", err)
	}
	rec.Result = []byte(result)
	return rec, true, nil
}

// Write runs write in one transaction of the table's database and
// commits if it returns no error. Under a key in ctx (From) the
// transaction first claims the key: when it was applied already (a
// concurrent claim waits for the other transaction to end) nothing is
// written and the error is an *AppliedError; otherwise write's result is
// kept with the key, and the row and its key commit together. Without a
// key it just runs write in a transaction.
func (t *Table) Write(ctx context.Context, write func(tx *sql.Tx) (any, error)) error {
	tx, err := t.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	k, keyed := From(ctx)
	if keyed {
		if err := t.claim(ctx, tx, k); err != nil {
			return err
		}
	}
	result, err := write(tx)
	if err != nil {
		return err
	}
	if keyed {
		b, err := encode(result)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, t.db.Rebind(`UPDATE `+t.name+` SET result = ? WHERE subject = ? AND idem_key = ?`), string(b), k.Subject, k.ID); err != nil {
			return fmt.Errorf("keep idempotency key: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	if keyed {
		markKept(ctx)
	}
	return nil
}

// Insert runs one INSERT (with ? placeholders) as a keyed write (Write),
// keeping row as its result: exists when the row violates a unique
// constraint, any other failure wrapped as "what: err".
func (t *Table) Insert(ctx context.Context, row any, exists error, what, query string, args ...any) error {
	return t.Write(ctx, func(tx *sql.Tx) (any, error) {
		_, err := tx.ExecContext(ctx, t.db.Rebind(query), args...)
		if sqldb.IsUniqueViolation(err) {
			return nil, exists
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		return row, nil
	})
}

// claim inserts k's row in tx; when there is one, it returns it as an
// *AppliedError.
func (t *Table) claim(ctx context.Context, tx *sql.Tx, k Key) error {
	n, err := sqldb.Affected(ctx, tx, "claim idempotency key", t.db.Rebind(`INSERT INTO `+t.name+` (subject, idem_key, fingerprint, result, created_at) VALUES (?, ?, ?, '', ?)
		ON CONFLICT (subject, idem_key) DO NOTHING`), k.Subject, k.ID, k.Fingerprint, time.Now().UnixNano())
	if err != nil {
		return err
	}
	if n == 1 {
		return nil
	}
	rec, ok, err := t.applied(ctx, tx, k)
	if err != nil {
		return err
	}
	if !ok {
		return errors.New("claim idempotency key: taken, then gone")
	}
	return &AppliedError{Record: rec}
}
