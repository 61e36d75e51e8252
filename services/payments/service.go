// Package payments is the example payments service: it charges orders
// through payment gateways A, B and C, at most once per order, with
// Idempotency-Keys, and refunds them.
//
//	st, _ := payments.NewSQLStore(ctx, db) // or payments.NewMemoryStore()
//	sb := payments.NewSandbox("A", 20*time.Millisecond) // a local gateway sandbox
//	url, _ := sb.Start()
//	defer sb.Close()
//	providers := map[string]payments.Provider{"A": payments.NewHTTPProvider(url, 3*time.Second, nil)}
//	_ = payments.Register(srv, st, providers)
//
// Which gateways a request may use depends on its API version (Supported):
// v1 A; v2 A, B, C; v3 A, B. Actions: PAY, CHECK_PAYMENT (what PAY would
// refuse, checked without charging), GET_PAYMENT, LIST_PAYMENTS and REFUND
// (admins). Someone else's payment answers NOT_FOUND exactly like a missing
// one, and listing someone else's payments lists nothing.
//
// An order is charged at most once: before asking a gateway, PAY records a
// pending payment that holds the order (Store.Create), and only a failed
// charge or a completed refund lets go of it. An amount of 0 (an order its
// voucher covers) is recorded succeeded without asking a gateway, and
// refunded without one. A gateway that does not
// answer in time fails the payment. Charges are sent with the payment's id
// as the gateway's idempotency key, so Settle (periodically, or the admin
// action SETTLE_PAYMENTS) can ask the gateway what happened to a payment
// whose answer was lost or that a crash left pending, and settle it. A PAY
// under an Idempotency-Key makes the payment whose id derives from the key:
// a retry answers with the key's stored outcome or, when its first request
// died before storing one, with that payment once it is settled (409 while
// it is pending). A PAY that answers with an earlier request's outcome
// marks its answer replayed (socket.MarkReplayed), so a pipeline never
// refunds it as its own.
package payments

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/streamgate/streamgate/services/internal/access"
	"github.com/streamgate/streamgate/services/internal/actions"
	"github.com/streamgate/streamgate/services/internal/ids"
	"github.com/streamgate/streamgate/services/internal/paging"
	"github.com/streamgate/streamgate/services/socket"
	"github.com/streamgate/streamgate/status"
)

// Supported returns the gateways an API version may pay with; none for an
// unknown version.
func Supported(version string) []string {
	switch version {
	case "v1":
		return []string{"A"}
	case "v2":
		return []string{"A", "B", "C"}
	case "v3":
		return []string{"A", "B"}
	}
	return nil
}

// gateways are the gateways any version knows.
var gateways = []string{"A", "B", "C"}

// PayInput is PAY's body.
type PayInput struct {
	// OrderID is the order to pay; it may come as the request's id instead.
	OrderID     string `json:"order_id"`
	AmountCents int64  `json:"amount_cents"`
	Gateway     string `json:"gateway"`
	// Card is the card number, digits only. Only its last four digits
	// are kept.
	Card string `json:"card"`
	// UserID is the order's owner; default the caller. Only admins pay
	// for someone else.
	UserID string `json:"user_id,omitempty"`
}

// ListInput is LIST_PAYMENTS' body.
type ListInput struct {
	OrderID   string `json:"order_id,omitempty"`
	UserID    string `json:"user_id,omitempty"`
	Status    Status `json:"status,omitempty"`
	PageSize  int    `json:"page_size,omitempty"`
	PageToken string `json:"page_token,omitempty"`
}

// Page is LIST_PAYMENTS' result (paging.Page).
type Page = paging.Page[Payment]

// Register adds the payments actions to a server. providers maps gateway
// names ("A", "B", "C") to their adapters; a gateway without one answers
// UNAVAILABLE.
//
//   - PAY: charges an order once (see PayInput); the result is the
//     succeeded payment.
//   - CHECK_PAYMENT (read): PAY's checks without the charge; PayCheck.
//   - GET_PAYMENT (read): one payment; its owner or an admin.
//   - LIST_PAYMENTS (read): payments by id, paged; non-admins see their own.
//   - REFUND: refunds a succeeded payment in full; admins only.
func Register(srv *socket.Server, st Store, providers map[string]Provider) error {
	if st == nil {
		return errors.New("payments: nil store")
	}
	for name, p := range providers {
		if !slices.Contains(gateways, name) {
			return fmt.Errorf("payments: unknown gateway %q (want one of %s)", name, strings.Join(gateways, ", "))
		}
		if p == nil {
			return fmt.Errorf("payments: gateway %s: nil provider", name)
		}
	}
	s := &service{st: Publishing(srv, st), providers: maps.Clone(providers)}
	r := actions.On(srv)
	r.Handle("PAY", socket.Typed(s.pay), socket.Doc(
		"Charges an order: body {order_id (or the request id), amount_cents ≥ 0 (required), gateway, card (digits), user_id?}. "+
			"An amount of 0 (an order a voucher covers) charges nothing: the payment is recorded succeeded without asking the gateway. "+
			"The API version decides the gateways (v1 A; v2 A, B, C; v3 A, B; others NOT_SUPPORTED). "+
			"An order is charged at most once (ALREADY_EXISTS when paid, CONFLICT while a payment runs); "+
			"a declined card is FAILED_PRECONDITION, a gateway timeout DEADLINE_EXCEEDED, both recorded as failed payments. "+
			"With an Idempotency-Key a retry returns the first outcome; the key with another body is CONFLICT."))
	r.Handle("CHECK_PAYMENT", socket.Typed(s.checkPayment), socket.Read(), socket.Doc(
		"Checks, without charging, what PAY would refuse before charging: PAY's body (amount_cents may be absent), "+
			"the gateway for the API version (NOT_SUPPORTED as PAY), the card's format, the caller's rights and that the gateway is configured. "+
			"Returns {ok_to_pay: true, gateway}. A purchase runs it before its first side effect."))
	r.Handle("GET_PAYMENT", socket.Typed(s.get), socket.Read(), socket.Doc(
		"Returns one payment; its owner or an admin only (someone else's payment is NOT_FOUND, like a missing one)."))
	r.Handle("LIST_PAYMENTS", socket.Typed(s.list), socket.Read(), socket.Doc(
		"Lists payments by id, paged by page_size (default 50, max 1000) and page_token; filters order_id, user_id, status. Non-admins see only their own (a user_id of someone else lists nothing)."))
	r.Handle("REFUND", access.AdminOnly("refund payments")(socket.Typed(s.refund)), socket.Doc(
		"Refunds a succeeded payment in full at its gateway; admins only. The order may then be paid again."))
	registerSettle(r, s)
	return r.Err()
}

type service struct {
	st        Store
	providers map[string]Provider // by gateway; read-only
}

// settleTimeout bounds the store writes that record a charge's outcome;
// they run even when the request's context has ended.
const settleTimeout = 10 * time.Second

// payBody is PAY's body as received, so that a missing amount_cents is
// told from 0, which is an amount: nothing to charge.
type payBody struct {
	PayInput
	AmountCents *int64 `json:"amount_cents"`
}

func (s *service) pay(ctx context.Context, id string, b payBody) (Payment, error) {
	if b.AmountCents == nil {
		return Payment{}, fieldError("amount_cents", "amount_cents is required (0 when there is nothing to charge)")
	}
	in := b.PayInput
	in.AmountCents = *b.AmountCents
	prov, err := s.admit(ctx, id, &in)
	if err != nil {
		return Payment{}, err
	}
	meta := socket.MetaFrom(ctx)
	if meta.IdempotencyKey == "" {
		p, _, err := s.charge(ctx, ids.New("pay_"), in, prov)
		return p, err
	}
	return s.payOnce(ctx, meta.Principal.Subject, meta.IdempotencyKey, in, prov)
}

// checkPay validates PAY's body and fills in its defaults.
func checkPay(id string, in *PayInput, who socket.Principal) error {
	switch {
	case in.OrderID == "" && id == "":
		return fieldError("order_id", "order_id is required")
	case in.OrderID == "":
		in.OrderID = id
	case id != "" && id != in.OrderID:
		return fieldError("order_id", fmt.Sprintf("order_id %q does not match the request's id %q", in.OrderID, id))
	}
	if in.AmountCents < 0 {
		return fieldError("amount_cents", "amount_cents must not be negative")
	}
	if in.Gateway == "" {
		return fieldError("gateway", "gateway is required")
	}
	if in.Card == "" {
		return fieldError("card", "card is required")
	}
	if len(in.Card) < 12 || len(in.Card) > 19 || strings.Trim(in.Card, "0123456789") != "" {
		return fieldError("card", "card must be 12 to 19 digits")
	}
	if in.UserID == "" {
		in.UserID = who.Subject
	}
	if in.UserID != who.Subject && !who.HasRole(socket.RoleAdmin) {
		return socket.Errorf(socket.CodePermissionDenied, "only admins may pay for another user")
	}
	return nil
}

func fieldError(field, msg string) error {
	return socket.Errorf(socket.CodeInvalidArgument, "%s", msg).WithDetails(map[string]any{"field": field})
}

// checkGateway answers NOT_SUPPORTED unless the API version may use the
// gateway.
func checkGateway(version, gateway string) error {
	supported := Supported(version)
	if slices.Contains(supported, gateway) {
		return nil
	}
	details := map[string]any{"gateway": gateway, "version": version, "supported": append([]string{}, supported...)}
	switch {
	case version == "":
		return socket.Errorf(socket.CodeNotSupported, "an API version is required to pay with gateway %q: the version decides the gateways (v1: A; v2: A, B, C; v3: A, B)", gateway).
			WithDetails(details)
	case len(supported) == 0:
		return socket.Errorf(socket.CodeNotSupported, "gateway %q is not supported in API version %q, which supports no gateways", gateway, version).
			WithDetails(details)
	}
	return socket.Errorf(socket.CodeNotSupported, "gateway %q is not supported in API version %s, which supports %s", gateway, version, strings.Join(supported, ", ")).
		WithDetails(details)
}

// outcome is what an Idempotency-Key stores: the payment a PAY returned,
// or its error.
type outcome struct {
	Payment *Payment      `json:"payment,omitempty"`
	Error   *status.Error `json:"error,omitempty"`
}

// payOnce runs PAY under an Idempotency-Key: the first request with the
// key charges and stores its outcome; later ones with the same body get
// that outcome again.
func (s *service) payOnce(ctx context.Context, subject, key string, in PayInput, prov Provider) (Payment, error) {
	fp := fingerprint(in)
	rec, claimed, err := s.st.ClaimKey(ctx, subject, key, fp)
	if err != nil {
		return Payment{}, err
	}
	id := keyedPaymentID(subject, key)
	if !claimed {
		p, err := replay(rec, fp)
		switch {
		case rec.Fingerprint == fp && rec.Outcome != nil:
			// The answer repeats the first request's: nothing is charged
			// now, and a caller must not undo it as its own.
			socket.MarkReplayed(ctx)
		case rec.Fingerprint == fp:
			// No stored outcome: the first request still runs, or its
			// process died after claiming the key. Its payment, once the
			// settle pass has settled it, is the answer.
			return s.settledAnswer(ctx, id, err)
		}
		if err != nil {
			return p, err
		}
		return s.currentAnswer(ctx, p.ID)
	}
	if _, err := s.st.Get(ctx, id); err == nil {
		// The key's payment exists although its claim was released (its
		// outcome could not be stored): answer from it, never charge again.
		return s.settledAnswer(ctx, id, errKeyInUse)
	}
	saved := false
	defer func() {
		if !saved { // nothing was charged: let a retry run again
			dctx, cancel := detached(ctx)
			defer cancel()
			_ = s.st.ReleaseKey(dctx, subject, key)
		}
	}()
	p, recorded, err := s.charge(ctx, id, in, prov)
	if !recorded {
		return p, err
	}
	o := outcome{}
	if err != nil {
		o.Error = status.AsError(err)
	} else {
		o.Payment = &p
	}
	b, merr := json.Marshal(o)
	if merr != nil {
		return Payment{}, fmt.Errorf("encode outcome: %w", merr)
	}
	dctx, cancel := detached(ctx)
	defer cancel()
	if serr := s.st.SaveKey(dctx, subject, key, b); serr != nil {
		return Payment{}, storeError(serr, key)
	}
	saved = true
	return p, err
}

// keyedPaymentID is the id of the payment a PAY under an Idempotency-Key
// makes: derived from the key, so that a retry can find it even when the
// first request never stored its outcome.
func keyedPaymentID(subject, key string) string {
	sum := sha256.Sum256([]byte(subject + "\x00" + key))
	return "pay_" + hex.EncodeToString(sum[:8])
}

// currentAnswer answers with what a stored payment is now: a refunded
// payment no longer pays the order, so its key cannot stand for a charge
// any more.
func (s *service) currentAnswer(ctx context.Context, id string) (Payment, error) {
	now, err := s.st.Get(ctx, id)
	if err != nil {
		return Payment{}, storeError(err, id)
	}
	if now.Status != StatusSucceeded {
		return Payment{}, socket.Errorf(socket.CodeFailedPrecondition, "the payment made with this Idempotency-Key is %s; use a new key to pay again", now.Status).
			WithDetails(map[string]any{socket.DetailReason: "idempotency_key_spent", "payment_id": now.ID, "status": string(now.Status)})
	}
	return now, nil
}

// settledAnswer answers a retry whose key has no stored outcome from the
// key's payment once it is settled; while there is none, or it is still
// pending, the retry gets inUse.
func (s *service) settledAnswer(ctx context.Context, id string, inUse error) (Payment, error) {
	p, err := s.st.Get(ctx, id)
	switch {
	case errors.Is(err, ErrNotFound):
		return Payment{}, inUse
	case err != nil:
		return Payment{}, storeError(err, id)
	case p.Status == StatusPending:
		return Payment{}, inUse
	}
	socket.MarkReplayed(ctx)
	if p.Status == StatusFailed {
		return Payment{}, socket.Errorf(socket.CodeFailedPrecondition, "the payment made with this Idempotency-Key failed (%s); use a new key to pay again", p.FailureReason).
			WithDetails(map[string]any{socket.DetailReason: p.FailureReason, "payment_id": p.ID, "status": string(p.Status)})
	}
	return s.currentAnswer(ctx, id)
}

// errKeyInUse answers a retry while the first request with its key runs.
var errKeyInUse = socket.Errorf(socket.CodeConflict, "a request with this Idempotency-Key is still running; try again later").
	WithDetails(map[string]any{socket.DetailReason: "idempotency_key_in_use"})

// replay answers a request whose Idempotency-Key was used before.
func replay(rec KeyRecord, fp string) (Payment, error) {
	if rec.Fingerprint != fp {
		return Payment{}, socket.Errorf(socket.CodeConflict, "the Idempotency-Key was used with a different request").
			WithDetails(map[string]any{socket.DetailReason: "idempotency_key_reused"})
	}
	if rec.Outcome == nil {
		return Payment{}, errKeyInUse
	}
	var o outcome
	if err := json.Unmarshal(rec.Outcome, &o); err != nil {
		return Payment{}, fmt.Errorf("decode stored outcome: %w", err)
	}
	if o.Error != nil {
		return Payment{}, o.Error
	}
	if o.Payment == nil {
		return Payment{}, errors.New("stored outcome is empty")
	}
	return *o.Payment, nil
}

// fingerprint identifies a PAY request for its Idempotency-Key. It keeps
// only the card's length and last four digits, so no card number can be
// recovered from it.
func fingerprint(in PayInput) string {
	b, _ := json.Marshal([]any{in.OrderID, in.UserID, in.AmountCents, in.Gateway, len(in.Card), last4(in.Card)})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// charge records a pending payment holding the order, asks the gateway,
// and records the outcome. recorded reports whether a payment was
// recorded and settled: then err is the charge's outcome. An amount of 0
// is recorded succeeded at once, and the gateway is not asked.
func (s *service) charge(ctx context.Context, id string, in PayInput, prov Provider) (p Payment, recorded bool, err error) {
	p = Payment{
		ID:          id,
		OrderID:     in.OrderID,
		UserID:      in.UserID,
		AmountCents: in.AmountCents,
		Gateway:     in.Gateway,
		Status:      StatusPending,
		CardLast4:   last4(in.Card),
		CreatedAt:   time.Unix(0, time.Now().UnixNano()).UTC(),
	}
	if p.AmountCents == 0 {
		p.Status = StatusSucceeded
	}
	if err := s.st.Create(ctx, p); err != nil {
		return Payment{}, false, storeError(err, p.ID)
	}
	if p.Status == StatusSucceeded {
		return p, true, nil // nothing to charge
	}
	ref, cerr := prov.Charge(ctx, Charge{AmountCents: p.AmountCents, Card: in.Card, Reference: p.ID})
	// The outcome is recorded even when the request has ended meanwhile.
	dctx, cancel := detached(ctx)
	defer cancel()
	if cerr == nil {
		done, err := s.st.Update(dctx, p.ID, Transition{From: StatusPending, To: StatusSucceeded, ProviderRef: ref})
		if err != nil {
			return Payment{}, false, fmt.Errorf("record charge of payment %s (gateway ref %s): %w", p.ID, ref, storeError(err, p.ID))
		}
		return done, true, nil
	}
	reason, gerr := failure(in.Gateway, "charge", cerr)
	failed, err := s.st.Update(dctx, p.ID, Transition{From: StatusPending, To: StatusFailed, FailureReason: reason, ReleaseOrder: true})
	if err != nil {
		return Payment{}, false, fmt.Errorf("record failed charge of payment %s: %w", p.ID, storeError(err, p.ID))
	}
	d := maps.Clone(gerr.Details)
	d["payment_id"] = failed.ID
	return failed, true, gerr.WithDetails(d)
}

// failure turns a provider's error into the client's error and the
// payment's failure reason.
func failure(gateway, op string, err error) (reason string, _ *status.Error) {
	var decline *DeclineError
	switch {
	case errors.As(err, &decline):
		what := "declined the card"
		if op != "charge" {
			what = "refused the " + op
		}
		return decline.Reason, socket.Errorf(socket.CodeFailedPrecondition, "gateway %s %s: %s", gateway, what, decline.Reason).
			WithDetails(map[string]any{socket.DetailReason: decline.Reason, "gateway": gateway})
	case errors.Is(err, context.DeadlineExceeded):
		return "provider_timeout", socket.Errorf(socket.CodeDeadlineExceeded, "gateway %s did not answer the %s in time", gateway, op).
			WithDetails(map[string]any{socket.DetailReason: "provider_timeout", "gateway": gateway})
	case errors.Is(err, context.Canceled):
		return "canceled", socket.Errorf(socket.CodeCanceled, "the %s was canceled before gateway %s answered", op, gateway).
			WithDetails(map[string]any{socket.DetailReason: "canceled", "gateway": gateway})
	}
	return "provider_error", socket.Errorf(socket.CodeUnavailable, "gateway %s is unavailable", gateway).WithCause(err).
		WithDetails(map[string]any{socket.DetailReason: "provider_error", "gateway": gateway})
}

func (s *service) get(ctx context.Context, id string, _ struct{}) (Payment, error) {
	if id == "" {
		return Payment{}, fieldError("id", "the payment id is required")
	}
	p, err := s.st.Get(ctx, id)
	if err != nil {
		return Payment{}, storeError(err, id)
	}
	// Someone else's payment answers exactly as a missing one.
	who := socket.MetaFrom(ctx).Principal
	if p.UserID != who.Subject && !who.HasRole(socket.RoleAdmin) {
		return Payment{}, errNoPayment(id)
	}
	return p, nil
}

func (s *service) list(ctx context.Context, _ string, in ListInput) (Page, error) {
	size, err := paging.Size(in.PageSize)
	if err != nil {
		return Page{}, err
	}
	if in.Status != "" && !in.Status.valid() {
		return Page{}, fieldError("status", "status must be pending, succeeded, failed or refunded")
	}
	f := Filter{OrderID: in.OrderID, UserID: in.UserID, Status: in.Status, After: in.PageToken, Limit: size + 1}
	who := socket.MetaFrom(ctx).Principal
	if !who.HasRole(socket.RoleAdmin) {
		// Another user's payments are none of the caller's: an empty page,
		// as for a user without payments.
		if in.UserID != "" && in.UserID != who.Subject {
			return Page{Items: []Payment{}}, nil
		}
		f.UserID = who.Subject
	}
	items, err := s.st.List(ctx, f)
	if err != nil {
		return Page{}, err
	}
	return paging.PageOf(items, size, func(p Payment) string { return p.ID }), nil
}

// refund runs for admins only (AdminOnly), who get every payment.
func (s *service) refund(ctx context.Context, id string, in struct{}) (Payment, error) {
	p, err := s.get(ctx, id, in)
	if err != nil {
		return Payment{}, err
	}
	if p.AmountCents == 0 && p.Status == StatusSucceeded {
		// Nothing was charged, so there is nothing to give back at the
		// gateway: the payment is refunded and lets go of its order at once.
		p, err := s.st.Update(ctx, id, Transition{From: StatusSucceeded, To: StatusRefunded, ReleaseOrder: true})
		return p, refundError(err, id)
	}
	prov := s.providers[p.Gateway]
	if prov == nil {
		return Payment{}, socket.Errorf(socket.CodeUnavailable, "gateway %s is not configured", p.Gateway).
			WithDetails(map[string]any{"gateway": p.Gateway})
	}
	// Claim the refund first, so that concurrent refunds reach the gateway
	// once; the order stays held until the gateway has refunded.
	if _, err := s.st.Update(ctx, id, Transition{From: StatusSucceeded, To: StatusRefunded}); err != nil {
		return Payment{}, refundError(err, id)
	}
	rerr := prov.Refund(ctx, p.ProviderRef, p.AmountCents)
	dctx, cancel := detached(ctx)
	defer cancel()
	var decline *DeclineError
	if rerr != nil && !(errors.As(rerr, &decline) && decline.Reason == "already_refunded") {
		_, gerr := failure(p.Gateway, "refund", rerr)
		if _, err := s.st.Update(dctx, id, Transition{From: StatusRefunded, To: StatusSucceeded}); err != nil {
			// rerr is told, not wrapped: the store's failure decides the code.
			return Payment{}, fmt.Errorf("refund of payment %s failed (%v) and could not be undone: %w", id, rerr, storeError(err, id)) //nolint:errorlint // see above
		}
		return Payment{}, gerr
	}
	p, err = s.st.Update(dctx, id, Transition{From: StatusRefunded, To: StatusRefunded, ReleaseOrder: true})
	return p, storeError(err, id)
}

// refundError is the answer to a refund whose claim of payment id failed
// with err; nil stays nil.
func refundError(err error, id string) error {
	var status *StatusError
	if errors.As(err, &status) {
		return socket.Errorf(socket.CodeFailedPrecondition, "payment %q is %v: only succeeded payments can be refunded", id, status.Got).
			WithDetails(map[string]any{socket.DetailReason: "not_refundable", "payment_id": id, "status": string(status.Got)})
	}
	return storeError(err, id)
}

// detached returns a context for recording an outcome that must not be
// lost when the request's context ends.
func detached(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), settleTimeout)
}

func last4(card string) string {
	if len(card) < 4 {
		return card
	}
	return card[len(card)-4:]
}
