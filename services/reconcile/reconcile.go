// Package reconcile settles money and stock the orders, payments and
// inventory services disagree about after faults: charges without a paid
// order, purchases stuck in `paying` past their lease, payments whose
// gateway never answered, and stock reserved by purchases that will never
// be paid.
//
//	rep, err := reconcile.Run(ctx, reconcile.Options{Orders: orders, Payments: pay, Inventory: inv})
//	for _, e := range rep.Entries {
//		fmt.Println(e) // e.g. "refunded charge order ord_1 payment pay_2 (1500 cents): order_pending"
//	}
//
// A run, as an admin principal (subject "reconcile"), does four things:
//
//  1. SETTLE_PAYMENTS: payments asks its gateways, by reference, what
//     became of payments left pending or failed without an answer, and
//     records it (charged → succeeded; not charged → failed; charged after
//     a failure → refunded).
//  2. Every succeeded payment must have paid its order. An order still
//     paying under an expired lease, for the payment's amount, is marked
//     paid with it (MARK_PAID, a compare-and-set on the order's version
//     and purchase); one whose lease still runs is left to its purchase;
//     any other order (pending, paid by another payment, gone, another
//     amount) gets the payment refunded.
//  3. Every order paying under an expired lease, with no succeeded or
//     pending payment, is released (ABORT_PURCHASE of its purchase).
//  4. With an inventory client: every reservation still held (a
//     reservation's id is its purchase's) whose purchase no order is
//     paying or was paid by gets its stock back (RELEASE_STOCK). The
//     reservations are read before the orders, and the release is a
//     compare-and-set on the reservation's version as read: a purchase
//     begun again meanwhile (a client's retry with its key) reserves its
//     id again, which moves the version on, so its stock stays taken.
//
// Every write is a compare-and-set on what the run read, so a run racing
// purchases, refunds or another run changes nothing twice. A run that
// finds nothing to settle returns a Report without entries.
package reconcile

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/streamgate/streamgate/services/inventory"
	"github.com/streamgate/streamgate/services/orders"
	"github.com/streamgate/streamgate/services/payments"
	"github.com/streamgate/streamgate/services/socket"
	"github.com/streamgate/streamgate/services/socket/caller"
	"github.com/streamgate/streamgate/status"
)

// Options say which services to reconcile and how.
type Options struct {
	// Orders and Payments are clients of the two services. Their key must
	// let the request name its principal (keyring.Key.Delegate): the run
	// acts as an admin.
	Orders, Payments *caller.Client
	// Inventory is a client of the inventory service; nil leaves
	// reservations alone (step 4 does not run).
	Inventory *caller.Client
	// Now is the run's clock, for leases and ages; default time.Now.
	Now func() time.Time
	// DryRun reports what a run would do and changes nothing.
	DryRun bool
	// OlderThan is how old a payment must be before the run settles it:
	// younger ones are left to the purchase that made them. Default
	// payments.DefaultSettleOlderThan.
	OlderThan time.Duration
}

// Kinds of Entry.
const (
	// KindPayment is a payment settled with its gateway (step 1).
	KindPayment = "payment"
	// KindCharge is a succeeded payment whose order it had not paid
	// (step 2).
	KindCharge = "charge"
	// KindPurchase is an order stuck paying (step 3).
	KindPurchase = "purchase"
	// KindReservation is stock held for a purchase that will never be
	// paid (step 4).
	KindReservation = "reservation"
)

// Actions of Entry, besides those of payments.Settlement for KindPayment
// (payments.SettleCharged, SettleNotCharged, SettleRefunded).
const (
	// ActionMarkedPaid: the order was marked paid with the payment.
	ActionMarkedPaid = "marked_paid"
	// ActionRefunded: the payment was refunded at its gateway.
	ActionRefunded = "refunded"
	// ActionReleased: the order's purchase was aborted; it is pending
	// again.
	ActionReleased = "released"
	// ActionReleasedStock: the reservation's stock was put back.
	ActionReleasedStock = "released_stock"
)

// ReasonPurchaseAbandoned is the reason of a reservation released because
// no order is paying or was paid under its purchase.
const ReasonPurchaseAbandoned = "purchase_abandoned"

// Entry is one thing a run settled (or, in Report.Unresolved, could not).
type Entry struct {
	Kind        string `json:"kind"`
	OrderID     string `json:"order_id"`
	PaymentID   string `json:"payment_id,omitempty"`
	AmountCents int64  `json:"amount_cents,omitempty"`
	// ReservationID and Lines name a reservation and the stock it held
	// (KindReservation; OrderID is then empty).
	ReservationID string           `json:"reservation_id,omitempty"`
	Lines         []inventory.Line `json:"lines,omitempty"`
	// Action is what was done; in Report.Unresolved, what was to be done.
	Action string `json:"action"`
	// Reason is why: e.g. order_pending, amount_mismatch, lease_expired,
	// or, unresolved, what failed.
	Reason string `json:"reason"`
}

// String is the entry on one line.
func (e Entry) String() string {
	if e.Kind == KindReservation {
		s := fmt.Sprintf("%s %s %s", e.Action, e.Kind, e.ReservationID)
		for i, l := range e.Lines {
			sep := ", "
			if i == 0 {
				sep = " ("
			}
			s += fmt.Sprintf("%s%d of %s", sep, l.Quantity, l.ItemID)
		}
		if len(e.Lines) > 0 {
			s += ")"
		}
		return s + ": " + e.Reason
	}
	s := fmt.Sprintf("%s %s order %s", e.Action, e.Kind, e.OrderID)
	if e.PaymentID != "" {
		s += " payment " + e.PaymentID
	}
	if e.AmountCents != 0 {
		s += fmt.Sprintf(" (%d cents)", e.AmountCents)
	}
	return s + ": " + e.Reason
}

// Report is what a run did.
type Report struct {
	// Entries lists what was settled, in the order it was; empty when
	// there was nothing to settle.
	Entries []Entry `json:"entries"`
	// Counts counts Entries by action.
	Counts map[string]int `json:"counts"`
	// InFlight counts the orders left to purchases and payments still
	// running (live leases, young payments).
	InFlight int `json:"in_flight"`
	// Unresolved lists what needed settling but failed; a later run
	// retries it.
	Unresolved []Entry `json:"unresolved,omitempty"`
	// DryRun reports that nothing was changed.
	DryRun bool `json:"dry_run,omitempty"`
}

// Summary is the report in one line, "nothing to settle" when empty.
func (r Report) Summary() string {
	if len(r.Entries) == 0 && len(r.Unresolved) == 0 {
		return fmt.Sprintf("nothing to settle (%d in flight)", r.InFlight)
	}
	actions := make([]string, 0, len(r.Counts))
	for a := range r.Counts {
		actions = append(actions, a)
	}
	sort.Strings(actions)
	s := fmt.Sprintf("settled %d:", len(r.Entries))
	for _, a := range actions {
		s += fmt.Sprintf(" %s %d", a, r.Counts[a])
	}
	s += fmt.Sprintf("; %d in flight; %d unresolved", r.InFlight, len(r.Unresolved))
	if r.DryRun {
		s += " (dry run: nothing changed)"
	}
	return s
}

// ErrUnresolved is what Run's error wraps when some things could not be
// settled; they are in Report.Unresolved.
var ErrUnresolved = errors.New("reconcile: some things could not be settled")

// principal is who a run acts as.
var principal = socket.Principal{Subject: "reconcile", Roles: []string{"admin"}}

// Run reconciles orders, payments and stock once and reports what it
// settled.
// It fails when a service cannot be read; when only some things could not
// be settled the error wraps ErrUnresolved and the report says which.
func Run(ctx context.Context, o Options) (Report, error) {
	if o.Orders == nil || o.Payments == nil {
		return Report{}, errors.New("reconcile: the orders and payments clients are required")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.OlderThan <= 0 {
		o.OlderThan = payments.DefaultSettleOlderThan
	}
	meta := socket.MetaFrom(ctx)
	meta.Principal, meta.IdempotencyKey = principal, ""
	r := &runner{o: o, now: o.Now(), inflight: map[string]bool{}, dryReleased: map[string]bool{}, rep: Report{Entries: []Entry{}, Counts: map[string]int{}, DryRun: o.DryRun}}
	ctx = caller.ContextWithMeta(ctx, meta)
	for _, step := range []func(context.Context) error{r.settlePayments, r.checkCharges, r.releasePurchases, r.releaseStock} {
		if err := step(ctx); err != nil {
			return r.rep, err
		}
	}
	if len(r.rep.Unresolved) > 0 {
		return r.rep, fmt.Errorf("%w: %d unresolved", ErrUnresolved, len(r.rep.Unresolved))
	}
	return r.rep, nil
}

// runner is one run's state.
type runner struct {
	o        Options
	now      time.Time
	rep      Report
	inflight map[string]bool // orders counted in Report.InFlight
	// dryReleased are the purchases a dry run would have released in
	// step 3: step 4 treats them as released.
	dryReleased map[string]bool
}

// inFlight counts an order left to what is still running, once.
func (r *runner) inFlight(orderID string) {
	if !r.inflight[orderID] {
		r.inflight[orderID] = true
		r.rep.InFlight++
	}
}

func (r *runner) settled(e Entry) {
	r.rep.Entries = append(r.rep.Entries, e)
	r.rep.Counts[e.Action]++
}

func (r *runner) unresolved(e Entry, err error) {
	if err != nil {
		e.Reason = fmt.Sprintf("%s: %s", e.Reason, status.AsError(err).Code)
	}
	r.rep.Unresolved = append(r.rep.Unresolved, e)
}

// settlePayments is step 1: SETTLE_PAYMENTS. Its cut-off is OlderThan on
// the run's clock.
func (r *runner) settlePayments(ctx context.Context) error {
	ms := (r.o.OlderThan - time.Until(r.now)).Milliseconds()
	ms = max(ms, 0)
	rep, err := caller.Call[payments.SettleReport](ctx, r.o.Payments, "SETTLE_PAYMENTS", "", payments.SettleInput{OlderThanMS: &ms, DryRun: r.o.DryRun})
	if err != nil {
		return fmt.Errorf("reconcile: SETTLE_PAYMENTS: %w", err)
	}
	for _, s := range rep.Settled {
		r.settled(Entry{Kind: KindPayment, OrderID: s.OrderID, PaymentID: s.PaymentID, AmountCents: s.AmountCents, Action: s.Action, Reason: s.Reason})
	}
	for _, u := range rep.Unresolved {
		r.unresolved(Entry{Kind: KindPayment, OrderID: u.OrderID, PaymentID: u.PaymentID, Action: "settle", Reason: u.Reason}, nil)
	}
	return nil
}

// checkCharges is step 2: every succeeded payment against its order.
func (r *runner) checkCharges(ctx context.Context) error {
	cutoff := r.now.Add(-r.o.OlderThan)
	err := eachPayment(ctx, r.o.Payments, payments.ListInput{Status: payments.StatusSucceeded}, func(p payments.Payment) error {
		r.checkCharge(ctx, p, !p.CreatedAt.Before(cutoff))
		return ctx.Err()
	})
	if err != nil {
		return fmt.Errorf("reconcile: succeeded payments: %w", err)
	}
	return nil
}

// attempts bounds how often checkCharge re-reads an order that changed
// under it.
const attempts = 3

// checkCharge settles one succeeded payment with its order. A young
// payment that has not paid its order yet is left to its purchase.
func (r *runner) checkCharge(ctx context.Context, p payments.Payment, young bool) {
	entry := Entry{Kind: KindCharge, OrderID: p.OrderID, PaymentID: p.ID, AmountCents: p.AmountCents}
	for range attempts {
		o, err := caller.Call[orders.Order](ctx, r.o.Orders, "GET_ORDER", p.OrderID, nil)
		entry.Action, entry.Reason = ActionRefunded, ""
		if young && !(err == nil && o.Status == orders.StatusPaid && o.PaymentID == p.ID) {
			r.inFlight(p.OrderID)
			return
		}
		switch {
		case status.CodeOf(err) == socket.CodeNotFound:
			entry.Reason = "order_gone"
		case err != nil:
			r.unresolved(Entry{Kind: KindCharge, OrderID: p.OrderID, PaymentID: p.ID, Action: "check", Reason: "get_order_failed"}, err)
			return
		case o.Status == orders.StatusPaid && o.PaymentID == p.ID:
			return // paid by this payment: fine
		case o.Status == orders.StatusPaid:
			entry.Reason = "paid_by_other_payment"
		case o.Status == orders.StatusPaying && !leaseExpired(o, r.now):
			r.inFlight(o.ID)
			return
		case o.Status == orders.StatusPaying && o.TotalCents != p.AmountCents:
			entry.Reason = "amount_mismatch"
		case o.Status == orders.StatusPaying:
			entry.Action, entry.Reason = ActionMarkedPaid, "lease_expired"
		default:
			entry.Reason = "order_" + string(o.Status)
		}
		if r.o.DryRun {
			r.settled(entry)
			return
		}
		if entry.Action == ActionMarkedPaid {
			_, err := caller.Call[orders.Order](ctx, r.o.Orders, "MARK_PAID", o.ID, orders.MarkPaidInput{PaymentID: p.ID, AmountCents: p.AmountCents, Version: o.Version, PurchaseID: o.PurchaseID})
			switch status.CodeOf(err) {
			case "":
				r.settled(entry)
				return
			case socket.CodeConflict, socket.CodeAlreadyExists, socket.CodeFailedPrecondition:
				continue // the order changed: read it again
			}
			r.unresolved(Entry{Kind: KindCharge, OrderID: p.OrderID, PaymentID: p.ID, Action: ActionMarkedPaid, Reason: "mark_paid_failed"}, err)
			return
		}
		_, err = caller.Call[payments.Payment](ctx, r.o.Payments, "REFUND", p.ID, nil)
		switch status.CodeOf(err) {
		case "":
			r.settled(entry)
		case socket.CodeFailedPrecondition:
			// No longer succeeded: someone else refunded it meanwhile.
		default:
			r.unresolved(Entry{Kind: KindCharge, OrderID: p.OrderID, PaymentID: p.ID, Action: ActionRefunded, Reason: "refund_failed"}, err)
		}
		return
	}
	r.unresolved(Entry{Kind: KindCharge, OrderID: p.OrderID, PaymentID: p.ID, Action: "check", Reason: "order_keeps_changing"}, nil)
}

// releasePurchases is step 3: orders paying under an expired lease.
func (r *runner) releasePurchases(ctx context.Context) error {
	err := eachOrder(ctx, r.o.Orders, orders.StatusPaying, func(o orders.Order) error {
		if o.Status != orders.StatusPaying {
			return nil
		}
		if !leaseExpired(o, r.now) {
			r.inFlight(o.ID)
			return nil
		}
		r.release(ctx, o)
		return ctx.Err()
	})
	if err != nil {
		return fmt.Errorf("reconcile: paying orders: %w", err)
	}
	return nil
}

// release aborts the purchase of an order paying under an expired lease,
// unless a payment for it succeeded (step 2 settles those) or still runs.
func (r *runner) release(ctx context.Context, o orders.Order) {
	held := false
	err := eachPayment(ctx, r.o.Payments, payments.ListInput{OrderID: o.ID}, func(p payments.Payment) error {
		held = held || p.Status == payments.StatusSucceeded || p.Status == payments.StatusPending
		return nil
	})
	if err != nil {
		r.unresolved(Entry{Kind: KindPurchase, OrderID: o.ID, Action: ActionReleased, Reason: "list_payments_failed"}, err)
		return
	}
	if held {
		r.inFlight(o.ID)
		return
	}
	entry := Entry{Kind: KindPurchase, OrderID: o.ID, Action: ActionReleased, Reason: "lease_expired"}
	if r.o.DryRun {
		r.settled(entry)
		r.dryReleased[o.PurchaseID] = true
		return
	}
	res, err := caller.Call[orders.AbortResult](ctx, r.o.Orders, "ABORT_PURCHASE", o.ID, orders.AbortPurchaseInput{PurchaseID: o.PurchaseID})
	switch {
	case status.CodeOf(err) == socket.CodeNotFound:
		// Gone meanwhile.
	case err != nil:
		r.unresolved(Entry{Kind: KindPurchase, OrderID: o.ID, Action: ActionReleased, Reason: "abort_purchase_failed"}, err)
	case res.Aborted:
		r.settled(entry)
	}
	// Otherwise another purchase or payment moved the order meanwhile.
}
