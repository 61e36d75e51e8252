package payments

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/streamgate/streamgate/services/internal/access"
	"github.com/streamgate/streamgate/services/internal/actions"
	"github.com/streamgate/streamgate/services/socket"
)

// Defaults of the settle pass.
const (
	// DefaultSettleInterval is how often SettleEvery runs a pass.
	DefaultSettleInterval = time.Minute
	// DefaultSettleOlderThan is how old a payment must be before a pass
	// asks its gateway about it: far longer than a charge can take, so a
	// charge still running is never settled under it.
	DefaultSettleOlderThan = 2 * time.Minute
)

// What a settle pass did to a payment (Settlement.Action).
const (
	// SettleCharged: the gateway made the charge of a pending payment; the
	// payment is now succeeded and keeps its order.
	SettleCharged = "charged"
	// SettleNotCharged: the gateway made no charge for the payment; a
	// pending one is now failed and lets go of its order, a failed one
	// keeps its status with failure_reason not_charged.
	SettleNotCharged = "not_charged"
	// SettleRefunded: the gateway took money for a payment that had
	// failed (or was given back there already); it is refunded at the
	// gateway and the payment is now refunded.
	SettleRefunded = "refunded"
)

// ReasonNotCharged is the failure_reason of a payment its gateway
// confirmed it never charged.
const ReasonNotCharged = "not_charged"

// settleable are the failure reasons after which a charge may have been
// made all the same: the gateway's answer never came.
var settleable = map[string]bool{"provider_timeout": true, "provider_error": true, "canceled": true}

// SettleReport is what a settle pass did.
type SettleReport struct {
	// Settled lists the payments the pass changed; empty when there was
	// nothing to settle.
	Settled []Settlement `json:"settled"`
	// Unresolved lists the payments that need settling but could not be
	// settled now (e.g. the gateway did not answer); a later pass retries.
	Unresolved []Unresolved `json:"unresolved,omitempty"`
}

// Settlement is one payment a settle pass changed.
type Settlement struct {
	PaymentID   string `json:"payment_id"`
	OrderID     string `json:"order_id"`
	Gateway     string `json:"gateway"`
	AmountCents int64  `json:"amount_cents"`
	// From and To are the payment's status before and after.
	From Status `json:"from"`
	To   Status `json:"to"`
	// Action is SettleCharged, SettleNotCharged or SettleRefunded.
	Action string `json:"action"`
	// Reason is why the payment needed settling: "pending" (left pending
	// past the cut-off) or the failure reason it had.
	Reason string `json:"reason"`
	// ProviderRef is the gateway's reference for the charge, if it made one.
	ProviderRef string `json:"provider_ref,omitempty"`
}

// Unresolved is a payment a settle pass could not settle.
type Unresolved struct {
	PaymentID string `json:"payment_id"`
	OrderID   string `json:"order_id"`
	Gateway   string `json:"gateway"`
	// Reason is gateway_not_configured, lookup_failed, refund_failed,
	// amount_mismatch or store_failed.
	Reason string `json:"reason"`
}

// settlePage is how many payments a pass reads from the store at once.
const settlePage = 200

// Settle runs one settle pass: it asks the gateways, by reference (the
// payment's id), what became of every payment whose outcome is not known
// for sure, and records it.
//
//   - A payment pending since before now−olderThan (the process stopped
//     between recording it and the gateway's answer): charged → succeeded
//     with the gateway's ref; not charged → failed (reason not_charged),
//     letting go of its order as a failed charge does.
//   - A failed payment whose gateway never answered (failure_reason
//     provider_timeout, provider_error or canceled): charged → refunded at
//     the gateway, then recorded refunded; not charged and older than the
//     cut-off → its failure_reason becomes not_charged, so later passes
//     leave it alone.
//
// Every change is a compare-and-set on the status the pass read, so a
// payment that moved meanwhile (its PAY finished, another pass settled
// it) is left as it is. olderThan must exceed the longest a charge can
// take (the providers' timeout). Settle fails only when the store cannot
// be listed or ctx ends; payments it could not settle are in Unresolved.
func Settle(ctx context.Context, st Store, providers map[string]Provider, olderThan time.Duration, now time.Time) (SettleReport, error) {
	return settle(ctx, st, providers, olderThan, now, false)
}

// settle is Settle; a dry run asks the gateways but changes nothing, and
// reports what it would have done.
func settle(ctx context.Context, st Store, providers map[string]Provider, olderThan time.Duration, now time.Time, dryRun bool) (SettleReport, error) {
	rep := SettleReport{Settled: []Settlement{}}
	cutoff := now.Add(-olderThan)
	for _, status := range []Status{StatusPending, StatusFailed} {
		after := ""
		for {
			page, err := st.List(ctx, Filter{Status: status, After: after, Limit: settlePage})
			if err != nil {
				return rep, err
			}
			for _, p := range page {
				old := p.CreatedAt.Before(cutoff)
				if (status == StatusPending && old) || (status == StatusFailed && settleable[p.FailureReason]) {
					settleOne(ctx, st, providers[p.Gateway], p, old, dryRun, &rep)
				}
			}
			if len(page) < settlePage {
				break
			}
			after = page[len(page)-1].ID
		}
	}
	return rep, ctx.Err()
}

// settleOne settles the payment p, read from the store; old reports
// whether it was created before the cut-off.
func settleOne(ctx context.Context, st Store, prov Provider, p Payment, old, dryRun bool, rep *SettleReport) {
	unresolved := func(reason string) {
		rep.Unresolved = append(rep.Unresolved, Unresolved{PaymentID: p.ID, OrderID: p.OrderID, Gateway: p.Gateway, Reason: reason})
	}
	if prov == nil {
		unresolved("gateway_not_configured")
		return
	}
	charge, err := prov.Lookup(ctx, p.ID)
	charged := err == nil
	if err != nil && !errors.Is(err, ErrNoCharge) {
		unresolved("lookup_failed")
		return
	}
	if charged && charge.AmountCents != p.AmountCents {
		unresolved("amount_mismatch")
		return
	}
	why := p.FailureReason
	if p.Status == StatusPending {
		why = string(StatusPending)
	}
	var t Transition
	action := ""
	switch {
	case p.Status == StatusPending && charged && !charge.Refunded:
		t, action = Transition{From: StatusPending, To: StatusSucceeded, ProviderRef: charge.Ref}, SettleCharged
	case p.Status == StatusPending && charged:
		t, action = Transition{From: StatusPending, To: StatusRefunded, ProviderRef: charge.Ref, ReleaseOrder: true}, SettleRefunded
	case p.Status == StatusPending:
		t, action = Transition{From: StatusPending, To: StatusFailed, FailureReason: ReasonNotCharged, ReleaseOrder: true}, SettleNotCharged
	case charged:
		t, action = Transition{From: StatusFailed, To: StatusRefunded, ProviderRef: charge.Ref}, SettleRefunded
	case old:
		t, action = Transition{From: StatusFailed, To: StatusFailed, FailureReason: ReasonNotCharged}, SettleNotCharged
	default:
		return // not charged yet; asked again until the cut-off passes
	}
	settled := Settlement{
		PaymentID: p.ID, OrderID: p.OrderID, Gateway: p.Gateway, AmountCents: p.AmountCents,
		From: p.Status, To: t.To, Action: action, Reason: why, ProviderRef: charge.Ref,
	}
	if dryRun {
		rep.Settled = append(rep.Settled, settled)
		return
	}
	if p.Status == StatusFailed && charged && !charge.Refunded {
		var decline *DeclineError
		if err := prov.Refund(ctx, charge.Ref, charge.AmountCents); err != nil && !(errors.As(err, &decline) && decline.Reason == "already_refunded") {
			unresolved("refund_failed")
			return
		}
	}
	// The gateway has acted: the outcome is recorded even if ctx ends now.
	dctx, cancel := detached(ctx)
	defer cancel()
	if _, err := st.Update(dctx, p.ID, t); err != nil {
		if !errors.As(err, new(*StatusError)) {
			unresolved("store_failed")
		}
		return // moved meanwhile: whoever moved it settled it
	}
	rep.Settled = append(rep.Settled, settled)
}

// SettleInput is SETTLE_PAYMENTS' body.
type SettleInput struct {
	// OlderThanMS is the cut-off's age in milliseconds; default
	// DefaultSettleOlderThan.
	OlderThanMS *int64 `json:"older_than_ms,omitempty"`
	// DryRun asks the gateways but changes nothing: the report says what
	// the pass would do.
	DryRun bool `json:"dry_run,omitempty"`
}

// registerSettle adds SETTLE_PAYMENTS to the actions r registers.
func registerSettle(r *actions.Registrar, s *service) {
	r.Handle("SETTLE_PAYMENTS", access.AdminOnly("settle payments")(socket.Typed(s.settle)), socket.Doc(
		"Runs one settle pass (admins only): asks the gateways what became of payments left pending past the cut-off "+
			"and of failed ones whose gateway never answered, and records it (charged → succeeded, not charged → failed "+
			"not_charged, charged after a failure → refunded). Body {older_than_ms? (default 120000), dry_run?}. Returns {settled, unresolved}."))
}

func (s *service) settle(ctx context.Context, _ string, in SettleInput) (SettleReport, error) {
	olderThan := DefaultSettleOlderThan
	if in.OlderThanMS != nil {
		if *in.OlderThanMS < 0 {
			return SettleReport{}, fieldError("older_than_ms", "older_than_ms must not be negative")
		}
		olderThan = time.Duration(*in.OlderThanMS) * time.Millisecond
	}
	return settle(ctx, s.st, s.providers, olderThan, time.Now(), in.DryRun)
}

// SettleEvery runs Settle every interval (DefaultSettleInterval if ≤ 0)
// with the cut-off olderThan (DefaultSettleOlderThan if ≤ 0) until ctx
// ends, then returns. Passes that settle something, leave something
// unresolved or fail are logged to log (nil discards).
func SettleEvery(ctx context.Context, st Store, providers map[string]Provider, interval, olderThan time.Duration, log *slog.Logger) {
	if interval <= 0 {
		interval = DefaultSettleInterval
	}
	if olderThan <= 0 {
		olderThan = DefaultSettleOlderThan
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		rep, err := Settle(ctx, st, providers, olderThan, time.Now())
		switch {
		case err != nil && ctx.Err() != nil:
			return
		case err != nil:
			log.Warn("settle pass failed", "err", err)
		}
		for _, s := range rep.Settled {
			log.Info("settled payment", "payment_id", s.PaymentID, "order_id", s.OrderID, "gateway", s.Gateway,
				"action", s.Action, "from", s.From, "to", s.To, "reason", s.Reason)
		}
		for _, u := range rep.Unresolved {
			log.Warn("payment left unsettled", "payment_id", u.PaymentID, "order_id", u.OrderID, "gateway", u.Gateway, "reason", u.Reason)
		}
	}
}
