package inventory

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/streamgate/streamgate/services/internal/sqldb"
)

// sqlStore keeps items in one SQL table, in SQLite or PostgreSQL.
type sqlStore struct {
	db *sqldb.DB
}

var _ Store = (*sqlStore)(nil)

// NewSQLStore migrates the items table in db and returns a Store on it.
// Stock changes are single conditional statements inside one transaction
// per reservation or release, so stock never goes below zero however many
// instances share the database.
func NewSQLStore(ctx context.Context, db *sqldb.DB) (Store, error) {
	// Ids sort in byte order in both dialects, as paging expects.
	idType := "TEXT"
	if db.Dialect == sqldb.Postgres {
		idType = `TEXT COLLATE "C"`
	}
	err := db.Migrate(ctx, "inventory", []string{
		`CREATE TABLE IF NOT EXISTS items (
			id          ` + idType + ` PRIMARY KEY,
			name        TEXT   NOT NULL,
			price_cents BIGINT NOT NULL CHECK (price_cents >= 0),
			stock       BIGINT NOT NULL CHECK (stock >= 0)
		)`,
	})
	if err != nil {
		return nil, err
	}
	return &sqlStore{db: db}, nil
}

const itemColumns = `id, name, price_cents, stock`

type scanner interface{ Scan(dest ...any) error }

func scanItem(r scanner) (Item, error) {
	var it Item
	err := r.Scan(&it.ID, &it.Name, &it.PriceCents, &it.Stock)
	return it, err
}

func (s *sqlStore) Get(ctx context.Context, id string) (Item, error) {
	it, err := scanItem(s.db.QueryRowContext(ctx, s.db.Rebind(`SELECT `+itemColumns+` FROM items WHERE id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return Item{}, errNotFound(id)
	}
	if err != nil {
		return Item{}, fmt.Errorf("get item: %w", err)
	}
	return it, nil
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
	rows, err := s.db.QueryContext(ctx, s.db.Rebind(query), args...)
	if err != nil {
		return nil, fmt.Errorf("list items: %w", err)
	}
	defer rows.Close()
	out := []Item{}
	for rows.Next() {
		it, err := scanItem(rows)
		if err != nil {
			return nil, fmt.Errorf("list items: %w", err)
		}
		out = append(out, it)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list items: %w", err)
	}
	return out, nil
}

func (s *sqlStore) Create(ctx context.Context, it Item) error {
	_, err := s.db.ExecContext(ctx, s.db.Rebind(`INSERT INTO items (`+itemColumns+`) VALUES (?, ?, ?, ?)`),
		it.ID, it.Name, it.PriceCents, it.Stock)
	if sqldb.IsUniqueViolation(err) {
		return errExists(it.ID)
	}
	if err != nil {
		return fmt.Errorf("create item: %w", err)
	}
	return nil
}

func (s *sqlStore) Update(ctx context.Context, id string, p UpdateInput) (Item, error) {
	it, err := scanItem(s.db.QueryRowContext(ctx, s.db.Rebind(`UPDATE items SET
		name = COALESCE(?, name), price_cents = COALESCE(?, price_cents), stock = COALESCE(?, stock)
		WHERE id = ? RETURNING `+itemColumns), p.Name, p.PriceCents, p.Stock, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Item{}, errNotFound(id)
	}
	if err != nil {
		return Item{}, fmt.Errorf("update item: %w", err)
	}
	return it, nil
}

func (s *sqlStore) Delete(ctx context.Context, id string) (Item, error) {
	it, err := scanItem(s.db.QueryRowContext(ctx, s.db.Rebind(`DELETE FROM items WHERE id = ? RETURNING `+itemColumns), id))
	if errors.Is(err, sql.ErrNoRows) {
		return Item{}, errNotFound(id)
	}
	if err != nil {
		return Item{}, fmt.Errorf("delete item: %w", err)
	}
	return it, nil
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
	rows, err := s.db.QueryContext(ctx, s.db.Rebind(`SELECT `+itemColumns+` FROM items WHERE id IN (`+marks+`)`), args...)
	if err != nil {
		return nil, fmt.Errorf("look up items: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		it, err := scanItem(rows)
		if err != nil {
			return nil, fmt.Errorf("look up items: %w", err)
		}
		out[it.ID] = it
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("look up items: %w", err)
	}
	return out, nil
}

// Reserve runs one transaction of conditional decrements. Each UPDATE only
// matches while the row has enough stock; under PostgreSQL's READ COMMITTED
// a concurrent UPDATE waits for the row lock and re-checks the condition on
// the committed row, and SQLite serializes the transactions, so stock never
// goes negative. Rows are touched in id order so that two reservations of
// the same items cannot deadlock. After the first shortage the remaining
// lines are only read, to report every shortage, and the transaction rolls
// back.
func (s *sqlStore) Reserve(ctx context.Context, lines []Line) ([]Shortage, error) {
	ordered := byItemID(lines)
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("reserve stock: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	decrement := s.db.Rebind(`UPDATE items SET stock = stock - ? WHERE id = ? AND stock >= ?`)
	stockOf := s.db.Rebind(`SELECT stock FROM items WHERE id = ?`)
	short := map[string]int64{} // item id → stock found
	for _, l := range ordered {
		failed := false
		if len(short) == 0 {
			res, err := tx.ExecContext(ctx, decrement, l.Quantity, l.ItemID, l.Quantity)
			if err != nil {
				return nil, fmt.Errorf("reserve stock: %w", err)
			}
			n, err := res.RowsAffected()
			if err != nil {
				return nil, fmt.Errorf("reserve stock: %w", err)
			}
			if n == 1 {
				continue
			}
			failed = true
		}
		var stock int64
		err := tx.QueryRowContext(ctx, stockOf, l.ItemID).Scan(&stock)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return nil, fmt.Errorf("reserve stock: %w", err)
		}
		// The line whose decrement failed is short even if a restock
		// committed since: it was not decremented.
		if failed || stock < l.Quantity {
			short[l.ItemID] = stock
		}
	}
	if len(short) == 0 {
		if err := tx.Commit(); err != nil {
			return nil, fmt.Errorf("reserve stock: %w", err)
		}
		return nil, nil
	}
	var out []Shortage
	for _, l := range lines {
		if stock, ok := short[l.ItemID]; ok {
			out = append(out, Shortage{ItemID: l.ItemID, Requested: l.Quantity, InStock: stock})
		}
	}
	return out, nil
}

// Release runs one transaction of increments in id order, as Reserve does,
// so that releases and reservations of the same items cannot deadlock. An
// increment that matches no row, for an unknown item or one whose stock
// would overflow (which SQLite would silently turn into a REAL), rolls
// the whole release back.
func (s *sqlStore) Release(ctx context.Context, lines []Line) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("release stock: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	increment := s.db.Rebind(`UPDATE items SET stock = stock + ? WHERE id = ? AND stock <= ?`)
	exists := s.db.Rebind(`SELECT 1 FROM items WHERE id = ?`)
	for _, l := range byItemID(lines) {
		res, err := tx.ExecContext(ctx, increment, l.Quantity, l.ItemID, math.MaxInt64-l.Quantity)
		if err != nil {
			return fmt.Errorf("release stock: %w", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return fmt.Errorf("release stock: %w", err)
		}
		if n == 1 {
			continue
		}
		var one int
		err = tx.QueryRowContext(ctx, exists, l.ItemID).Scan(&one)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return errNotFound(l.ItemID)
		case err != nil:
			return fmt.Errorf("release stock: %w", err)
		}
		return errStockOverflow(l)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("release stock: %w", err)
	}
	return nil
}
