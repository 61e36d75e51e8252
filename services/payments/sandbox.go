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
//	anything else     declined, reason invalid_card
//
// Refunds of a charge it approved succeed once.
type Sandbox struct {
	name    string
	latency time.Duration
	srv     *http.Server
	closed  chan struct{} // closed by Close: handlers stop waiting
	served  chan struct{} // closed when Serve returns
	charges atomic.Int64  // charge requests received
	refunds atomic.Int64  // refunds made
	waiting atomic.Int64  // requests in wait, for tests

	mu       sync.Mutex // guards started and approved
	started  bool
	approved map[string]*sandboxCharge // by ref
}

// sandboxCharge is an approved charge.
type sandboxCharge struct {
	amount   int64
	refunded bool
}

// NewSandbox returns a sandbox named name (it appears in the refs it
// hands out) that answers after latency. Start it.
func NewSandbox(name string, latency time.Duration) *Sandbox {
	s := &Sandbox{
		name:     name,
		latency:  latency,
		closed:   make(chan struct{}),
		served:   make(chan struct{}),
		approved: map[string]*sandboxCharge{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /charges", s.charge)
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

// wait sleeps for d, or less when the request ends or the sandbox closes;
// it reports whether the full time passed.
func (s *Sandbox) wait(r *http.Request, d time.Duration) bool {
	s.waiting.Add(1)
	defer s.waiting.Add(-1)
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

func (s *Sandbox) charge(w http.ResponseWriter, r *http.Request) {
	s.charges.Add(1)
	var in chargeRequest
	if !decodeSandbox(w, r, &in) || !s.wait(r, s.latency) {
		return
	}
	switch in.Card {
	case cardApproved:
		if in.AmountCents <= 0 {
			answer(w, http.StatusBadRequest, gatewayError{Reason: "invalid_amount"})
			return
		}
		ref := "ch_" + strings.ToLower(s.name) + "_" + sandboxID()
		s.mu.Lock()
		s.approved[ref] = &sandboxCharge{amount: in.AmountCents}
		s.mu.Unlock()
		answer(w, http.StatusOK, gatewayAnswer{Ref: ref})
	case cardDeclined:
		answer(w, http.StatusPaymentRequired, gatewayError{Reason: "card_declined", Message: "the card was declined"})
	case cardHangs:
		s.wait(r, sandboxHang)
	default:
		answer(w, http.StatusPaymentRequired, gatewayError{Reason: "invalid_card", Message: "the card number is not valid"})
	}
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
