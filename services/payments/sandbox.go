package payments

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The sandbox's test cards.
const (
	cardApproved = "4242424242424242"
	cardDeclined = "4000000000000002"
	cardHangs    = "4000000000000119"
	cardLost     = "4000000000000259"
)

// sandboxHang is how long the sandbox sits on a charge of cardHangs: far
// longer than any provider timeout. It stops earlier when the request's
// connection ends or the sandbox closes.
const sandboxHang = 10 * time.Minute

// Sandbox is a payment gateway sandbox on a loopback HTTP server, the
// other end of NewHTTPProvider. It answers every request after its
// latency and behaves by card number:
//
//	4242424242424242  approved
//	4000000000000002  declined, reason card_declined
//	4000000000000119  no answer: the sandbox waits until the caller gives up
//	4000000000000259  charged, answer lost: the charge is approved and
//	                  recorded, then the sandbox waits as for ...0119
//	anything else     declined, reason invalid_card
//
// A charge's reference (the body's "reference", else the Idempotency-Key
// header) is its idempotency key: a second charge with the same reference
// answers the first one's ref and charges nothing more, and one with
// another amount or card is refused (409, reason idempotency_key_reused).
// Declined charges are not charges: their reference stays free.
// GET /charges?reference=REF answers {ref, reference, amount_cents,
// status: approved|refunded}, or 404 unknown_charge. Refunds of a charge
// it approved succeed once.
type Sandbox struct {
	name    string
	latency time.Duration
	srv     *http.Server
	closed  chan struct{} // closed by Close: handlers stop waiting
	served  chan struct{} // closed when Serve returns
	charges atomic.Int64  // charge requests received
	refunds atomic.Int64  // refunds made

	mu          sync.Mutex    // guards started, approved, byReference, waiting and waitChanged
	waiting     int           // requests in wait, for tests
	waitChanged chan struct{} // closed (and replaced) when waiting changes
	started     bool
	approved    map[string]*sandboxCharge // by ref
	byReference map[string]*sandboxCharge // by reference, for those that have one
}

// sandboxCharge is an approved charge.
type sandboxCharge struct {
	ref, reference, card string
	amount               int64
	refunded             bool
}

// NewSandbox returns a sandbox named name (it appears in the refs it
// hands out) that answers after latency. Start it.
func NewSandbox(name string, latency time.Duration) *Sandbox {
	s := &Sandbox{
		name:        name,
		latency:     latency,
		closed:      make(chan struct{}),
		served:      make(chan struct{}),
		waitChanged: make(chan struct{}),
		approved:    map[string]*sandboxCharge{},
		byReference: map[string]*sandboxCharge{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /charges", s.charge)
	mux.HandleFunc("GET /charges", s.lookup)
	mux.HandleFunc("POST /refunds", s.refund)
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	return s
}

// Start serves on a fresh port of 127.0.0.1 and returns the base URL,
// e.g. "http://127.0.0.1:43121". A sandbox starts once.
func (s *Sandbox) Start() (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return "", errors.New("payments: sandbox " + s.name + " started twice")
	}
	select {
	case <-s.closed:
		return "", errors.New("payments: sandbox " + s.name + " is closed")
	default:
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	s.started = true
	go func() {
		defer close(s.served)
		_ = s.srv.Serve(lis)
	}()
	return "http://" + lis.Addr().String(), nil
}

// Close stops the sandbox: requests waiting in it end at once and Close
// returns when the server has stopped.
func (s *Sandbox) Close() {
	s.mu.Lock()
	select {
	case <-s.closed:
		s.mu.Unlock()
		return
	default:
	}
	close(s.closed)
	started := s.started
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil {
		_ = s.srv.Close()
	}
	if started {
		<-s.served
	}
}

// Charges returns how many charge requests the sandbox has received,
// whatever their outcome.
func (s *Sandbox) Charges() int64 { return s.charges.Load() }

// Refunds returns how many refunds the sandbox has made.
func (s *Sandbox) Refunds() int64 { return s.refunds.Load() }

// Taken returns the money the sandbox holds: the amount of every approved,
// unrefunded charge, by reference (charges made without a reference are
// keyed by their ref).
func (s *Sandbox) Taken() map[string]int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := map[string]int64{}
	for ref, c := range s.approved {
		if c.refunded {
			continue
		}
		key := c.reference
		if key == "" {
			key = ref
		}
		m[key] = c.amount
	}
	return m
}

// wait sleeps for d, or less when the request ends or the sandbox closes;
// it reports whether the full time passed.
func (s *Sandbox) wait(r *http.Request, d time.Duration) bool {
	s.addWaiting(1)
	defer s.addWaiting(-1)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
	case <-s.closed:
	}
	return false
}

func (s *Sandbox) addWaiting(n int) {
	s.mu.Lock()
	s.waiting += n
	close(s.waitChanged)
	s.waitChanged = make(chan struct{})
	s.mu.Unlock()
}

func (s *Sandbox) charge(w http.ResponseWriter, r *http.Request) {
	s.charges.Add(1)
	var in chargeRequest
	if !decodeSandbox(w, r, &in) || !s.wait(r, s.latency) {
		return
	}
	if in.Reference == "" {
		in.Reference = r.Header.Get(headerIdempotencyKey)
	}
	s.mu.Lock()
	prior := s.byReference[in.Reference]
	s.mu.Unlock()
	if prior != nil && in.Reference != "" {
		if prior.amount != in.AmountCents || prior.card != in.Card {
			answer(w, http.StatusConflict, gatewayError{Reason: "idempotency_key_reused", Message: "reference " + in.Reference + " was charged with another amount or card"})
			return
		}
		answer(w, http.StatusOK, gatewayAnswer{Ref: prior.ref})
		return
	}
	switch in.Card {
	case cardApproved, cardLost:
		if in.AmountCents <= 0 {
			answer(w, http.StatusBadRequest, gatewayError{Reason: "invalid_amount"})
			return
		}
		c, fresh := s.approve(in)
		if !fresh && (c.amount != in.AmountCents || c.card != in.Card) {
			answer(w, http.StatusConflict, gatewayError{Reason: "idempotency_key_reused", Message: "reference " + in.Reference + " was charged with another amount or card"})
			return
		}
		if fresh && in.Card == cardLost {
			s.wait(r, sandboxHang)
			return
		}
		answer(w, http.StatusOK, gatewayAnswer{Ref: c.ref})
	case cardDeclined:
		answer(w, http.StatusPaymentRequired, gatewayError{Reason: "card_declined", Message: "the card was declined"})
	case cardHangs:
		s.wait(r, sandboxHang)
	default:
		answer(w, http.StatusPaymentRequired, gatewayError{Reason: "invalid_card", Message: "the card number is not valid"})
	}
}

// approve records an approved charge, unless one with its reference
// exists: then it returns that one and fresh is false.
func (s *Sandbox) approve(in chargeRequest) (c *sandboxCharge, fresh bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if prior := s.byReference[in.Reference]; prior != nil && in.Reference != "" {
		return prior, false
	}
	c = &sandboxCharge{ref: "ch_" + strings.ToLower(s.name) + "_" + sandboxID(), reference: in.Reference, card: in.Card, amount: in.AmountCents}
	s.approved[c.ref] = c
	if in.Reference != "" {
		s.byReference[in.Reference] = c
	}
	return c, true
}

// lookup answers GET /charges?reference=REF.
func (s *Sandbox) lookup(w http.ResponseWriter, r *http.Request) {
	reference := r.URL.Query().Get("reference")
	if reference == "" {
		answer(w, http.StatusBadRequest, gatewayError{Reason: "bad_request", Message: "reference is required"})
		return
	}
	if !s.wait(r, s.latency) {
		return
	}
	s.mu.Lock()
	c := s.byReference[reference]
	var rec chargeRecord
	if c != nil {
		rec = chargeRecord{Ref: c.ref, Reference: c.reference, AmountCents: c.amount, Status: chargeApproved}
		if c.refunded {
			rec.Status = chargeRefunded
		}
	}
	s.mu.Unlock()
	if c == nil {
		answer(w, http.StatusNotFound, gatewayError{Reason: "unknown_charge", Message: "no charge with reference " + reference})
		return
	}
	answer(w, http.StatusOK, rec)
}

func (s *Sandbox) refund(w http.ResponseWriter, r *http.Request) {
	var in refundRequest
	if !decodeSandbox(w, r, &in) || !s.wait(r, s.latency) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.approved[in.Ref]
	switch {
	case !ok:
		answer(w, http.StatusNotFound, gatewayError{Reason: "unknown_charge", Message: "no charge " + in.Ref})
	case c.refunded:
		answer(w, http.StatusConflict, gatewayError{Reason: "already_refunded", Message: "charge " + in.Ref + " is already refunded"})
	case in.AmountCents <= 0 || in.AmountCents > c.amount:
		answer(w, http.StatusBadRequest, gatewayError{Reason: "invalid_amount", Message: "refund amount out of range"})
	default:
		c.refunded = true
		s.refunds.Add(1)
		answer(w, http.StatusOK, gatewayAnswer{Ref: "re_" + strings.ToLower(s.name) + "_" + sandboxID()})
	}
}

func decodeSandbox(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		answer(w, http.StatusBadRequest, gatewayError{Reason: "bad_request", Message: err.Error()})
		return false
	}
	return true
}

func answer(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func sandboxID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
