package users

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/streamgate/streamgate/services/internal/once"
	"github.com/streamgate/streamgate/services/internal/sqldb"
)

// sqlStore is the Store on SQLite or PostgreSQL. Email uniqueness is the
// table's UNIQUE constraint, so it holds across instances; so is the
// uniqueness of a write's idempotency key (table users_applied_keys).
type sqlStore struct {
	db   *sqldb.DB
	keys *once.Table
}

var _ Store = (*sqlStore)(nil)

const userColumns = `id, name, email, status, created_at`

// NewSQLStore returns a Store on db, creating its tables if missing.
func NewSQLStore(ctx context.Context, db *sqldb.DB) (Store, error) {
	// Ids sort byte-wise in both dialects, so pages follow the same order
	// as the memory store.
	idType := db.KeyText()
	err := db.Migrate(ctx, "users", []string{
		`CREATE TABLE IF NOT EXISTS users (
			id ` + idType + ` NOT NULL PRIMARY KEY,
			name TEXT NOT NULL,
			email TEXT NOT NULL UNIQUE,
			status TEXT NOT NULL CHECK (status IN ('active', 'suspended')),
			created_at BIGINT NOT NULL
		)`,
		`CREATE INDEX IF NOT EXISTS users_status_id ON users (status, id)`,
	})
	if err != nil {
		return nil, err
	}
	keys, err := once.NewTable(ctx, db, "users_applied_keys")
	if err != nil {
		return nil, err
	}
	return &sqlStore{db: db, keys: keys}, nil
}

func scanUser(r sqldb.Scanner) (User, error) {
	var u User
	if err := r.Scan(&u.ID, &u.Name, &u.Email, &u.Status, sqldb.NanosInto(&u.CreatedAt)); err != nil {
		return User{}, err
	}
	return u, nil
}

func (s *sqlStore) Get(ctx context.Context, id string) (User, error) {
	return sqldb.QueryOne(ctx, s.db, scanUser, ErrNotFound, "get user", `SELECT `+userColumns+` FROM users WHERE id = ?`, id)
}

func (s *sqlStore) List(ctx context.Context, q Query) ([]User, error) {
	query := `SELECT ` + userColumns + ` FROM users WHERE id > ?`
	args := []any{q.After}
	if q.Status != "" {
		query += ` AND status = ?`
		args = append(args, q.Status)
	}
	if q.Email != "" {
		query += ` AND email = ?`
		args = append(args, q.Email)
	}
	query += ` ORDER BY id LIMIT ?`
	args = append(args, max(q.Limit, 0))
	return sqldb.QueryAll(ctx, s.db, scanUser, "list users", query, args...)
}

func (s *sqlStore) Applied(ctx context.Context, k once.Key) (once.Record, bool, error) {
	return s.keys.Applied(ctx, k)
}

// Create inserts with ON CONFLICT DO NOTHING (both dialects), so a clash
// is no error but zero rows; it then looks up which of id and email
// clashed. Should the clashing row vanish in between, it tries again.
func (s *sqlStore) Create(ctx context.Context, u User) error {
	return s.keys.Write(ctx, func(tx *sql.Tx) (any, error) {
		return u, s.create(ctx, tx, u)
	})
}

func (s *sqlStore) create(ctx context.Context, tx *sql.Tx, u User) error {
	insert := s.db.Rebind(`INSERT INTO users (` + userColumns + `) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`)
	clash := s.db.Rebind(`SELECT id FROM users WHERE id = ? OR email = ?`)
	for range 3 {
		n, err := sqldb.Affected(ctx, tx, "create user", insert, u.ID, u.Name, u.Email, u.Status, u.CreatedAt.UnixNano())
		if err != nil {
			return err
		}
		if n == 1 {
			return nil
		}
		rows, err := tx.QueryContext(ctx, clash, u.ID, u.Email)
		if err != nil {
			return fmt.Errorf("create user: %w", err)
		}
		found, idTaken := false, false
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				_ = rows.Close()
				return fmt.Errorf("create user: %w", err)
			}
			found, idTaken = true, idTaken || id == u.ID
		}
		if err := rows.Close(); err != nil {
			return fmt.Errorf("create user: %w", err)
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("create user: %w", err)
		}
		switch {
		case idTaken:
			return ErrIDTaken
		case found:
			return ErrEmailTaken
		}
	}
	return errors.New("create user: conflict did not settle after 3 tries")
}

func (s *sqlStore) Update(ctx context.Context, id string, p Patch) (User, error) {
	var sets []string
	var args []any
	for _, f := range []struct {
		col string
		v   *string
	}{{"name", p.Name}, {"email", p.Email}, {"status", p.Status}} {
		if f.v != nil {
			sets = append(sets, f.col+` = ?`)
			args = append(args, *f.v)
		}
	}
	query := `SELECT ` + userColumns + ` FROM users WHERE id = ?`
	if len(sets) > 0 {
		query = `UPDATE users SET ` + strings.Join(sets, ", ") + ` WHERE id = ? RETURNING ` + userColumns
	}
	return once.WriteTable(ctx, s.keys, func(tx *sql.Tx) (User, error) {
		u, err := scanUser(tx.QueryRowContext(ctx, s.db.Rebind(query), append(args, id)...))
		if sqldb.IsUniqueViolation(err) {
			return User{}, ErrEmailTaken
		}
		return u, sqldb.RowError(err, ErrNotFound, "update user")
	})
}

func (s *sqlStore) Delete(ctx context.Context, id string) (User, error) {
	return once.WriteTable(ctx, s.keys, func(tx *sql.Tx) (User, error) {
		u, err := scanUser(tx.QueryRowContext(ctx, s.db.Rebind(`DELETE FROM users WHERE id = ? RETURNING `+userColumns), id))
		return u, sqldb.RowError(err, ErrNotFound, "delete user")
	})
}
