package inventory

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"

	"github.com/streamgate/streamgate/services/internal/sqldb"
)

const reservationColumns = `id, lines, status, created_at, version`

func scanReservation(r sqldb.Scanner) (Reservation, error) {
	var res Reservation
	var lines string
	if err := r.Scan(&res.ID, &lines, &res.Status, sqldb.NanosInto(&res.CreatedAt), &res.Version); err != nil {
		return Reservation{}, err
	}
	if err := json.Unmarshal([]byte(lines), &res.Reserved); err != nil {
		return Reservation{}, fmt.Errorf("reservation %q: lines: %w", res.ID, err)
	}
	return res, nil
}

// Reserve runs one transaction: it inserts the reservation, which does
// nothing when the id is taken (the stored one is answered), then runs
// conditional decrements. Each UPDATE only matches while the row has
// enough stock; under PostgreSQL's READ COMMITTED a concurrent UPDATE
// waits for the row lock and re-checks the condition on the committed row,
// and a concurrent INSERT of the same id waits for the first to commit or
// roll back; SQLite serializes the transactions. So stock never goes
// negative and one id takes stock once. Rows are touched in id order so
// that two reservations of the same items cannot deadlock. After the first
// shortage the remaining lines are only read, to report every shortage,
// and the transaction (the insert with it) rolls back. When the id is
// taken, a held reservation's version goes up by 1 in the same
// transaction.
func (s *sqlStore) Reserve(ctx context.Context, r Reservation) (Reservation, bool, error) {
	lines, err := json.Marshal(r.Reserved)
	if err != nil {
		return Reservation{}, false, fmt.Errorf("reserve stock: %w", err)
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return Reservation{}, false, fmt.Errorf("reserve stock: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	n, err := sqldb.Affected(ctx, tx, "reserve stock", s.db.Rebind(`INSERT INTO reservations (`+reservationColumns+`) VALUES (?, ?, ?, ?, 1) ON CONFLICT (id) DO NOTHING`),
		r.ID, string(lines), string(ReservationHeld), r.CreatedAt.UnixNano())
	if err != nil {
		return Reservation{}, false, err
	}
	if n == 0 {
		return s.reserveAgain(ctx, tx, r.ID)
	}
	if short, err := s.decrement(ctx, tx, r.Reserved); err != nil || len(short) > 0 {
		if err == nil {
			err = &OutOfStockError{Missing: short}
		}
		return Reservation{}, false, err
	}
	if err := tx.Commit(); err != nil {
		return Reservation{}, false, fmt.Errorf("reserve stock: %w", err)
	}
	r.Status, r.Version = ReservationHeld, 1
	return r, false, nil
}

// reserveAgain answers a Reserve of a recorded id in tx: it moves a held
// reservation's version on, commits, and returns the stored reservation.
func (s *sqlStore) reserveAgain(ctx context.Context, tx *sql.Tx, id string) (Reservation, bool, error) {
	if _, err := tx.ExecContext(ctx, s.db.Rebind(`UPDATE reservations SET version = version + 1 WHERE id = ? AND status = ?`), id, string(ReservationHeld)); err != nil {
		return Reservation{}, false, fmt.Errorf("reserve stock: %w", err)
	}
	stored, err := s.getReservation(ctx, tx, id)
	if err != nil {
		return Reservation{}, false, err
	}
	if err := tx.Commit(); err != nil {
		return Reservation{}, false, fmt.Errorf("reserve stock: %w", err)
	}
	return stored, true, nil
}

// decrement takes the lines' stock in tx, in item id order, and returns
// the shortages in the lines' order; with any, tx must roll back.
func (s *sqlStore) decrement(ctx context.Context, tx *sql.Tx, lines []Line) ([]Shortage, error) {
	decrement := s.db.Rebind(`UPDATE items SET stock = stock - ? WHERE id = ? AND stock >= ?`)
	stockOf := s.db.Rebind(`SELECT stock FROM items WHERE id = ?`)
	short := map[string]int64{} // item id → stock found
	for _, l := range byItemID(lines) {
		failed := false
		if len(short) == 0 {
			n, err := sqldb.Affected(ctx, tx, "reserve stock", decrement, l.Quantity, l.ItemID, l.Quantity)
			if err != nil {
				return nil, err
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
	var out []Shortage
	for _, l := range lines {
		if stock, ok := short[l.ItemID]; ok {
			out = append(out, Shortage{ItemID: l.ItemID, Requested: l.Quantity, InStock: stock})
		}
	}
	return out, nil
}

// Release runs one transaction: a compare-and-set of the reservation from
// held (at the version, when one is given) to released (a concurrent one
// waits for the row and then no longer matches), then increments in item id order, as Reserve does, so that
// releases and reservations of the same items cannot deadlock. An
// increment that matches no row is skipped for an item deleted since; for
// one whose stock would overflow (which SQLite would silently turn into a
// REAL) it rolls the whole release back.
func (s *sqlStore) Release(ctx context.Context, id string, version int64) (Reservation, bool, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return Reservation{}, false, fmt.Errorf("release stock: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	query := `UPDATE reservations SET status = ? WHERE id = ? AND status = ?`
	args := []any{string(ReservationReleased), id, string(ReservationHeld)}
	if version != 0 {
		query += ` AND version = ?`
		args = append(args, version)
	}
	r, err := scanReservation(tx.QueryRowContext(ctx, s.db.Rebind(query+` RETURNING `+reservationColumns), args...))
	if errors.Is(err, sql.ErrNoRows) {
		stored, err := s.getReservation(ctx, tx, id)
		if err == nil && stored.Status == ReservationHeld {
			err = ErrReservationChanged // held, so at another version
		}
		return stored, false, err
	}
	if err != nil {
		return Reservation{}, false, fmt.Errorf("release stock: %w", err)
	}
	increment := s.db.Rebind(`UPDATE items SET stock = stock + ? WHERE id = ? AND stock <= ?`)
	exists := s.db.Rebind(`SELECT 1 FROM items WHERE id = ?`)
	for _, l := range byItemID(r.Reserved) {
		n, err := sqldb.Affected(ctx, tx, "release stock", increment, l.Quantity, l.ItemID, math.MaxInt64-l.Quantity)
		if err != nil {
			return Reservation{}, false, err
		}
		if n == 1 {
			continue
		}
		var one int
		err = tx.QueryRowContext(ctx, exists, l.ItemID).Scan(&one)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			continue // deleted since: nothing to put back into
		case err != nil:
			return Reservation{}, false, fmt.Errorf("release stock: %w", err)
		}
		return Reservation{}, false, &OverflowError{Line: l}
	}
	if err := tx.Commit(); err != nil {
		return Reservation{}, false, fmt.Errorf("release stock: %w", err)
	}
	return r, true, nil
}

// queryer is what both *sql.DB and *sql.Tx offer.
type queryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func (s *sqlStore) getReservation(ctx context.Context, q queryer, id string) (Reservation, error) {
	r, err := scanReservation(q.QueryRowContext(ctx, s.db.Rebind(`SELECT `+reservationColumns+` FROM reservations WHERE id = ?`), id))
	return r, sqldb.RowError(err, ErrNoReservation, "get reservation")
}

func (s *sqlStore) GetReservation(ctx context.Context, id string) (Reservation, error) {
	return s.getReservation(ctx, s.db, id)
}

func (s *sqlStore) ListReservations(ctx context.Context, q ReservationQuery) ([]Reservation, error) {
	query := `SELECT ` + reservationColumns + ` FROM reservations WHERE id > ?`
	args := []any{q.After}
	if q.Status != "" {
		query += ` AND status = ?`
		args = append(args, string(q.Status))
	}
	query += ` ORDER BY id LIMIT ?`
	args = append(args, q.Limit)
	return sqldb.QueryAll(ctx, s.db, scanReservation, "list reservations", query, args...)
}
