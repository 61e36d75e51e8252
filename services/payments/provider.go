package payments

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
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

// DefaultTimeout is how long an HTTP provider waits for the gateway when
// NewHTTPProvider is given no timeout.
const DefaultTimeout = 3 * time.Second

// maxAnswer bounds how much of a gateway's answer is read.
const maxAnswer = 1 << 20

// NewHTTPProvider returns a Provider that speaks the sandbox protocol
// (JSON over POST /charges and /refunds) to the gateway at baseURL. Each
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

type gatewayError struct {
	Reason  string `json:"reason"`
	Message string `json:"message,omitempty"`
}

func (p *httpProvider) Charge(ctx context.Context, c Charge) (string, error) {
	var ans gatewayAnswer
	if err := p.post(ctx, "/charges", chargeRequest{AmountCents: c.AmountCents, Card: c.Card, Reference: c.Reference}, &ans); err != nil {
		return "", err
	}
	if ans.Ref == "" {
		return "", fmt.Errorf("gateway %s: charge answer without a ref", p.base)
	}
	return ans.Ref, nil
}

func (p *httpProvider) Refund(ctx context.Context, ref string, amountCents int64) error {
	return p.post(ctx, "/refunds", refundRequest{Ref: ref, AmountCents: amountCents}, &gatewayAnswer{})
}

// post sends one JSON request and decodes the answer: 2xx into out, 4xx
// into a *DeclineError; anything else, and no answer in time, is an error.
func (p *httpProvider) post(ctx context.Context, path string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.base+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := p.client.Do(req)
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return fmt.Errorf("gateway %s%s: no answer within %s: %w", p.base, path, p.timeout, ctxErr)
		}
		return fmt.Errorf("gateway %s%s: %w", p.base, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return fmt.Errorf("gateway %s%s: no answer within %s: %w", p.base, path, p.timeout, ctxErr)
		}
		return fmt.Errorf("gateway %s%s: read answer: %w", p.base, path, err)
	}
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("gateway %s%s: decode answer: %w", p.base, path, err)
		}
		return nil
	case resp.StatusCode >= 400 && resp.StatusCode < 500:
		var ge gatewayError
		if err := json.Unmarshal(raw, &ge); err != nil || ge.Reason == "" {
			return fmt.Errorf("gateway %s%s: status %d", p.base, path, resp.StatusCode)
		}
		return &DeclineError{Reason: ge.Reason, Message: ge.Message}
	}
	return fmt.Errorf("gateway %s%s: status %d", p.base, path, resp.StatusCode)
}
