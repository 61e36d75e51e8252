package orders

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/streamgate/streamgate/services/internal/once"
	"github.com/streamgate/streamgate/services/internal/sqldb"
)

// schema is the SQL store's tables, in both dialects. An order's lines are
// kept as a JSON array; times as unix nanoseconds (0 for none).
// voucher_holds holds one row per voucher code used by a paying order, and
// voucher_redemptions one per code redeemed by a paid order: their primary
// keys are what keep two orders from paying with the same voucher.
var schema = []string{
	`CREATE TABLE IF NOT EXISTS orders (
		id TEXT PRIMARY KEY,
		user_id TEXT NOT NULL,
		lines TEXT NOT NULL,
		voucher_code TEXT NOT NULL DEFAULT '',
		total_cents BIGINT NOT NULL,
		status TEXT NOT NULL,
		payment_id TEXT NOT NULL DEFAULT '',
		created_at BIGINT NOT NULL,
		version BIGINT NOT NULL DEFAULT 1,
		purchase_id TEXT NOT NULL DEFAULT '',
		lease_expires_at BIGINT NOT NULL DEFAULT 0
	)`,
	`CREATE INDEX IF NOT EXISTS orders_user_id ON orders (user_id, id)`,
	`CREATE TABLE IF NOT EXISTS vouchers (
		code TEXT PRIMARY KEY,
		discount_cents BIGINT NOT NULL
	)`,
	`CREATE TABLE IF NOT EXISTS voucher_redemptions (
		code TEXT PRIMARY KEY,
		order_id TEXT NOT NULL
	)`,
	`CREATE TABLE IF NOT EXISTS voucher_holds (
		code TEXT PRIMARY KEY,
		order_id TEXT NOT NULL
	)`,
	`CREATE INDEX IF NOT EXISTS voucher_holds_order_id ON voucher_holds (order_id)`,
}

// addedColumns are the orders columns added after the first schema, for
// databases created by it; the defaults make an old order version 1.
var addedColumns = []struct{ name, def string }{
	{"version", "BIGINT NOT NULL DEFAULT 1"},
	{"purchase_id", "TEXT NOT NULL DEFAULT ''"},
	{"lease_expires_at", "BIGINT NOT NULL DEFAULT 0"},
}

// afterColumns are the schema statements that need the added columns.
var afterColumns = []string{
	`CREATE INDEX IF NOT EXISTS orders_status ON orders (status, id)`,
}

const orderColumns = `id, user_id, lines, voucher_code, total_cents, status, payment_id, created_at, version, purchase_id, lease_expires_at`

// sqlStore is the Store on SQLite or PostgreSQL.
type sqlStore struct {
	db   *sqldb.DB
	keys *once.Table // the keys of applied writes: orders_applied_keys
}

var _ Store = (*sqlStore)(nil)

// NewSQLStore returns a Store kept in db, creating its tables (orders,
// vouchers, voucher_holds, voucher_redemptions, orders_applied_keys) if
// they do not exist and
// adding the columns a database from an older version lacks.
func NewSQLStore(ctx context.Context, db *sqldb.DB) (Store, error) {
	if db == nil {
		return nil, errors.New("orders: nil database")
	}
	if err := db.Migrate(ctx, "orders", schema); err != nil {
		return nil, err
	}
	if err := addColumns(ctx, db); err != nil {
		return nil, fmt.Errorf("orders: migrate: %w", err)
	}
	if err := db.Migrate(ctx, "orders", afterColumns); err != nil {
		return nil, err
	}
	keys, err := once.NewTable(ctx, db, "orders_applied_keys")
	if err != nil {
		return nil, err
	}
	return &sqlStore{db: db, keys: keys}, nil
}

// addColumns adds the addedColumns the orders table lacks, in one
// transaction.
func addColumns(ctx context.Context, db *sqldb.DB) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	for _, c := range addedColumns {
		if db.Dialect == sqldb.Postgres {
			if _, err := tx.ExecContext(ctx, `ALTER TABLE orders ADD COLUMN IF NOT EXISTS `+c.name+` `+c.def); err != nil {
				return err
			}
			continue
		}
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM pragma_table_info('orders') WHERE name = ?`, c.name).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			if _, err := tx.ExecContext(ctx, `ALTER TABLE orders ADD COLUMN `+c.name+` `+c.def); err != nil {
				return err
			}
		}
	}
	return tx.Commit()
}

// scanner is a *sql.Row or *sql.Rows.
func scanOrder(row sqldb.Scanner) (Order, error) {
	var o Order
	var lines string
	if err := row.Scan(&o.ID, &o.UserID, &lines, &o.VoucherCode, &o.TotalCents, &o.Status, &o.PaymentID, sqldb.NanosInto(&o.CreatedAt), &o.Version, &o.PurchaseID, sqldb.NanosInto(&o.LeaseExpiresAt)); err != nil {
		return Order{}, err
	}
	if err := json.Unmarshal([]byte(lines), &o.Lines); err != nil {
		return Order{}, fmt.Errorf("order %s: decode lines: %w", o.ID, err)
	}
	return o, nil
}

func scanVoucher(row sqldb.Scanner) (Voucher, error) {
	var v Voucher
	if err := row.Scan(&v.Code, &v.DiscountCents); err != nil {
		return Voucher{}, err
	}
	return v, nil
}

func encodeLines(lines []Line) (string, error) {
	if lines == nil {
		lines = []Line{}
	}
	b, err := json.Marshal(lines)
	return string(b), err
}

func (s *sqlStore) Applied(ctx context.Context, k once.Key) (once.Record, bool, error) {
	return s.keys.Applied(ctx, k)
}

func (s *sqlStore) CreateOrder(ctx context.Context, o Order) error {
	lines, err := encodeLines(o.Lines)
	if err != nil {
		return fmt.Errorf("encode lines: %w", err)
	}
	return s.keys.Insert(ctx, o, ErrOrderExists, "insert order", `INSERT INTO orders (`+orderColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		o.ID, o.UserID, lines, o.VoucherCode, o.TotalCents, string(o.Status), o.PaymentID, o.CreatedAt.UnixNano(), o.Version, o.PurchaseID, sqldb.Nanos(o.LeaseExpiresAt))
}

func (s *sqlStore) GetOrder(ctx context.Context, id string) (Order, error) {
	return getOrder(ctx, s.db, s.db.Rebind, id)
}

// querier is a *sql.DB or *sql.Tx.
type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func getOrder(ctx context.Context, q querier, rebind func(string) string, id string) (Order, error) {
	o, err := scanOrder(q.QueryRowContext(ctx, rebind(`SELECT `+orderColumns+` FROM orders WHERE id = ?`), id))
	return o, sqldb.RowError(err, ErrOrderNotFound, "get order")
}

func (s *sqlStore) ListOrders(ctx context.Context, q OrderQuery) ([]Order, error) {
	var where strings.Builder
	args := []any{q.After}
	where.WriteString(`id > ?`)
	if q.UserID != "" {
		where.WriteString(` AND user_id = ?`)
		args = append(args, q.UserID)
	}
	if q.Status != "" {
		where.WriteString(` AND status = ?`)
		args = append(args, string(q.Status))
	}
	args = append(args, max(q.Limit, 0))
	return sqldb.QueryAll(ctx, s.db, scanOrder, "list orders", `SELECT `+orderColumns+` FROM orders WHERE `+where.String()+` ORDER BY id LIMIT ?`, args...)
}

// inTx runs fn in a transaction and commits if it returns no error. In
// PostgreSQL the conditional UPDATEs row-lock the order, so a concurrent
// compare-and-set waits and then finds the version moved; in SQLite the
// transaction holds the write lock from BEGIN.
func (s *sqlStore) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// changeableWhere is the condition under which an order read at a version
// may be edited or deleted at a time: pending, or paying under an expired
// lease. Its arguments are the id, the version and the time.
const changeableWhere = `id = ? AND version = ? AND (status = 'pending' OR (status = 'paying' AND lease_expires_at <= ?))`

// release ends the voucher hold of order id, if any.
func (s *sqlStore) release(ctx context.Context, tx *sql.Tx, id string) error {
	if _, err := tx.ExecContext(ctx, s.db.Rebind(`DELETE FROM voucher_holds WHERE order_id = ?`), id); err != nil {
		return fmt.Errorf("release voucher hold: %w", err)
	}
	return nil
}

func (s *sqlStore) UpdatePendingOrder(ctx context.Context, prev, next Order, now time.Time) (Order, error) {
	lines, err := encodeLines(next.Lines)
	if err != nil {
		return Order{}, fmt.Errorf("encode lines: %w", err)
	}
	return once.WriteTable(ctx, s.keys, func(tx *sql.Tx) (Order, error) {
		o, err := scanOrder(tx.QueryRowContext(ctx, s.db.Rebind(`UPDATE orders
			SET lines = ?, voucher_code = ?, total_cents = ?, status = 'pending', purchase_id = '', lease_expires_at = 0, version = version + 1
			WHERE `+changeableWhere+` RETURNING `+orderColumns),
			lines, next.VoucherCode, next.TotalCents, prev.ID, prev.Version, now.UnixNano()))
		if errors.Is(err, sql.ErrNoRows) {
			return Order{}, s.whyNotChange(ctx, tx, prev.ID, now)
		}
		if err != nil {
			return Order{}, fmt.Errorf("update order: %w", err)
		}
		return o, s.release(ctx, tx, o.ID)
	})
}

func (s *sqlStore) DeletePendingOrder(ctx context.Context, prev Order, now time.Time) (Order, error) {
	return once.WriteTable(ctx, s.keys, func(tx *sql.Tx) (Order, error) {
		o, err := scanOrder(tx.QueryRowContext(ctx, s.db.Rebind(`DELETE FROM orders WHERE `+changeableWhere+` RETURNING `+orderColumns),
			prev.ID, prev.Version, now.UnixNano()))
		if errors.Is(err, sql.ErrNoRows) {
			return Order{}, s.whyNotChange(ctx, tx, prev.ID, now)
		}
		if err != nil {
			return Order{}, fmt.Errorf("delete order: %w", err)
		}
		return o, s.release(ctx, tx, o.ID)
	})
}

// whyNotChange explains why a conditional edit or delete touched no row.
func (s *sqlStore) whyNotChange(ctx context.Context, tx *sql.Tx, id string, now time.Time) error {
	cur, err := getOrder(ctx, tx, s.db.Rebind, id)
	if err != nil {
		return err
	}
	return whyNotChange(cur, now)
}

func (s *sqlStore) BeginPurchase(ctx context.Context, prev Order, purchaseID string, now, until time.Time) (Order, error) {
	var o Order
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		o, err = scanOrder(tx.QueryRowContext(ctx, s.db.Rebind(`UPDATE orders
			SET status = 'paying', purchase_id = ?, lease_expires_at = ?,
				version = CASE WHEN status = 'paying' AND purchase_id = ? THEN version ELSE version + 1 END
			WHERE id = ? AND version = ? AND (status = 'pending' OR (status = 'paying' AND (purchase_id = ? OR lease_expires_at <= ?)))
			RETURNING `+orderColumns),
			purchaseID, until.UnixNano(), purchaseID, prev.ID, prev.Version, purchaseID, now.UnixNano()))
		if errors.Is(err, sql.ErrNoRows) {
			cur, err := getOrder(ctx, tx, s.db.Rebind, prev.ID)
			if err != nil {
				return err
			}
			return whyNotBegin(cur, purchaseID, now)
		}
		if err != nil {
			return fmt.Errorf("begin purchase: %w", err)
		}
		if o.VoucherCode == "" {
			return nil
		}
		return s.hold(ctx, tx, o, now)
	})
	if err != nil {
		return Order{}, err
	}
	return o, nil
}

// hold makes paying order o the holder of its voucher: a
// *VoucherUsedError if another order redeemed it or holds it under a live
// lease; a holder whose lease expired is abandoned.
func (s *sqlStore) hold(ctx context.Context, tx *sql.Tx, o Order, now time.Time) error {
	code := o.VoucherCode
	var by string
	err := tx.QueryRowContext(ctx, s.db.Rebind(`SELECT order_id FROM voucher_redemptions WHERE code = ?`), code).Scan(&by)
	switch {
	case err == nil && by != o.ID:
		return &VoucherUsedError{Code: code}
	case err != nil && !errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("get redemption: %w", err)
	}
	if n, err := sqldb.Affected(ctx, tx, "hold voucher", s.db.Rebind(`INSERT INTO voucher_holds (code, order_id) VALUES (?, ?) ON CONFLICT (code) DO NOTHING`), code, o.ID); err != nil {
		return err
	} else if n == 1 {
		return nil
	}
	if err := tx.QueryRowContext(ctx, s.db.Rebind(`SELECT order_id FROM voucher_holds WHERE code = ?`), code).Scan(&by); err != nil {
		if errors.Is(err, sql.ErrNoRows) { // released meanwhile
			return &VoucherUsedError{Code: code}
		}
		return fmt.Errorf("get voucher hold: %w", err)
	}
	if by == o.ID {
		return nil
	}
	holder, err := getOrder(ctx, tx, s.db.Rebind, by)
	if err != nil && !errors.Is(err, ErrOrderNotFound) {
		return err
	}
	if err == nil && holder.Status == StatusPaying && holder.VoucherCode == code {
		if live(holder, now) {
			return &VoucherUsedError{Code: code}
		}
		if n, err := sqldb.Affected(ctx, tx, "abandon purchase", s.db.Rebind(`UPDATE orders SET status = 'pending', purchase_id = '', lease_expires_at = 0, version = version + 1
			WHERE id = ? AND version = ? AND status = 'paying'`), holder.ID, holder.Version); err != nil {
			return err
		} else if n != 1 {
			return &VoucherUsedError{Code: code}
		}
	}
	if n, err := sqldb.Affected(ctx, tx, "take voucher hold", s.db.Rebind(`UPDATE voucher_holds SET order_id = ? WHERE code = ? AND order_id = ?`), o.ID, code, by); err != nil {
		return err
	} else if n != 1 {
		return &VoucherUsedError{Code: code}
	}
	return nil
}

func (s *sqlStore) AbortPurchase(ctx context.Context, id, purchaseID string) (Order, bool, error) {
	var o Order
	aborted := false
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		o, err = scanOrder(tx.QueryRowContext(ctx, s.db.Rebind(`UPDATE orders SET status = 'pending', purchase_id = '', lease_expires_at = 0, version = version + 1
			WHERE id = ? AND status = 'paying' AND purchase_id = ? RETURNING `+orderColumns), id, purchaseID))
		if errors.Is(err, sql.ErrNoRows) {
			o, err = getOrder(ctx, tx, s.db.Rebind, id)
			return err
		}
		if err != nil {
			return fmt.Errorf("abort purchase: %w", err)
		}
		aborted = true
		return s.release(ctx, tx, id)
	})
	if err != nil {
		return Order{}, false, err
	}
	return o, aborted, nil
}

// MarkPaid runs in one transaction: the compare-and-set of the order, and
// the redemption of its voucher, whose primary key keeps a second order
// from redeeming the same voucher.
func (s *sqlStore) MarkPaid(ctx context.Context, id string, in MarkPaidInput) (Order, error) {
	var o Order
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		o, err = scanOrder(tx.QueryRowContext(ctx, s.db.Rebind(`UPDATE orders SET status = 'paid', payment_id = ?, lease_expires_at = 0, version = version + 1
			WHERE id = ? AND status = 'paying' AND version = ? AND purchase_id = ? AND total_cents = ? RETURNING `+orderColumns),
			in.PaymentID, id, in.Version, in.PurchaseID, in.AmountCents))
		if errors.Is(err, sql.ErrNoRows) {
			cur, err := getOrder(ctx, tx, s.db.Rebind, id)
			if err != nil {
				return err
			}
			o, err = markPaidOutcome(cur, in)
			return err
		}
		if err != nil {
			return fmt.Errorf("mark order paid: %w", err)
		}
		if o.VoucherCode == "" {
			return nil
		}
		if err := s.release(ctx, tx, id); err != nil {
			return err
		}
		n, err := sqldb.Affected(ctx, tx, "redeem voucher", s.db.Rebind(`INSERT INTO voucher_redemptions (code, order_id) VALUES (?, ?)
			ON CONFLICT (code) DO NOTHING`), o.VoucherCode, id)
		if err != nil {
			return err
		}
		if n == 0 {
			return &VoucherUsedError{Code: o.VoucherCode}
		}
		return nil
	})
	if err != nil {
		return Order{}, err
	}
	return o, nil
}

func (s *sqlStore) VoucherRedeemer(ctx context.Context, code string) (string, error) {
	var id string
	err := s.db.QueryRowContext(ctx, s.db.Rebind(`SELECT order_id FROM voucher_redemptions WHERE code = ?`), code).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("get redemption: %w", err)
	}
	return id, nil
}

func (s *sqlStore) CreateVoucher(ctx context.Context, v Voucher) error {
	return s.keys.Insert(ctx, v, ErrVoucherExists, "insert voucher", `INSERT INTO vouchers (code, discount_cents) VALUES (?, ?)`, v.Code, v.DiscountCents)
}

func (s *sqlStore) GetVoucher(ctx context.Context, code string) (Voucher, error) {
	return sqldb.QueryOne(ctx, s.db, scanVoucher, ErrVoucherNotFound, "get voucher", `SELECT code, discount_cents FROM vouchers WHERE code = ?`, code)
}

func (s *sqlStore) ListVouchers(ctx context.Context, after string, limit int) ([]Voucher, error) {
	return sqldb.QueryAll(ctx, s.db, scanVoucher, "list vouchers", `SELECT code, discount_cents FROM vouchers WHERE code > ? ORDER BY code LIMIT ?`, after, max(limit, 0))
}

func (s *sqlStore) UpdateVoucher(ctx context.Context, v Voucher) (Voucher, error) {
	return s.writeVoucher(ctx, "update voucher", `UPDATE vouchers SET discount_cents = ? WHERE code = ? RETURNING code, discount_cents`, v.DiscountCents, v.Code)
}

func (s *sqlStore) DeleteVoucher(ctx context.Context, code string) (Voucher, error) {
	return s.writeVoucher(ctx, "delete voucher", `DELETE FROM vouchers WHERE code = ? RETURNING code, discount_cents`, code)
}

// writeVoucher runs a statement returning one voucher row as a keyed
// write; ErrVoucherNotFound when it returns none.
func (s *sqlStore) writeVoucher(ctx context.Context, what, query string, args ...any) (Voucher, error) {
	return once.WriteTable(ctx, s.keys, func(tx *sql.Tx) (Voucher, error) {
		v, err := scanVoucher(tx.QueryRowContext(ctx, s.db.Rebind(query), args...))
		return v, sqldb.RowError(err, ErrVoucherNotFound, what)
	})
}
