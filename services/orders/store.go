package orders

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/streamgate/streamgate/services/internal/memstore"
	"github.com/streamgate/streamgate/services/internal/once"
	"github.com/streamgate/streamgate/services/internal/paging"
)

// Store keeps orders, vouchers, voucher holds and voucher redemptions. Its
// methods return the errors of errors.go (ErrOrderNotFound, ErrOrderPaid,
// *VoucherUsedError, …) for the outcomes a caller can act on and other
// errors for failures of the storage itself. Implementations are safe for
// concurrent use, and the conditional methods are atomic compare-and-sets:
// each applies only to the version of the order its caller read, and
// every change it makes adds 1 to the version.
//
// A voucher is held by the paying order that uses it (BeginPurchase) and
// redeemed by the paid one (MarkPaid); a hold ends when its order is paid
// or is pending again.
//
// CreateOrder, UpdatePendingOrder, DeletePendingOrder and the voucher
// writes are keyed writes (once.Ledger).
type Store interface {
	once.Ledger
	// CreateOrder inserts a new order; ErrOrderExists if the id is taken.
	CreateOrder(ctx context.Context, o Order) error
	// GetOrder returns an order; ErrOrderNotFound if there is none.
	GetOrder(ctx context.Context, id string) (Order, error)
	// ListOrders returns up to q.Limit orders with ids after q.After,
	// matching the non-empty filters, ordered by id.
	ListOrders(ctx context.Context, q OrderQuery) ([]Order, error)
	// UpdatePendingOrder sets next's lines, voucher code and total on the
	// order with next's id if its version is still prev.Version and it
	// may change at now: pending, or paying under a lease that expired by
	// now (the purchase is abandoned: the order is pending again and its
	// voucher hold released). ErrOrderPaid once paid,
	// ErrPurchaseInProgress while a live purchase runs, ErrOrderChanged if
	// the version moved, ErrOrderNotFound if gone.
	UpdatePendingOrder(ctx context.Context, prev, next Order, now time.Time) (Order, error)
	// DeletePendingOrder deletes the order with prev's id and version
	// under the same conditions as UpdatePendingOrder, and returns it.
	DeletePendingOrder(ctx context.Context, prev Order, now time.Time) (Order, error)
	// BeginPurchase moves the order with prev's id and version to paying
	// under purchaseID until the lease ends at until: from pending, from
	// paying under purchaseID (a retry: only the lease is renewed, the
	// version stays) or from paying under a lease expired by now (taken
	// over). It also holds the order's voucher: a *VoucherUsedError when
	// another order redeemed it or holds it under a live lease (a hold
	// under an expired lease is taken over and that order abandoned).
	// ErrAlreadyPaid once paid, ErrPurchaseInProgress under another live
	// purchase, ErrOrderChanged if the version moved, ErrOrderNotFound if
	// gone.
	BeginPurchase(ctx context.Context, prev Order, purchaseID string, now, until time.Time) (Order, error)
	// AbortPurchase moves the order back to pending and releases its
	// voucher hold if it is paying under purchaseID, and reports true;
	// otherwise it changes nothing and returns the order as it is, and
	// false. ErrOrderNotFound if there is no such order.
	AbortPurchase(ctx context.Context, id, purchaseID string) (Order, bool, error)
	// MarkPaid turns a paying order paid with in.PaymentID if it is still
	// paying under in.PurchaseID at in.Version and its total is
	// in.AmountCents, and redeems its voucher, in one atomic step. An
	// order already paid with in.PaymentID is returned unchanged (a retry).
	// ErrAlreadyPaid if paid with another payment, ErrOrderChanged if not
	// paying, at another version or under another purchase, an
	// *AmountMismatchError if the total differs, ErrOrderNotFound if gone. A lease that expired without anyone touching the order
	// does not stop it: the charge went through and nothing changed.
	MarkPaid(ctx context.Context, id string, in MarkPaidInput) (Order, error)
	// VoucherRedeemer returns the id of the paid order that redeemed the
	// voucher code, or "" if none did.
	VoucherRedeemer(ctx context.Context, code string) (string, error)

	// CreateVoucher inserts a voucher; ErrVoucherExists if the code is taken.
	CreateVoucher(ctx context.Context, v Voucher) error
	// GetVoucher returns a voucher; ErrVoucherNotFound if there is none.
	GetVoucher(ctx context.Context, code string) (Voucher, error)
	// ListVouchers returns up to limit vouchers with codes after after,
	// ordered by code.
	ListVouchers(ctx context.Context, after string, limit int) ([]Voucher, error)
	// UpdateVoucher sets the discount of the voucher with v's code and
	// returns it; ErrVoucherNotFound if there is none.
	UpdateVoucher(ctx context.Context, v Voucher) (Voucher, error)
	// DeleteVoucher deletes a voucher and returns it; ErrVoucherNotFound if
	// there is none. Redemptions of its code stay recorded.
	DeleteVoucher(ctx context.Context, code string) (Voucher, error)
}

// OrderQuery selects orders for Store.ListOrders.
type OrderQuery struct {
	// UserID and Status filter when not empty.
	UserID string
	Status Status
	// After is the id to start after; "" starts at the beginning.
	After string
	// Limit is the most orders to return.
	Limit int
}

// memoryStore is the in-memory Store.
type memoryStore struct {
	mu          sync.Mutex // guards orders, vouchers, holds and redemptions
	orders      map[string]Order
	vouchers    map[string]Voucher
	holds       map[string]string // voucher code → paying order id
	redemptions map[string]string // voucher code → paid order id
	keys        once.Memory       // the keys of applied writes; written under mu
}

var _ Store = (*memoryStore)(nil)

// NewMemoryStore returns an empty in-memory Store, safe for concurrent use.
func NewMemoryStore() Store {
	return &memoryStore{orders: map[string]Order{}, vouchers: map[string]Voucher{}, holds: map[string]string{}, redemptions: map[string]string{}}
}

// clone returns o with a copy of its lines, so callers never share them.
func clone(o Order) Order {
	o.Lines = slices.Clone(o.Lines)
	return o
}

func (s *memoryStore) Applied(ctx context.Context, k once.Key) (once.Record, bool, error) {
	return s.keys.Applied(ctx, k)
}

func (s *memoryStore) CreateOrder(ctx context.Context, o Order) error {
	return memstore.Add(ctx, &s.mu, &s.keys, s.orders, o.ID, clone(o), ErrOrderExists)
}

func (s *memoryStore) GetOrder(_ context.Context, id string) (Order, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.orders[id]
	if !ok {
		return Order{}, ErrOrderNotFound
	}
	return clone(o), nil
}

func (s *memoryStore) ListOrders(_ context.Context, q OrderQuery) ([]Order, error) {
	s.mu.Lock()
	var all []Order
	for _, o := range s.orders {
		if o.ID > q.After && (q.UserID == "" || o.UserID == q.UserID) && (q.Status == "" || o.Status == q.Status) {
			all = append(all, clone(o))
		}
	}
	s.mu.Unlock()
	return paging.First(all, q.Limit, func(o Order) string { return o.ID }), nil
}

// changeable returns the order prev was read from if it may still be
// edited or deleted at now. s.mu is held.
func (s *memoryStore) changeable(prev Order, now time.Time) (Order, error) {
	o, ok := s.orders[prev.ID]
	switch {
	case !ok:
		return Order{}, ErrOrderNotFound
	case o.Version != prev.Version || o.Status == StatusPaid || live(o, now):
		return Order{}, whyNotChange(o, now)
	}
	return o, nil
}

// release ends the voucher hold of order id, if any. s.mu is held.
func (s *memoryStore) release(id string) {
	for code, by := range s.holds {
		if by == id {
			delete(s.holds, code)
		}
	}
}

func (s *memoryStore) UpdatePendingOrder(ctx context.Context, prev, next Order, now time.Time) (Order, error) {
	return s.writePending(ctx, prev, now, func(o Order) Order {
		if o.Status == StatusPaying {
			o = abandoned(o)
			s.release(o.ID)
		} else {
			o.Version++
		}
		o.Lines, o.VoucherCode, o.TotalCents = slices.Clone(next.Lines), next.VoucherCode, next.TotalCents
		s.orders[o.ID] = o
		return clone(o)
	})
}

func (s *memoryStore) DeletePendingOrder(ctx context.Context, prev Order, now time.Time) (Order, error) {
	return s.writePending(ctx, prev, now, func(o Order) Order {
		s.release(o.ID)
		delete(s.orders, o.ID)
		return o
	})
}

// writePending runs write, as a keyed write, on the order prev was read
// from if it may still be edited or deleted at now (changeable); write
// stores or deletes it and returns the write's result.
func (s *memoryStore) writePending(ctx context.Context, prev Order, now time.Time, write func(o Order) Order) (Order, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return once.WriteMemory(ctx, &s.keys, func() (Order, error) {
		o, err := s.changeable(prev, now)
		if err != nil {
			return Order{}, err
		}
		return write(o), nil
	})
}

func (s *memoryStore) BeginPurchase(_ context.Context, prev Order, purchaseID string, now, until time.Time) (Order, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.orders[prev.ID]
	switch {
	case !ok:
		return Order{}, ErrOrderNotFound
	case o.Version != prev.Version || o.Status == StatusPaid || live(o, now) && o.PurchaseID != purchaseID:
		return Order{}, whyNotBegin(o, purchaseID, now)
	}
	if code := o.VoucherCode; code != "" {
		if by, used := s.redemptions[code]; used && by != o.ID {
			return Order{}, &VoucherUsedError{Code: code}
		}
		if by, held := s.holds[code]; held && by != o.ID {
			holder, exists := s.orders[by]
			if exists && holder.Status == StatusPaying && holder.VoucherCode == code {
				if live(holder, now) {
					return Order{}, &VoucherUsedError{Code: code}
				}
				s.orders[by] = abandoned(holder)
			}
		}
		s.holds[code] = o.ID
	}
	if o.Status != StatusPaying || o.PurchaseID != purchaseID {
		o.Version++
	}
	o.Status, o.PurchaseID, o.LeaseExpiresAt = StatusPaying, purchaseID, until
	s.orders[o.ID] = o
	return clone(o), nil
}

func (s *memoryStore) AbortPurchase(_ context.Context, id, purchaseID string) (Order, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.orders[id]
	switch {
	case !ok:
		return Order{}, false, ErrOrderNotFound
	case o.Status != StatusPaying || o.PurchaseID != purchaseID:
		return clone(o), false, nil
	}
	o = abandoned(o)
	s.release(id)
	s.orders[id] = o
	return clone(o), true, nil
}

func (s *memoryStore) MarkPaid(_ context.Context, id string, in MarkPaidInput) (Order, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.orders[id]
	switch {
	case !ok:
		return Order{}, ErrOrderNotFound
	case o.Status != StatusPaying || o.Version != in.Version || o.PurchaseID != in.PurchaseID || o.TotalCents != in.AmountCents:
		return markPaidOutcome(clone(o), in)
	}
	if code := o.VoucherCode; code != "" {
		if by, used := s.redemptions[code]; used && by != id {
			return Order{}, &VoucherUsedError{Code: code}
		}
		s.release(id)
		s.redemptions[code] = id
	}
	o.Status, o.PaymentID, o.LeaseExpiresAt = StatusPaid, in.PaymentID, time.Time{}
	o.Version++
	s.orders[id] = o
	return clone(o), nil
}

func (s *memoryStore) VoucherRedeemer(_ context.Context, code string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.redemptions[code], nil
}

func (s *memoryStore) CreateVoucher(ctx context.Context, v Voucher) error {
	return memstore.Add(ctx, &s.mu, &s.keys, s.vouchers, v.Code, v, ErrVoucherExists)
}

func (s *memoryStore) GetVoucher(_ context.Context, code string) (Voucher, error) {
	return memstore.Get(&s.mu, s.vouchers, code, ErrVoucherNotFound)
}

func (s *memoryStore) ListVouchers(_ context.Context, after string, limit int) ([]Voucher, error) {
	all := memstore.Select(&s.mu, s.vouchers, func(v Voucher) bool { return v.Code > after })
	return paging.First(all, limit, func(v Voucher) string { return v.Code }), nil
}

func (s *memoryStore) UpdateVoucher(ctx context.Context, v Voucher) (Voucher, error) {
	return memstore.Change(ctx, &s.mu, &s.keys, s.vouchers, v.Code, ErrVoucherNotFound, func(Voucher) (Voucher, error) {
		s.vouchers[v.Code] = v
		return v, nil
	})
}

func (s *memoryStore) DeleteVoucher(ctx context.Context, code string) (Voucher, error) {
	return memstore.Change(ctx, &s.mu, &s.keys, s.vouchers, code, ErrVoucherNotFound, func(v Voucher) (Voucher, error) {
		delete(s.vouchers, code)
		return v, nil
	})
}
