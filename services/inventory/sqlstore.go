package inventory

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/streamgate/streamgate/services/internal/once"
	"github.com/streamgate/streamgate/services/internal/sqldb"
)

// sqlStore keeps items in one SQL table, in SQLite or PostgreSQL.
type sqlStore struct {
	db   *sqldb.DB
	keys *once.Table // the keys of applied writes: inventory_applied_keys
}

var _ Store = (*sqlStore)(nil)

// NewSQLStore migrates the items and reservations tables in db and returns
// a Store on it. A reservation's record and its stock changes are one
// transaction: stock changes are single conditional statements, so stock
// never goes below zero, and the reservation id is the primary key, so it
// takes stock once, however many instances share the database.
func NewSQLStore(ctx context.Context, db *sqldb.DB) (Store, error) {
	// Ids sort in byte order in both dialects, as paging expects.
	idType := db.KeyText()
	// The reservations table came after items: CREATE … IF NOT EXISTS
	// adds it to a database of the earlier schema, and addVersion its
	// version column to one made before that column.
	err := db.Migrate(ctx, "inventory", []string{
		`CREATE TABLE IF NOT EXISTS items (
			id          ` + idType + ` PRIMARY KEY,
			name        TEXT   NOT NULL,
			price_cents BIGINT NOT NULL CHECK (price_cents >= 0),
			stock       BIGINT NOT NULL CHECK (stock >= 0)
		)`,
		`CREATE TABLE IF NOT EXISTS reservations (
			id         ` + idType + ` PRIMARY KEY,
			lines      TEXT   NOT NULL,
			status     TEXT   NOT NULL CHECK (status IN ('held', 'released')),
			created_at BIGINT NOT NULL,
			version    BIGINT NOT NULL DEFAULT 1
		)`,
		`CREATE INDEX IF NOT EXISTS reservations_by_status ON reservations (status, id)`,
	})
	if err != nil {
		return nil, err
	}
	if err := addVersion(ctx, db); err != nil {
		return nil, fmt.Errorf("inventory: migrate: %w", err)
	}
	keys, err := once.NewTable(ctx, db, "inventory_applied_keys")
	if err != nil {
		return nil, err
	}
	return &sqlStore{db: db, keys: keys}, nil
}

// addVersion adds the reservations' version column to a table made
// without it, in one transaction (which SQLite takes with the write lock,
// so instances opening one database at once add it once); the
// reservations it holds start at version 1.
func addVersion(ctx context.Context, db *sqldb.DB) error {
	const column = `version BIGINT NOT NULL DEFAULT 1`
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	if db.Dialect == sqldb.Postgres {
		_, err = tx.ExecContext(ctx, `ALTER TABLE reservations ADD COLUMN IF NOT EXISTS `+column)
	} else {
		var n int
		err = tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM pragma_table_info('reservations') WHERE name = 'version'`).Scan(&n)
		if err == nil && n == 0 {
			_, err = tx.ExecContext(ctx, `ALTER TABLE reservations ADD COLUMN `+column)
		}
	}
	if err != nil {
		return err
	}
	return tx.Commit()
}

const itemColumns = `id, name, price_cents, stock`

func scanItem(r sqldb.Scanner) (Item, error) {
	var it Item
	if err := r.Scan(&it.ID, &it.Name, &it.PriceCents, &it.Stock); err != nil {
		return Item{}, err
	}
	return it, nil
}

func (s *sqlStore) Get(ctx context.Context, id string) (Item, error) {
	return sqldb.QueryOne(ctx, s.db, scanItem, ErrNotFound, "get item", `SELECT `+itemColumns+` FROM items WHERE id = ?`, id)
}

func (s *sqlStore) List(ctx context.Context, q ListQuery) ([]Item, error) {
	query := `SELECT ` + itemColumns + ` FROM items WHERE id > ?`
	args := []any{q.After}
	if q.NameContains != "" {
		// A plain substring test, case-sensitive in both dialects (LIKE is
		// not, and would need escaping).
		if s.db.Dialect == sqldb.Postgres {
			query += ` AND strpos(name, ?) > 0`
		} else {
			query += ` AND instr(name, ?) > 0`
		}
		args = append(args, q.NameContains)
	}
	query += ` ORDER BY id LIMIT ?`
	args = append(args, q.Limit)
	return sqldb.QueryAll(ctx, s.db, scanItem, "list items", query, args...)
}

func (s *sqlStore) Applied(ctx context.Context, k once.Key) (once.Record, bool, error) {
	return s.keys.Applied(ctx, k)
}

func (s *sqlStore) Create(ctx context.Context, it Item) error {
	return s.keys.Insert(ctx, it, ErrExists, "create item", `INSERT INTO items (`+itemColumns+`) VALUES (?, ?, ?, ?)`,
		it.ID, it.Name, it.PriceCents, it.Stock)
}

func (s *sqlStore) Update(ctx context.Context, id string, p UpdateInput) (Item, error) {
	return s.writeItem(ctx, "update item", `UPDATE items SET
		name = COALESCE(?, name), price_cents = COALESCE(?, price_cents), stock = COALESCE(?, stock)
		WHERE id = ? RETURNING `+itemColumns, p.Name, p.PriceCents, p.Stock, id)
}

func (s *sqlStore) Delete(ctx context.Context, id string) (Item, error) {
	return s.writeItem(ctx, "delete item", `DELETE FROM items WHERE id = ? RETURNING `+itemColumns, id)
}

// writeItem runs a statement returning one item row as a keyed write;
// ErrNotFound when it returns none.
func (s *sqlStore) writeItem(ctx context.Context, what, query string, args ...any) (Item, error) {
	return once.WriteTable(ctx, s.keys, func(tx *sql.Tx) (Item, error) {
		it, err := scanItem(tx.QueryRowContext(ctx, s.db.Rebind(query), args...))
		return it, sqldb.RowError(err, ErrNotFound, what)
	})
}

func (s *sqlStore) Lookup(ctx context.Context, ids []string) (map[string]Item, error) {
	out := make(map[string]Item, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	marks := strings.Repeat("?, ", len(ids)-1) + "?"
	items, err := sqldb.QueryAll(ctx, s.db, scanItem, "look up items", `SELECT `+itemColumns+` FROM items WHERE id IN (`+marks+`)`, args...)
	if err != nil {
		return nil, err
	}
	for _, it := range items {
		out[it.ID] = it
	}
	return out, nil
}
