package orders

import (
	"context"
	"slices"
	"strings"
	"sync"

	"github.com/streamgate/streamgate/services/socket"
)

// Store keeps orders, vouchers and voucher redemptions. Its methods return
// *socket.Error for the outcomes a caller can act on (NOT_FOUND,
// ALREADY_EXISTS, FAILED_PRECONDITION, CONFLICT) and plain errors for
// failures of the storage itself. Implementations are safe for concurrent
// use, and the conditional methods (UpdatePendingOrder, DeletePendingOrder,
// MarkPaid) are atomic.
type Store interface {
	// CreateOrder inserts a new order; ALREADY_EXISTS if the id is taken.
	CreateOrder(ctx context.Context, o Order) error
	// GetOrder returns an order; NOT_FOUND if there is none.
	GetOrder(ctx context.Context, id string) (Order, error)
	// ListOrders returns up to q.Limit orders with ids after q.After,
	// matching the non-empty filters, ordered by id.
	ListOrders(ctx context.Context, q OrderQuery) ([]Order, error)
	// UpdatePendingOrder sets next's lines, voucher code and total on the
	// order with next's id, if it is still pending and still has prev's
	// lines and voucher code: FAILED_PRECONDITION (reason "order_paid") once
	// paid, CONFLICT if changed since prev was read, NOT_FOUND if gone.
	UpdatePendingOrder(ctx context.Context, prev, next Order) (Order, error)
	// DeletePendingOrder deletes a pending order and returns it:
	// FAILED_PRECONDITION (reason "order_paid") if paid, NOT_FOUND if gone.
	DeletePendingOrder(ctx context.Context, id string) (Order, error)
	// MarkPaid turns a pending order paid with the payment id and, if the
	// order has a voucher, redeems the voucher for it, in one atomic step:
	// ALREADY_EXISTS if the order is already paid, FAILED_PRECONDITION
	// (reason "voucher_used") if another order redeemed the voucher (the
	// order then stays pending), NOT_FOUND if there is no such order.
	MarkPaid(ctx context.Context, id, paymentID string) (Order, error)
	// VoucherRedeemer returns the id of the paid order that redeemed the
	// voucher code, or "" if none did.
	VoucherRedeemer(ctx context.Context, code string) (string, error)

	// CreateVoucher inserts a voucher; ALREADY_EXISTS if the code is taken.
	CreateVoucher(ctx context.Context, v Voucher) error
	// GetVoucher returns a voucher; NOT_FOUND if there is none.
	GetVoucher(ctx context.Context, code string) (Voucher, error)
	// ListVouchers returns up to limit vouchers with codes after after,
	// ordered by code.
	ListVouchers(ctx context.Context, after string, limit int) ([]Voucher, error)
	// UpdateVoucher sets the discount of the voucher with v's code and
	// returns it; NOT_FOUND if there is none.
	UpdateVoucher(ctx context.Context, v Voucher) (Voucher, error)
	// DeleteVoucher deletes a voucher and returns it; NOT_FOUND if there is
	// none. Redemptions of its code stay recorded.
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

// Reasons refining FAILED_PRECONDITION and ALREADY_EXISTS answers, in the
// details under "reason".
const (
	ReasonOrderPaid      = "order_paid"
	ReasonAlreadyPaid    = "already_paid"
	ReasonVoucherUsed    = "voucher_used"
	ReasonUnknownVoucher = "unknown_voucher"
)

func errOrderNotFound(id string) error {
	return socket.Errorf(socket.CodeNotFound, "no order %q", id)
}

func errVoucherNotFound(code string) error {
	return socket.Errorf(socket.CodeNotFound, "no voucher %q", code)
}

func errOrderPaid(id string) error {
	return socket.Errorf(socket.CodeFailedPrecondition, "order %q is paid: only pending orders can change", id).
		WithDetails(map[string]any{socket.DetailReason: ReasonOrderPaid})
}

func errAlreadyPaid(id string) error {
	return socket.Errorf(socket.CodeAlreadyExists, "order %q is already paid", id).
		WithDetails(map[string]any{socket.DetailReason: ReasonAlreadyPaid})
}

func errOrderChanged(id string) error {
	return socket.Errorf(socket.CodeConflict, "order %q changed meanwhile: try again", id)
}

func errVoucherUsed(code string) error {
	return socket.Errorf(socket.CodeFailedPrecondition, "voucher %q is already used by another paid order", code).
		WithDetails(map[string]any{socket.DetailReason: ReasonVoucherUsed, "code": code})
}

// memoryStore is the in-memory Store.
type memoryStore struct {
	mu          sync.Mutex // guards orders, vouchers and redemptions
	orders      map[string]Order
	vouchers    map[string]Voucher
	redemptions map[string]string // voucher code → paid order id
}

var _ Store = (*memoryStore)(nil)

// NewMemoryStore returns an empty in-memory Store, safe for concurrent use.
func NewMemoryStore() Store {
	return &memoryStore{orders: map[string]Order{}, vouchers: map[string]Voucher{}, redemptions: map[string]string{}}
}

// clone returns o with a copy of its lines, so callers never share them.
func clone(o Order) Order {
	o.Lines = slices.Clone(o.Lines)
	return o
}

func (s *memoryStore) CreateOrder(_ context.Context, o Order) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup := s.orders[o.ID]; dup {
		return socket.Errorf(socket.CodeAlreadyExists, "order %q already exists", o.ID)
	}
	s.orders[o.ID] = clone(o)
	return nil
}

func (s *memoryStore) GetOrder(_ context.Context, id string) (Order, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.orders[id]
	if !ok {
		return Order{}, errOrderNotFound(id)
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
	slices.SortFunc(all, func(a, b Order) int { return strings.Compare(a.ID, b.ID) })
	return all[:min(len(all), max(q.Limit, 0))], nil
}

func (s *memoryStore) UpdatePendingOrder(_ context.Context, prev, next Order) (Order, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.orders[next.ID]
	switch {
	case !ok:
		return Order{}, errOrderNotFound(next.ID)
	case o.Status != StatusPending:
		return Order{}, errOrderPaid(next.ID)
	case !slices.Equal(o.Lines, prev.Lines) || o.VoucherCode != prev.VoucherCode:
		return Order{}, errOrderChanged(next.ID)
	}
	o.Lines, o.VoucherCode, o.TotalCents = slices.Clone(next.Lines), next.VoucherCode, next.TotalCents
	s.orders[o.ID] = o
	return clone(o), nil
}

func (s *memoryStore) DeletePendingOrder(_ context.Context, id string) (Order, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.orders[id]
	switch {
	case !ok:
		return Order{}, errOrderNotFound(id)
	case o.Status != StatusPending:
		return Order{}, errOrderPaid(id)
	}
	delete(s.orders, id)
	return o, nil
}

func (s *memoryStore) MarkPaid(_ context.Context, id, paymentID string) (Order, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.orders[id]
	switch {
	case !ok:
		return Order{}, errOrderNotFound(id)
	case o.Status != StatusPending:
		return Order{}, errAlreadyPaid(id)
	}
	if o.VoucherCode != "" {
		if by, used := s.redemptions[o.VoucherCode]; used && by != id {
			return Order{}, errVoucherUsed(o.VoucherCode)
		}
		s.redemptions[o.VoucherCode] = id
	}
	o.Status, o.PaymentID = StatusPaid, paymentID
	s.orders[id] = o
	return clone(o), nil
}

func (s *memoryStore) VoucherRedeemer(_ context.Context, code string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.redemptions[code], nil
}

func (s *memoryStore) CreateVoucher(_ context.Context, v Voucher) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup := s.vouchers[v.Code]; dup {
		return socket.Errorf(socket.CodeAlreadyExists, "voucher %q already exists", v.Code)
	}
	s.vouchers[v.Code] = v
	return nil
}

func (s *memoryStore) GetVoucher(_ context.Context, code string) (Voucher, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.vouchers[code]
	if !ok {
		return Voucher{}, errVoucherNotFound(code)
	}
	return v, nil
}

func (s *memoryStore) ListVouchers(_ context.Context, after string, limit int) ([]Voucher, error) {
	s.mu.Lock()
	var all []Voucher
	for _, v := range s.vouchers {
		if v.Code > after {
			all = append(all, v)
		}
	}
	s.mu.Unlock()
	slices.SortFunc(all, func(a, b Voucher) int { return strings.Compare(a.Code, b.Code) })
	return all[:min(len(all), max(limit, 0))], nil
}

func (s *memoryStore) UpdateVoucher(_ context.Context, v Voucher) (Voucher, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.vouchers[v.Code]; !ok {
		return Voucher{}, errVoucherNotFound(v.Code)
	}
	s.vouchers[v.Code] = v
	return v, nil
}

func (s *memoryStore) DeleteVoucher(_ context.Context, code string) (Voucher, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.vouchers[code]
	if !ok {
		return Voucher{}, errVoucherNotFound(code)
	}
	delete(s.vouchers, code)
	return v, nil
}
