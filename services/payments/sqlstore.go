package payments

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/streamgate/streamgate/services/internal/sqldb"
)

// schema is the payments service's tables. payment_holds has one row per
// order that is paid or being paid or refunded: its primary key is what
// lets only one payment charge an order at a time.
var schema = []string{
	`CREATE TABLE IF NOT EXISTS payments (
		id TEXT PRIMARY KEY,
		order_id TEXT NOT NULL,
		user_id TEXT NOT NULL,
		amount_cents BIGINT NOT NULL,
		gateway TEXT NOT NULL,
		status TEXT NOT NULL,
		card_last4 TEXT NOT NULL,
		provider_ref TEXT NOT NULL DEFAULT '',
		failure_reason TEXT NOT NULL DEFAULT '',
		created_at BIGINT NOT NULL
	)`,
	`CREATE INDEX IF NOT EXISTS payments_order_id_idx ON payments (order_id)`,
	`CREATE INDEX IF NOT EXISTS payments_user_id_idx ON payments (user_id)`,
	`CREATE TABLE IF NOT EXISTS payment_holds (
		order_id TEXT PRIMARY KEY,
		payment_id TEXT NOT NULL
	)`,
	`CREATE TABLE IF NOT EXISTS payment_idempotency_keys (
		subject TEXT NOT NULL,
		idem_key TEXT NOT NULL,
		fingerprint TEXT NOT NULL,
		outcome TEXT NOT NULL DEFAULT '',
		created_at BIGINT NOT NULL,
		PRIMARY KEY (subject, idem_key)
	)`,
}

const paymentColumns = `id, order_id, user_id, amount_cents, gateway, status, card_last4, provider_ref, failure_reason, created_at`

// sqlStore is the Store on SQLite or PostgreSQL.
type sqlStore struct {
	db *sqldb.DB
}

var _ Store = (*sqlStore)(nil)

// NewSQLStore returns a Store in db, creating its tables if needed.
func NewSQLStore(ctx context.Context, db *sqldb.DB) (Store, error) {
	if err := db.Migrate(ctx, "payments", schema); err != nil {
		return nil, err
	}
	return &sqlStore{db: db}, nil
}

// retries bounds how often Create and ClaimKey look again when the row
// they collided with disappeared in between.
const retries = 5

func (s *sqlStore) Create(ctx context.Context, p Payment) error {
	for range retries {
		again, err := s.tryCreate(ctx, p)
		if !again {
			return err
		}
	}
	return &HeldError{OrderID: p.OrderID, Status: StatusPending}
}

// tryCreate takes the order's hold and inserts the payment in one
// transaction. When the order is held it reports the holder; again is
// true when the hold vanished before it could be read.
func (s *sqlStore) tryCreate(ctx context.Context, p Payment) (again bool, err error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("create payment: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	res, err := tx.ExecContext(ctx, s.db.Rebind(`INSERT INTO payment_holds (order_id, payment_id) VALUES (?, ?) ON CONFLICT (order_id) DO NOTHING`), p.OrderID, p.ID)
	if err != nil {
		return false, fmt.Errorf("create payment: hold order: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("create payment: %w", err)
	}
	if n == 0 {
		var holder string
		var status Status
		err := tx.QueryRowContext(ctx, s.db.Rebind(`SELECT h.payment_id, p.status FROM payment_holds h JOIN payments p ON p.id = h.payment_id WHERE h.order_id = ?`), p.OrderID).Scan(&holder, &status)
		if errors.Is(err, sql.ErrNoRows) {
			return true, nil
		}
		if err != nil {
			return false, fmt.Errorf("create payment: read hold: %w", err)
		}
		return false, &HeldError{OrderID: p.OrderID, PaymentID: holder, Status: status}
	}
	_, err = tx.ExecContext(ctx, s.db.Rebind(`INSERT INTO payments (`+paymentColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
		p.ID, p.OrderID, p.UserID, p.AmountCents, p.Gateway, string(p.Status), p.CardLast4, p.ProviderRef, p.FailureReason, p.CreatedAt.UnixNano())
	if sqldb.IsUniqueViolation(err) {
		return false, ErrExists
	}
	if err != nil {
		return false, fmt.Errorf("create payment: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("create payment: commit: %w", err)
	}
	return false, nil
}

func scanPayment(row sqldb.Scanner) (Payment, error) {
	var p Payment
	if err := row.Scan(&p.ID, &p.OrderID, &p.UserID, &p.AmountCents, &p.Gateway, &p.Status, &p.CardLast4, &p.ProviderRef, &p.FailureReason, sqldb.NanosInto(&p.CreatedAt)); err != nil {
		return Payment{}, err
	}
	return p, nil
}

func (s *sqlStore) Get(ctx context.Context, id string) (Payment, error) {
	return sqldb.QueryOne(ctx, s.db, scanPayment, ErrNotFound, "get payment", `SELECT `+paymentColumns+` FROM payments WHERE id = ?`, id)
}

func (s *sqlStore) List(ctx context.Context, f Filter) ([]Payment, error) {
	where := []string{"id > ?"}
	args := []any{f.After}
	for _, c := range []struct{ col, val string }{{"order_id", f.OrderID}, {"user_id", f.UserID}, {"status", string(f.Status)}} {
		if c.val != "" {
			where = append(where, c.col+" = ?")
			args = append(args, c.val)
		}
	}
	q := `SELECT ` + paymentColumns + ` FROM payments WHERE ` + strings.Join(where, " AND ") + ` ORDER BY id`
	if f.Limit > 0 {
		q += ` LIMIT ?`
		args = append(args, f.Limit)
	}
	return sqldb.QueryAll(ctx, s.db, scanPayment, "list payments", q, args...)
}

func (s *sqlStore) Update(ctx context.Context, id string, t Transition) (Payment, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return Payment{}, fmt.Errorf("update payment: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	set := []string{"status = ?"}
	args := []any{string(t.To)}
	if t.ProviderRef != "" {
		set = append(set, "provider_ref = ?")
		args = append(args, t.ProviderRef)
	}
	if t.FailureReason != "" {
		set = append(set, "failure_reason = ?")
		args = append(args, t.FailureReason)
	}
	args = append(args, id, string(t.From))
	n, err := sqldb.Affected(ctx, tx, "update payment", s.db.Rebind(`UPDATE payments SET `+strings.Join(set, ", ")+` WHERE id = ? AND status = ?`), args...)
	if err != nil {
		return Payment{}, err
	}
	p, err := scanPayment(tx.QueryRowContext(ctx, s.db.Rebind(`SELECT `+paymentColumns+` FROM payments WHERE id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return Payment{}, ErrNotFound
	}
	if err != nil {
		return Payment{}, fmt.Errorf("update payment: %w", err)
	}
	if n == 0 {
		return Payment{}, &StatusError{ID: id, Got: p.Status, Want: t.From}
	}
	if t.ReleaseOrder {
		if _, err := tx.ExecContext(ctx, s.db.Rebind(`DELETE FROM payment_holds WHERE order_id = ? AND payment_id = ?`), p.OrderID, id); err != nil {
			return Payment{}, fmt.Errorf("update payment: release order: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return Payment{}, fmt.Errorf("update payment: commit: %w", err)
	}
	return p, nil
}

func (s *sqlStore) ClaimKey(ctx context.Context, subject, key, fingerprint string) (KeyRecord, bool, error) {
	for range retries {
		n, err := sqldb.Affected(ctx, s.db, "claim idempotency key", s.db.Rebind(`INSERT INTO payment_idempotency_keys (subject, idem_key, fingerprint, outcome, created_at) VALUES (?, ?, ?, '', ?) ON CONFLICT (subject, idem_key) DO NOTHING`),
			subject, key, fingerprint, time.Now().UnixNano())
		if err != nil {
			return KeyRecord{}, false, err
		}
		if n == 1 {
			return KeyRecord{Fingerprint: fingerprint}, true, nil
		}
		var rec KeyRecord
		var outcome string
		err = s.db.QueryRowContext(ctx, s.db.Rebind(`SELECT fingerprint, outcome FROM payment_idempotency_keys WHERE subject = ? AND idem_key = ?`), subject, key).Scan(&rec.Fingerprint, &outcome)
		if errors.Is(err, sql.ErrNoRows) {
			continue // released in between: claim again
		}
		if err != nil {
			return KeyRecord{}, false, fmt.Errorf("read idempotency key: %w", err)
		}
		if outcome != "" {
			rec.Outcome = []byte(outcome)
		}
		return rec, false, nil
	}
	return KeyRecord{}, false, errors.New("claim idempotency key: it keeps changing")
}

func (s *sqlStore) SaveKey(ctx context.Context, subject, key string, outcome []byte) error {
	n, err := sqldb.Affected(ctx, s.db, "save idempotency key", s.db.Rebind(`UPDATE payment_idempotency_keys SET outcome = ? WHERE subject = ? AND idem_key = ?`), string(outcome), subject, key)
	if err != nil {
		return err
	}
	if n == 0 {
		return ErrNoKey
	}
	return nil
}

func (s *sqlStore) ReleaseKey(ctx context.Context, subject, key string) error {
	_, err := s.db.ExecContext(ctx, s.db.Rebind(`DELETE FROM payment_idempotency_keys WHERE subject = ? AND idem_key = ? AND outcome = ''`), subject, key)
	if err != nil {
		return fmt.Errorf("release idempotency key: %w", err)
	}
	return nil
}
