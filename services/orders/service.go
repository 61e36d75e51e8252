// Package orders is the example orders service: customers' orders, priced
// by the inventory service, and the vouchers that discount them. Paying is
// the payments service's job; orders makes a purchase safe against races,
// retries and edits with a small state machine:
//
//	pending ──BEGIN_PURCHASE──▶ paying (purchase_id, lease) ──MARK_PAID──▶ paid
//	   ▲                           │
//	   └──ABORT_PURCHASE, or an edit after the lease expired──┘
//
// Every order carries a version (1 at creation, +1 on every change) and
// every change is a compare-and-set on the version its caller read.
// BEGIN_PURCHASE freezes the order (lines, voucher, total) under a lease
// and holds its voucher; MARK_PAID completes it only if the order is
// still the snapshot that was charged (same version, purchase and total),
// so an order never ends paid for another total than the one charged.
//
//	db, _ := sqldb.Open(ctx, sqldb.SQLite, "data/orders.db")
//	st, _ := orders.NewSQLStore(ctx, db)              // or orders.NewMemoryStore()
//	inv, _ := socketcaller.Dial("dns:///inventory:9000", socketcaller.WithKey(key))
//	srv, _ := socket.NewServer(socket.Config{Name: "orders"}, socket.WithKeys(keys))
//	_ = orders.Register(srv, st, orders.SocketPricer(inv), orders.WithPurchaseLease(time.Minute))
//	_ = srv.Serve(ctx, lis)
//
// Actions: GET_ORDER, REQUIRE_PENDING, LIST_ORDERS, CREATE_ORDER,
// UPDATE_ORDER, DELETE_ORDER, CHECK_VOUCHER, BEGIN_PURCHASE,
// ABORT_PURCHASE, MARK_PAID; GET_VOUCHER, LIST_VOUCHERS, CREATE_VOUCHER,
// UPDATE_VOUCHER, DELETE_VOUCHER. Every action needs an authenticated
// principal (not "anonymous"). Orders are visible to and changeable by
// their owner (principal subject == user_id) and admins; to anyone else an
// order answers NOT_FOUND exactly like a missing one, and LIST_ORDERS
// naming another user's user_id lists nothing (an empty page). Vouchers
// are readable one by one by anyone and managed by admins.
//
// Under an idempotency key (the gateway's derived key, socket.Meta), the
// creates, updates and deletes of orders and vouchers apply once: a retry
// answers the first result, marked replayed; the key with another request
// is CONFLICT, reason idempotency_key_reused.
//
// Conflicts carry a reason in their details: CONFLICT purchase_in_progress
// (the order is paying under a live lease), order_changed (the version,
// status or purchase moved), amount_mismatch (MARK_PAID's amount is not
// the total); ALREADY_EXISTS already_paid; FAILED_PRECONDITION order_paid
// (paid orders do not change) and voucher_used.
package orders

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/streamgate/streamgate/services/internal/access"
	"github.com/streamgate/streamgate/services/internal/actions"
	"github.com/streamgate/streamgate/services/internal/events"
	"github.com/streamgate/streamgate/services/internal/ids"
	"github.com/streamgate/streamgate/services/internal/once"
	"github.com/streamgate/streamgate/services/internal/paging"
	"github.com/streamgate/streamgate/services/socket"
)

// Status is an order's state: pending, paying while a purchase runs, then
// paid.
type Status string

// The order states.
const (
	StatusPending Status = "pending"
	StatusPaying  Status = "paying"
	StatusPaid    Status = "paid"
)

// Line is one item of an order and how many of it.
type Line struct {
	ItemID   string `json:"item_id"`
	Quantity int64  `json:"quantity"`
}

// Order is a user's order.
type Order struct {
	ID          string `json:"id"`
	UserID      string `json:"user_id"`
	Lines       []Line `json:"lines"`
	VoucherCode string `json:"voucher_code,omitempty"`
	TotalCents  int64  `json:"total_cents"`
	Status      Status `json:"status"`
	// Version is 1 at creation and grows by 1 on every change.
	Version int64 `json:"version"`
	// PurchaseID is the purchase that is paying the order, or that paid it.
	PurchaseID string `json:"purchase_id,omitempty"`
	// LeaseExpiresAt is when the running purchase may be taken over or
	// abandoned; set only while paying.
	LeaseExpiresAt time.Time `json:"lease_expires_at,omitzero"`
	PaymentID      string    `json:"payment_id,omitempty"`
	CreatedAt      time.Time `json:"created_at"`
}

// Voucher takes a fixed amount off an order's total. It is also
// CREATE_VOUCHER's body.
type Voucher struct {
	Code          string `json:"code"`
	DiscountCents int64  `json:"discount_cents"`
}

// CreateOrderInput is CREATE_ORDER's body.
type CreateOrderInput struct {
	// UserID is whose order it is; default the caller. Only admins may name
	// another user.
	UserID      string `json:"user_id,omitempty"`
	Lines       []Line `json:"lines"`
	VoucherCode string `json:"voucher_code,omitempty"`
}

// UpdateOrderInput is UPDATE_ORDER's body: only the fields set change.
// An empty voucher_code removes the voucher.
type UpdateOrderInput struct {
	Lines       *[]Line `json:"lines,omitempty"`
	VoucherCode *string `json:"voucher_code,omitempty"`
	// Version, when set, is the version the caller read: the update
	// applies only to it (CONFLICT order_changed otherwise). Without it
	// the update applies to the version the service reads.
	Version *int64 `json:"version,omitempty"`
}

// ListOrdersInput is LIST_ORDERS's body.
type ListOrdersInput struct {
	UserID    string `json:"user_id,omitempty"`
	Status    Status `json:"status,omitempty"`
	PageSize  int    `json:"page_size,omitempty"`
	PageToken string `json:"page_token,omitempty"`
}

// MarkPaidInput is MARK_PAID's body; every field is required. It names
// the snapshot BEGIN_PURCHASE returned and what was charged for it.
type MarkPaidInput struct {
	PaymentID   string `json:"payment_id"`
	AmountCents int64  `json:"amount_cents"`
	Version     int64  `json:"version"`
	PurchaseID  string `json:"purchase_id"`
}

// VoucherCheck is CHECK_VOUCHER's result: the order's voucher, or nil when
// it has none.
type VoucherCheck struct {
	Voucher *Voucher `json:"voucher"`
}

// Page is a LIST action's result (paging.Page). NextPageToken is empty on
// the last page.
type Page[T any] = paging.Page[T]

// Limits of the bodies.
const (
	maxLines = 100
	// maxUpdateTries bounds how often UPDATE_ORDER starts over when the
	// order changed between reading and writing it.
	maxUpdateTries = 3
)

type service struct {
	st     Store
	prices Pricer
	lease  time.Duration    // how long a purchase holds an order
	now    func() time.Time // the clock leases are measured on
}

// Register adds the orders and vouchers actions to srv. Orders are kept in
// st and priced by prices.
func Register(srv *socket.Server, st Store, prices Pricer, opts ...Option) error {
	if srv == nil || st == nil || prices == nil {
		return errors.New("orders: Register needs a server, a store and a pricer")
	}
	s := &service{st: publishing{Store: st, pub: events.New(srv)}, prices: prices, lease: DefaultPurchaseLease, now: time.Now}
	for _, o := range opts {
		o(s)
	}
	if s.lease <= 0 {
		return fmt.Errorf("orders: the purchase lease must be positive, got %v", s.lease)
	}
	read, idem := socket.Read(), socket.Idempotent()
	keyed := once.Keyed(s.st) // these writes apply once per idempotency key
	r := actions.On(srv)
	r.Handle("GET_ORDER", socket.Typed(s.getOrder), read, socket.Doc("Returns an order; owner or admin."))
	r.Handle("REQUIRE_PENDING", socket.Typed(s.requirePending), read, socket.Doc("Returns a pending order; a paid one is ALREADY_EXISTS (reason already_paid), a paying one CONFLICT (reason purchase_in_progress)."))
	r.Handle("LIST_ORDERS", socket.Typed(s.listOrders), read, socket.Doc("Lists orders by id, paged (page_size, page_token), filtered by status (pending, paying, paid); non-admins see only their own (another user_id lists nothing), admins all or one user_id's."))
	r.Handle("CREATE_ORDER", keyed(socket.Typed(s.createOrder)), socket.Doc("Creates a pending order {user_id?, lines: [{item_id, quantity}], voucher_code?} priced by inventory, less the voucher's discount."))
	r.Handle("UPDATE_ORDER", keyed(socket.Typed(s.updateOrder)), idem, socket.Doc("Changes a pending order's lines and/or voucher_code (\"\" removes it) and recomputes its total, as a compare-and-set on the version read (or the body's version); owner or admin. Paying under a live lease: CONFLICT purchase_in_progress; under an expired one the purchase is abandoned."))
	r.Handle("DELETE_ORDER", keyed(socket.Typed(s.deleteOrder)), idem, socket.Doc("Deletes a pending order and returns it; owner or admin. Paying under a live lease: CONFLICT purchase_in_progress."))
	r.Handle("CHECK_VOUCHER", socket.Typed(s.checkVoucher), read, socket.Doc("Checks that an order's voucher exists and is not used by another paid order; returns {voucher: {code, discount_cents} | null}."))
	r.Handle("BEGIN_PURCHASE", socket.Typed(s.beginPurchase), idem, socket.Doc("Moves a pending order to paying under a lease and holds its voucher; returns the snapshot to charge (version, total_cents, lines, purchase_id = the Idempotency-Key or a new id, lease_expires_at). The same purchase again renews the lease; another live purchase is CONFLICT purchase_in_progress, an expired one is taken over; paid is ALREADY_EXISTS already_paid; a voucher redeemed or held elsewhere FAILED_PRECONDITION voucher_used. Owner or admin."))
	r.Handle("ABORT_PURCHASE", socket.Typed(s.abortPurchase), idem, socket.Doc("Body {purchase_id}: an order paying under that purchase goes back to pending and lets its voucher go; in every other case nothing changes. Returns the order and aborted: true|false. Owner or admin."))
	r.Handle("MARK_PAID", socket.Typed(s.markPaid), idem, socket.Doc("Body {payment_id, amount_cents, version, purchase_id}, all required: a paying order still at that version, under that purchase and with that total becomes paid and redeems its voucher, atomically. A retry with the same payment_id returns the paid order; another payment is ALREADY_EXISTS already_paid; otherwise CONFLICT order_changed or amount_mismatch. Owner or admin."))
	r.Handle("GET_VOUCHER", socket.Typed(s.getVoucher), read, socket.Doc("Returns a voucher by code."))
	r.Handle("LIST_VOUCHERS", adminOnly("list vouchers", socket.Typed(s.listVouchers)), read, socket.Doc("Lists vouchers by code, paged (page_size, page_token); admin."))
	r.Handle("CREATE_VOUCHER", adminOnly("create vouchers", keyed(socket.Typed(s.createVoucher))), socket.Doc("Creates a voucher {code, discount_cents}; the code is stored upper-case; admin."))
	r.Handle("UPDATE_VOUCHER", adminOnly("update vouchers", keyed(socket.Typed(s.updateVoucher))), idem, socket.Doc("Changes a voucher's discount_cents; admin."))
	r.Handle("DELETE_VOUCHER", adminOnly("delete vouchers", keyed(socket.Typed(s.deleteVoucher))), idem, socket.Doc("Deletes a voucher and returns it; admin."))
	return r.Err()
}

// signInMessage is the UNAUTHENTICATED answer to callers who are not
// signed in.
const signInMessage = "sign in to use orders"

// caller returns the request's principal; UNAUTHENTICATED for none.
func caller(ctx context.Context) (socket.Principal, error) {
	p := socket.MetaFrom(ctx).Principal
	if !access.SignedIn(p) {
		return p, socket.Errorf(socket.CodeUnauthenticated, signInMessage)
	}
	return p, nil
}

func isAdmin(p socket.Principal) bool { return p.HasRole(socket.RoleAdmin) }

// ownOrder returns the order the caller may see and change: their own, or
// any for an admin.
func (s *service) ownOrder(ctx context.Context, id string) (Order, error) {
	p, err := caller(ctx)
	if err != nil {
		return Order{}, err
	}
	if id == "" {
		return Order{}, socket.Errorf(socket.CodeInvalidArgument, "the order id is required")
	}
	o, err := s.st.GetOrder(ctx, id)
	if err != nil {
		return Order{}, storeError(err, id)
	}
	// Someone else's order answers exactly as a missing one.
	if o.UserID != p.Subject && !isAdmin(p) {
		return Order{}, errOrderNotFound(id)
	}
	return o, nil
}

func (s *service) getOrder(ctx context.Context, id string, _ struct{}) (Order, error) {
	return s.ownOrder(ctx, id)
}

// requirePending returns the order when it is pending: a paid one is
// ALREADY_EXISTS, a paying one CONFLICT purchase_in_progress.
func (s *service) requirePending(ctx context.Context, id string, _ struct{}) (Order, error) {
	o, err := s.ownOrder(ctx, id)
	if err != nil {
		return Order{}, err
	}
	switch o.Status {
	case StatusPaid:
		return Order{}, socket.Errorf(socket.CodeAlreadyExists, "order %q is already paid", id).
			WithDetails(map[string]any{"reason": ReasonAlreadyPaid, "order_id": id})
	case StatusPaying:
		return Order{}, errPurchaseInProgress(id)
	}
	return o, nil
}

func (s *service) listOrders(ctx context.Context, _ string, in ListOrdersInput) (Page[Order], error) {
	p, err := caller(ctx)
	if err != nil {
		return Page[Order]{}, err
	}
	if in.Status != "" && in.Status != StatusPending && in.Status != StatusPaying && in.Status != StatusPaid {
		return Page[Order]{}, socket.Errorf(socket.CodeInvalidArgument, "status must be %q, %q or %q, got %q", StatusPending, StatusPaying, StatusPaid, in.Status)
	}
	size, err := paging.Size(in.PageSize)
	if err != nil {
		return Page[Order]{}, err
	}
	if !isAdmin(p) {
		// Another user's orders are none of the caller's: an empty page,
		// as for a user without orders.
		if in.UserID != "" && in.UserID != p.Subject {
			return Page[Order]{Items: []Order{}}, nil
		}
		in.UserID = p.Subject
	}
	items, err := s.st.ListOrders(ctx, OrderQuery{UserID: in.UserID, Status: in.Status, After: in.PageToken, Limit: size + 1})
	if err != nil {
		return Page[Order]{}, err
	}
	return paging.PageOf(items, size, func(o Order) string { return o.ID }), nil
}

func (s *service) createOrder(ctx context.Context, _ string, in CreateOrderInput) (Order, error) {
	p, err := caller(ctx)
	if err != nil {
		return Order{}, err
	}
	userID := in.UserID
	switch {
	case userID == "":
		userID = p.Subject
	case userID != p.Subject && !isAdmin(p):
		return Order{}, socket.Errorf(socket.CodePermissionDenied, "only admins may create orders for another user")
	}
	if err := checkLines(in.Lines); err != nil {
		return Order{}, err
	}
	code := strings.ToUpper(in.VoucherCode)
	v, err := s.requestedVoucher(ctx, code)
	if err != nil {
		return Order{}, err
	}
	total, err := s.total(ctx, in.Lines, v)
	if err != nil {
		return Order{}, err
	}
	o := Order{
		ID:          ids.New("ord_"),
		UserID:      userID,
		Lines:       slices.Clone(in.Lines),
		VoucherCode: code,
		TotalCents:  total,
		Status:      StatusPending,
		Version:     1,
		CreatedAt:   s.now().UTC().Round(0),
	}
	if err := s.st.CreateOrder(ctx, o); err != nil {
		return Order{}, storeError(err, o.ID)
	}
	return o, nil
}

func (s *service) updateOrder(ctx context.Context, id string, in UpdateOrderInput) (Order, error) {
	if in.Lines != nil {
		if err := checkLines(*in.Lines); err != nil {
			return Order{}, err
		}
	}
	for try := 1; ; try++ {
		prev, err := s.changeableOrder(ctx, id, in.Version)
		if err != nil {
			return Order{}, err
		}
		next := prev
		if in.Lines != nil {
			next.Lines = slices.Clone(*in.Lines)
		}
		var v *Voucher
		if in.VoucherCode != nil {
			next.VoucherCode = strings.ToUpper(*in.VoucherCode)
			v, err = s.requestedVoucher(ctx, next.VoucherCode)
		} else {
			v, err = s.ordersVoucher(ctx, next.VoucherCode)
		}
		if err != nil {
			return Order{}, err
		}
		if next.TotalCents, err = s.total(ctx, next.Lines, v); err != nil {
			return Order{}, err
		}
		if prev.Status == StatusPending && next.TotalCents == prev.TotalCents && next.VoucherCode == prev.VoucherCode && slices.Equal(next.Lines, prev.Lines) {
			return prev, nil // nothing changes: no new version
		}
		o, err := s.st.UpdatePendingOrder(ctx, prev, next, s.now())
		if retry(err, try) && in.Version == nil {
			continue
		}
		return o, storeError(err, id)
	}
}

func (s *service) deleteOrder(ctx context.Context, id string, _ struct{}) (Order, error) {
	for try := 1; ; try++ {
		prev, err := s.changeableOrder(ctx, id, nil)
		if err != nil {
			return Order{}, err
		}
		o, err := s.st.DeletePendingOrder(ctx, prev, s.now())
		if retry(err, try) {
			continue
		}
		return o, storeError(err, id)
	}
}

// changeableOrder returns the caller's order if it may be edited or
// deleted now: pending, or paying under an expired lease; at version, if
// set.
func (s *service) changeableOrder(ctx context.Context, id string, version *int64) (Order, error) {
	o, err := s.ownOrder(ctx, id)
	if err != nil {
		return Order{}, err
	}
	if version != nil && *version != o.Version || o.Status == StatusPaid || live(o, s.now()) {
		return Order{}, storeError(whyNotChange(o, s.now()), id)
	}
	return o, nil
}

// retry reports whether a compare-and-set that lost to another change
// (ErrOrderChanged) should start over, at most maxUpdateTries in all.
func retry(err error, try int) bool {
	return errors.Is(err, ErrOrderChanged) && try < maxUpdateTries
}

func (s *service) checkVoucher(ctx context.Context, id string, _ struct{}) (VoucherCheck, error) {
	o, err := s.ownOrder(ctx, id)
	if err != nil {
		return VoucherCheck{}, err
	}
	if o.VoucherCode == "" {
		return VoucherCheck{}, nil
	}
	v, err := s.ordersVoucher(ctx, o.VoucherCode)
	if err != nil {
		return VoucherCheck{}, err
	}
	by, err := s.st.VoucherRedeemer(ctx, o.VoucherCode)
	if err != nil {
		return VoucherCheck{}, storeError(err, o.VoucherCode)
	}
	if by != "" && by != o.ID {
		return VoucherCheck{}, errVoucherUsed(o.VoucherCode)
	}
	return VoucherCheck{Voucher: v}, nil
}

// requestedVoucher returns the voucher a request names; nil for "", and
// INVALID_ARGUMENT for an unknown code.
func (s *service) requestedVoucher(ctx context.Context, code string) (*Voucher, error) {
	return s.voucher(ctx, code, socket.Errorf(socket.CodeInvalidArgument, "voucher_code: no voucher %q", code).
		WithDetails(map[string]any{"field": "voucher_code", "code": code}))
}

// ordersVoucher returns the voucher an order already has; nil for "", and
// FAILED_PRECONDITION (reason "unknown_voucher") if it no longer exists.
func (s *service) ordersVoucher(ctx context.Context, code string) (*Voucher, error) {
	return s.voucher(ctx, code, socket.Errorf(socket.CodeFailedPrecondition, "the order's voucher %q does not exist", code).
		WithDetails(map[string]any{socket.DetailReason: ReasonUnknownVoucher, "code": code}))
}

// voucher returns the voucher of code; nil for "", and missing when no
// voucher has the code.
func (s *service) voucher(ctx context.Context, code string, missing error) (*Voucher, error) {
	if code == "" {
		return nil, nil
	}
	v, err := s.st.GetVoucher(ctx, code)
	if errors.Is(err, ErrVoucherNotFound) {
		return nil, missing
	}
	if err != nil {
		return nil, storeError(err, code)
	}
	return &v, nil
}

// checkLines validates an order's lines.
func checkLines(lines []Line) error {
	if len(lines) == 0 {
		return socket.Errorf(socket.CodeInvalidArgument, "lines: at least one line is required")
	}
	if len(lines) > maxLines {
		return socket.Errorf(socket.CodeInvalidArgument, "lines: at most %d lines, got %d", maxLines, len(lines))
	}
	for i, l := range lines {
		if strings.TrimSpace(l.ItemID) == "" {
			return socket.Errorf(socket.CodeInvalidArgument, "lines[%d].item_id is required", i)
		}
		if l.Quantity < 1 {
			return socket.Errorf(socket.CodeInvalidArgument, "lines[%d].quantity must be at least 1, got %d", i, l.Quantity)
		}
	}
	return nil
}

// total prices the lines and takes the voucher's discount off, down to 0.
func (s *service) total(ctx context.Context, lines []Line, v *Voucher) (int64, error) {
	var ids []string
	for _, l := range lines {
		if !slices.Contains(ids, l.ItemID) {
			ids = append(ids, l.ItemID)
		}
	}
	prices, err := s.prices.Prices(ctx, ids)
	if err != nil {
		return 0, fmt.Errorf("price items: %w", err)
	}
	var missing []string
	for _, id := range ids {
		if _, ok := prices[id]; !ok {
			missing = append(missing, id)
		}
	}
	if len(missing) > 0 {
		return 0, socket.Errorf(socket.CodeNotFound, "no price for items %s", strings.Join(missing, ", ")).
			WithDetails(map[string]any{"item_ids": missing})
	}
	var total int64
	for _, l := range lines {
		price := prices[l.ItemID]
		if price < 0 {
			return 0, fmt.Errorf("price items: negative price %d for %q", price, l.ItemID)
		}
		if price > 0 && l.Quantity > (math.MaxInt64-total)/price {
			return 0, socket.Errorf(socket.CodeInvalidArgument, "lines: the order's total is too large")
		}
		total += price * l.Quantity
	}
	if v != nil {
		total = max(total-v.DiscountCents, 0)
	}
	return total, nil
}
