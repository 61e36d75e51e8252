package orders

import (
	"context"
	"strings"

	"github.com/streamgate/streamgate/services/internal/ids"
	"github.com/streamgate/streamgate/services/socket"
)

// AbortPurchaseInput is ABORT_PURCHASE's body.
type AbortPurchaseInput struct {
	PurchaseID string `json:"purchase_id"`
}

// AbortResult is ABORT_PURCHASE's result: the order as it is now and
// whether this call moved it back to pending. When it did not, Reason
// says why: "not_paying" (pending or paid) or "other_purchase".
type AbortResult struct {
	Order
	Aborted bool   `json:"aborted"`
	Reason  string `json:"reason,omitempty"`
}

// The reasons an ABORT_PURCHASE did nothing, in AbortResult.Reason.
const (
	AbortNotPaying     = "not_paying"
	AbortOtherPurchase = "other_purchase"
)

const (
	// purchaseIDPrefix starts the purchase ids made for requests without
	// an Idempotency-Key.
	purchaseIDPrefix = "pur_"
	// maxPurchaseIDLength bounds a purchase id taken from a key.
	maxPurchaseIDLength = 256
)

// beginPurchase freezes the caller's order for a purchase. Its purchase id
// is the request's Idempotency-Key, so a retried request continues the
// purchase it started; without a key each call is a new purchase.
func (s *service) beginPurchase(ctx context.Context, id string, _ struct{}) (Order, error) {
	purchase := socket.MetaFrom(ctx).IdempotencyKey
	if purchase == "" {
		purchase = ids.New(purchaseIDPrefix)
	}
	if len(purchase) > maxPurchaseIDLength {
		return Order{}, socket.Errorf(socket.CodeInvalidArgument, "the Idempotency-Key is longer than %d bytes", maxPurchaseIDLength)
	}
	for try := 1; ; try++ {
		prev, err := s.ownOrder(ctx, id)
		if err != nil {
			return Order{}, err
		}
		now := s.now()
		if prev.Status == StatusPaid || live(prev, now) && prev.PurchaseID != purchase {
			return Order{}, storeError(whyNotBegin(prev, purchase, now), id)
		}
		o, err := s.st.BeginPurchase(ctx, prev, purchase, now, now.Add(s.lease).UTC().Round(0))
		if retry(err, try) {
			continue
		}
		if err == nil && prev.Status == StatusPaying && prev.PurchaseID == purchase {
			// A retry continues its purchase: the caller did not start it
			// now, so it must not abort it on a later failure.
			socket.MarkReplayed(ctx)
		}
		return o, storeError(err, id)
	}
}

// abortPurchase undoes what BEGIN_PURCHASE did for one purchase, and only
// for it: any other state of the order is left as it is.
func (s *service) abortPurchase(ctx context.Context, id string, in AbortPurchaseInput) (AbortResult, error) {
	if strings.TrimSpace(in.PurchaseID) == "" {
		return AbortResult{}, socket.Errorf(socket.CodeInvalidArgument, "purchase_id is required").
			WithDetails(map[string]any{"field": "purchase_id"})
	}
	if _, err := s.ownOrder(ctx, id); err != nil {
		return AbortResult{}, err
	}
	o, aborted, err := s.st.AbortPurchase(ctx, id, in.PurchaseID)
	if err != nil {
		return AbortResult{}, storeError(err, id)
	}
	r := AbortResult{Order: o, Aborted: aborted}
	switch {
	case aborted:
	case o.Status == StatusPaying:
		r.Reason = AbortOtherPurchase
	default:
		r.Reason = AbortNotPaying
	}
	return r, nil
}

// markPaidBody is MARK_PAID's body as received, so that a missing field
// can be told from a zero one.
type markPaidBody struct {
	PaymentID   *string `json:"payment_id"`
	AmountCents *int64  `json:"amount_cents"`
	Version     *int64  `json:"version"`
	PurchaseID  *string `json:"purchase_id"`
}

// markPaid completes a purchase: see Store.MarkPaid.
func (s *service) markPaid(ctx context.Context, id string, b markPaidBody) (Order, error) {
	if _, err := s.ownOrder(ctx, id); err != nil {
		return Order{}, err
	}
	switch {
	case b.PaymentID == nil || strings.TrimSpace(*b.PaymentID) == "":
		return Order{}, required("payment_id")
	case b.PurchaseID == nil || strings.TrimSpace(*b.PurchaseID) == "":
		return Order{}, required("purchase_id")
	case b.AmountCents == nil || *b.AmountCents < 0:
		return Order{}, required("amount_cents")
	case b.Version == nil || *b.Version < 1:
		return Order{}, required("version")
	}
	o, err := s.st.MarkPaid(ctx, id, MarkPaidInput{PaymentID: *b.PaymentID, AmountCents: *b.AmountCents, Version: *b.Version, PurchaseID: *b.PurchaseID})
	return o, storeError(err, id)
}

// required is the error for a missing or invalid MARK_PAID field.
func required(field string) error {
	return socket.Errorf(socket.CodeInvalidArgument, "%s is required (amounts in cents ≥ 0, versions ≥ 1)", field).
		WithDetails(map[string]any{"field": field})
}
