package payments

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Provider is a payment gateway: gateways A, B and C are adapters behind it.
type Provider interface {
	// Charge takes money from a card and returns the gateway's reference
	// for the charge. A refusal is a *DeclineError; no answer in time is an
	// error wrapping context.DeadlineExceeded.
	Charge(ctx context.Context, c Charge) (ref string, err error)
	// Refund gives back amountCents of the charge ref.
	Refund(ctx context.Context, ref string, amountCents int64) error
	// Lookup asks the gateway what became of the charge made with the
	// reference (Charge.Reference, our payment id), whatever answer the
	// charge itself got. A charge the gateway never made (none, or only
	// declined ones) is an error wrapping ErrNoCharge.
	Lookup(ctx context.Context, reference string) (ChargeStatus, error)
}

// ErrNoCharge is what Lookup's error wraps when the gateway made no
// charge with the reference: no money was taken.
var ErrNoCharge = errors.New("payments: the gateway made no charge with this reference")

// ChargeStatus is what a gateway knows of a charge it made.
type ChargeStatus struct {
	// Ref is the gateway's reference for the charge, as Charge returns it.
	Ref         string
	AmountCents int64
	// Refunded reports whether the charge was given back.
	Refunded bool
}

// Charge is what a Provider is asked to charge.
type Charge struct {
	AmountCents int64
	// Card is the card number, digits only.
	Card string
	// Reference is the payment's id, for the gateway's records.
	Reference string
}

// DeclineError is a gateway refusing a charge or a refund; Reason is the
// gateway's reason, e.g. "card_declined" or "invalid_card".
type DeclineError struct {
	Reason  string
	Message string
}

func (e *DeclineError) Error() string {
	if e.Message == "" {
		return "declined: " + e.Reason
	}
	return "declined: " + e.Reason + ": " + e.Message
}

// PaymentRefusals are the reasons of a DeclineError that refuse the
// payment itself (the card, not the request): PAY passes them on as
// FAILED_PRECONDITION with that reason, and a gateway answers them 402
// Payment Required when its configuration lists them
// (http.payment_required_reasons, whose default is this list). Other
// reasons (provider_timeout, idempotency_key_spent, …) keep their code's
// status.
func PaymentRefusals() []string {
	return []string{"card_declined", "insufficient_funds", "expired_card", "invalid_card"}
}

// DefaultTimeout is how long an HTTP provider waits for the gateway when
// NewHTTPProvider is given no timeout.
const DefaultTimeout = 3 * time.Second

// maxAnswer bounds how much of a gateway's answer is read.
const maxAnswer = 1 << 20

// NewHTTPProvider returns a Provider that speaks the sandbox protocol
// (JSON over POST /charges and /refunds, GET /charges?reference=) to the
// gateway at baseURL. Charges carry their reference as the
// Idempotency-Key header too, so a retried charge is made once. Each
// call waits at most timeout (DefaultTimeout if ≤ 0) for the answer; a nil
// client means http.DefaultClient.
func NewHTTPProvider(baseURL string, timeout time.Duration, client *http.Client) Provider {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	if client == nil {
		client = http.DefaultClient
	}
	return &httpProvider{base: strings.TrimRight(baseURL, "/"), timeout: timeout, client: client}
}

type httpProvider struct {
	base    string
	timeout time.Duration
	client  *http.Client
}

var _ Provider = (*httpProvider)(nil)

// chargeRequest, refundRequest, gatewayAnswer and gatewayError are the
// sandbox protocol's bodies.
type chargeRequest struct {
	AmountCents int64  `json:"amount_cents"`
	Card        string `json:"card"`
	Reference   string `json:"reference"`
}

type refundRequest struct {
	Ref         string `json:"ref"`
	AmountCents int64  `json:"amount_cents"`
}

type gatewayAnswer struct {
	Ref string `json:"ref"`
}

// chargeRecord is GET /charges' answer.
type chargeRecord struct {
	Ref         string `json:"ref"`
	Reference   string `json:"reference"`
	AmountCents int64  `json:"amount_cents"`
	Status      string `json:"status"` // "approved" or "refunded"
}

// The statuses of a chargeRecord.
const (
	chargeApproved = "approved"
	chargeRefunded = "refunded"
)

// headerIdempotencyKey carries a charge's reference to the gateway.
const headerIdempotencyKey = "Idempotency-Key"

type gatewayError struct {
	Reason  string `json:"reason"`
	Message string `json:"message,omitempty"`
}

func (p *httpProvider) Charge(ctx context.Context, c Charge) (string, error) {
	var ans gatewayAnswer
	if err := p.do(ctx, http.MethodPost, "/charges", c.Reference, chargeRequest(c), &ans); err != nil {
		return "", err
	}
	if ans.Ref == "" {
		return "", &callError{what: "POST /charges: answer without a ref"}
	}
	return ans.Ref, nil
}

func (p *httpProvider) Refund(ctx context.Context, ref string, amountCents int64) error {
	return p.do(ctx, http.MethodPost, "/refunds", "", refundRequest{Ref: ref, AmountCents: amountCents}, &gatewayAnswer{})
}

func (p *httpProvider) Lookup(ctx context.Context, reference string) (ChargeStatus, error) {
	if reference == "" {
		return ChargeStatus{}, errors.New("payments: Lookup needs a reference")
	}
	var rec chargeRecord
	err := p.do(ctx, http.MethodGet, "/charges?reference="+url.QueryEscape(reference), "", nil, &rec)
	var decline *DeclineError
	if errors.As(err, &decline) && decline.Reason == "unknown_charge" {
		return ChargeStatus{}, fmt.Errorf("charge %s: %w", reference, ErrNoCharge)
	}
	if err != nil {
		return ChargeStatus{}, err
	}
	if rec.Ref == "" || rec.Reference != reference || (rec.Status != chargeApproved && rec.Status != chargeRefunded) {
		return ChargeStatus{}, &callError{what: "GET /charges: malformed answer"}
	}
	return ChargeStatus{Ref: rec.Ref, AmountCents: rec.AmountCents, Refunded: rec.Status == chargeRefunded}, nil
}

// callError is a call to a gateway that got no usable answer. Its message
// names the request and never the gateway's address; Unwrap gives the
// cause, which may name it, for logs and errors.Is.
type callError struct {
	what  string
	cause error
}

func (e *callError) Error() string { return "gateway " + e.what }
func (e *callError) Unwrap() error { return e.cause }

// do sends one request (with a JSON body unless in is nil) and decodes
// the answer: 2xx into out, 4xx into a *DeclineError; anything else, and
// no answer in time, is a *callError. idemKey, when set, goes as the
// Idempotency-Key header.
func (p *httpProvider) do(ctx context.Context, method, path, idemKey string, in, out any) error {
	what := method + " " + path
	if i := strings.IndexByte(path, '?'); i >= 0 {
		what = method + " " + path[:i]
	}
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, p.base+path, body)
	if err != nil {
		return &callError{what: what + ": bad request", cause: err}
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if idemKey != "" {
		req.Header.Set(headerIdempotencyKey, idemKey)
	}
	noAnswer := func(err error) error {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return &callError{what: fmt.Sprintf("%s: no answer within %s", what, p.timeout), cause: ctxErr}
		}
		return &callError{what: what + ": no answer", cause: err}
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return noAnswer(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return noAnswer(err)
	}
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		if err := json.Unmarshal(raw, out); err != nil {
			return &callError{what: what + ": undecodable answer", cause: err}
		}
		return nil
	case resp.StatusCode >= 400 && resp.StatusCode < 500:
		var ge gatewayError
		if err := json.Unmarshal(raw, &ge); err != nil || ge.Reason == "" {
			return &callError{what: fmt.Sprintf("%s: status %d", what, resp.StatusCode)}
		}
		return &DeclineError{Reason: ge.Reason, Message: ge.Message}
	}
	return &callError{what: fmt.Sprintf("%s: status %d", what, resp.StatusCode)}
}
