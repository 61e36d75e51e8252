package orders

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/streamgate/streamgate/services/internal/sqldb"
	"github.com/streamgate/streamgate/services/socket"
)

// schema is the SQL store's tables, in both dialects. An order's lines are
// kept as a JSON array; times as unix nanoseconds. voucher_redemptions
// holds one row per voucher code redeemed by a paid order: its primary key
// is what keeps two orders from paying with the same voucher.
var schema = []string{
	`CREATE TABLE IF NOT EXISTS orders (
		id TEXT PRIMARY KEY,
		user_id TEXT NOT NULL,
		lines TEXT NOT NULL,
		voucher_code TEXT NOT NULL DEFAULT '',
		total_cents BIGINT NOT NULL,
		status TEXT NOT NULL,
		payment_id TEXT NOT NULL DEFAULT '',
		created_at BIGINT NOT NULL
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
}

const orderColumns = `id, user_id, lines, voucher_code, total_cents, status, payment_id, created_at`

// sqlStore is the Store on SQLite or PostgreSQL.
type sqlStore struct {
	db *sqldb.DB
}

var _ Store = (*sqlStore)(nil)

// NewSQLStore returns a Store kept in db, creating its tables (orders,
// vouchers, voucher_redemptions) if they do not exist.
func NewSQLStore(ctx context.Context, db *sqldb.DB) (Store, error) {
	if db == nil {
		return nil, errors.New("orders: nil database")
	}
	if err := db.Migrate(ctx, "orders", schema); err != nil {
		return nil, err
	}
	return &sqlStore{db: db}, nil
}

// scanner is a *sql.Row or *sql.Rows.
type scanner interface{ Scan(dest ...any) error }

func scanOrder(row scanner) (Order, error) {
	var o Order
	var lines string
	var created int64
	if err := row.Scan(&o.ID, &o.UserID, &lines, &o.VoucherCode, &o.TotalCents, &o.Status, &o.PaymentID, &created); err != nil {
		return Order{}, err
	}
	if err := json.Unmarshal([]byte(lines), &o.Lines); err != nil {
		return Order{}, fmt.Errorf("order %s: decode lines: %w", o.ID, err)
	}
	o.CreatedAt = time.Unix(0, created).UTC()
	return o, nil
}

func encodeLines(lines []Line) (string, error) {
	if lines == nil {
		lines = []Line{}
	}
	b, err := json.Marshal(lines)
	return string(b), err
}

func (s *sqlStore) CreateOrder(ctx context.Context, o Order) error {
	lines, err := encodeLines(o.Lines)
	if err != nil {
		return fmt.Errorf("encode lines: %w", err)
	}
	_, err = s.db.ExecContext(ctx, s.db.Rebind(`INSERT INTO orders (`+orderColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`),
		o.ID, o.UserID, lines, o.VoucherCode, o.TotalCents, string(o.Status), o.PaymentID, o.CreatedAt.UnixNano())
	if sqldb.IsUniqueViolation(err) {
		return socket.Errorf(socket.CodeAlreadyExists, "order %q already exists", o.ID)
	}
	if err != nil {
		return fmt.Errorf("insert order: %w", err)
	}
	return nil
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
	if errors.Is(err, sql.ErrNoRows) {
		return Order{}, errOrderNotFound(id)
	}
	if err != nil {
		return Order{}, fmt.Errorf("get order: %w", err)
	}
	return o, nil
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
	rows, err := s.db.QueryContext(ctx, s.db.Rebind(`SELECT `+orderColumns+` FROM orders WHERE `+where.String()+` ORDER BY id LIMIT ?`), args...)
	if err != nil {
		return nil, fmt.Errorf("list orders: %w", err)
	}
	defer rows.Close()
	var out []Order
	for rows.Next() {
		o, err := scanOrder(rows)
		if err != nil {
			return nil, fmt.Errorf("list orders: %w", err)
		}
		out = append(out, o)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list orders: %w", err)
	}
	return out, nil
}

// whyNot explains why a conditional statement on a pending order touched
// no row: the order is gone, paid, or (for updates) changed.
func (s *sqlStore) whyNot(ctx context.Context, id string) error {
	o, err := s.GetOrder(ctx, id)
	if err != nil {
		return err
	}
	if o.Status != StatusPending {
		return errOrderPaid(id)
	}
	return errOrderChanged(id)
}

func (s *sqlStore) UpdatePendingOrder(ctx context.Context, prev, next Order) (Order, error) {
	prevLines, err := encodeLines(prev.Lines)
	if err != nil {
		return Order{}, fmt.Errorf("encode lines: %w", err)
	}
	nextLines, err := encodeLines(next.Lines)
	if err != nil {
		return Order{}, fmt.Errorf("encode lines: %w", err)
	}
	o, err := scanOrder(s.db.QueryRowContext(ctx, s.db.Rebind(`UPDATE orders SET lines = ?, voucher_code = ?, total_cents = ?
		WHERE id = ? AND status = 'pending' AND lines = ? AND voucher_code = ?
		RETURNING `+orderColumns),
		nextLines, next.VoucherCode, next.TotalCents, next.ID, prevLines, prev.VoucherCode))
	if errors.Is(err, sql.ErrNoRows) {
		return Order{}, s.whyNot(ctx, next.ID)
	}
	if err != nil {
		return Order{}, fmt.Errorf("update order: %w", err)
	}
	return o, nil
}

func (s *sqlStore) DeletePendingOrder(ctx context.Context, id string) (Order, error) {
	o, err := scanOrder(s.db.QueryRowContext(ctx, s.db.Rebind(`DELETE FROM orders WHERE id = ? AND status = 'pending' RETURNING `+orderColumns), id))
	if errors.Is(err, sql.ErrNoRows) {
		return Order{}, s.whyNot(ctx, id)
	}
	if err != nil {
		return Order{}, fmt.Errorf("delete order: %w", err)
	}
	return o, nil
}

// MarkPaid runs in one transaction: the conditional status change (which,
// in PostgreSQL, row-locks the order, so a concurrent UPDATE_ORDER waits
// and then finds it paid) and the redemption insert, whose primary key
// makes a second order with the same voucher wait for the first's commit
// and then insert nothing. In SQLite the transaction holds the write lock
// from BEGIN, so the two steps never interleave with another's.
func (s *sqlStore) MarkPaid(ctx context.Context, id, paymentID string) (Order, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return Order{}, fmt.Errorf("begin: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	o, err := scanOrder(tx.QueryRowContext(ctx, s.db.Rebind(`UPDATE orders SET status = 'paid', payment_id = ?
		WHERE id = ? AND status = 'pending' RETURNING `+orderColumns), paymentID, id))
	if errors.Is(err, sql.ErrNoRows) {
		if _, err := getOrder(ctx, tx, s.db.Rebind, id); err != nil {
			return Order{}, err
		}
		return Order{}, errAlreadyPaid(id)
	}
	if err != nil {
		return Order{}, fmt.Errorf("mark order paid: %w", err)
	}
	if o.VoucherCode != "" {
		res, err := tx.ExecContext(ctx, s.db.Rebind(`INSERT INTO voucher_redemptions (code, order_id) VALUES (?, ?)
			ON CONFLICT (code) DO NOTHING`), o.VoucherCode, id)
		if err != nil {
			return Order{}, fmt.Errorf("redeem voucher: %w", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return Order{}, fmt.Errorf("redeem voucher: %w", err)
		}
		if n == 0 {
			return Order{}, errVoucherUsed(o.VoucherCode)
		}
	}
	if err := tx.Commit(); err != nil {
		return Order{}, fmt.Errorf("commit: %w", err)
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
	_, err := s.db.ExecContext(ctx, s.db.Rebind(`INSERT INTO vouchers (code, discount_cents) VALUES (?, ?)`), v.Code, v.DiscountCents)
	if sqldb.IsUniqueViolation(err) {
		return socket.Errorf(socket.CodeAlreadyExists, "voucher %q already exists", v.Code)
	}
	if err != nil {
		return fmt.Errorf("insert voucher: %w", err)
	}
	return nil
}

func (s *sqlStore) GetVoucher(ctx context.Context, code string) (Voucher, error) {
	var v Voucher
	err := s.db.QueryRowContext(ctx, s.db.Rebind(`SELECT code, discount_cents FROM vouchers WHERE code = ?`), code).Scan(&v.Code, &v.DiscountCents)
	if errors.Is(err, sql.ErrNoRows) {
		return Voucher{}, errVoucherNotFound(code)
	}
	if err != nil {
		return Voucher{}, fmt.Errorf("get voucher: %w", err)
	}
	return v, nil
}

func (s *sqlStore) ListVouchers(ctx context.Context, after string, limit int) ([]Voucher, error) {
	rows, err := s.db.QueryContext(ctx, s.db.Rebind(`SELECT code, discount_cents FROM vouchers WHERE code > ? ORDER BY code LIMIT ?`), after, max(limit, 0))
	if err != nil {
		return nil, fmt.Errorf("list vouchers: %w", err)
	}
	defer rows.Close()
	var out []Voucher
	for rows.Next() {
		var v Voucher
		if err := rows.Scan(&v.Code, &v.DiscountCents); err != nil {
			return nil, fmt.Errorf("list vouchers: %w", err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list vouchers: %w", err)
	}
	return out, nil
}

func (s *sqlStore) UpdateVoucher(ctx context.Context, v Voucher) (Voucher, error) {
	var out Voucher
	err := s.db.QueryRowContext(ctx, s.db.Rebind(`UPDATE vouchers SET discount_cents = ? WHERE code = ? RETURNING code, discount_cents`),
		v.DiscountCents, v.Code).Scan(&out.Code, &out.DiscountCents)
	if errors.Is(err, sql.ErrNoRows) {
		return Voucher{}, errVoucherNotFound(v.Code)
	}
	if err != nil {
		return Voucher{}, fmt.Errorf("update voucher: %w", err)
	}
	return out, nil
}

func (s *sqlStore) DeleteVoucher(ctx context.Context, code string) (Voucher, error) {
	var out Voucher
	err := s.db.QueryRowContext(ctx, s.db.Rebind(`DELETE FROM vouchers WHERE code = ? RETURNING code, discount_cents`), code).Scan(&out.Code, &out.DiscountCents)
	if errors.Is(err, sql.ErrNoRows) {
		return Voucher{}, errVoucherNotFound(code)
	}
	if err != nil {
		return Voucher{}, fmt.Errorf("delete voucher: %w", err)
	}
	return out, nil
}
