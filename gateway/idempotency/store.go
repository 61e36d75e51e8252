// Package idempotency keeps the gateway's Idempotency-Key state: a lease
// while the first request with a key runs, then its answer, replayed to
// retries for a while (the IETF httpapi Idempotency-Key draft, as Stripe
// practises it). Stores live in the process (Memory) or in Redis (Redis),
// so a retry that reaches another gateway is answered the same.
//
//	key, err := idempotency.ParseKey(r.Header.Get("Idempotency-Key"))
//	scope := idempotency.Scope{Principal: coalesce.Scope(p.Subject, p.Roles), Version: "v1", Route: "POST /v1/orders/{id}/pay", Key: key}
//	b, err := store.Begin(ctx, scope.ID(), idempotency.Fingerprint("POST", "/v1/orders/7/pay", "", body), lease)
//	switch b.Outcome {
//	case idempotency.Acquired: // run, then store.Complete(…, b.Token, answer, ttl) or store.Release(…, b.Token)
//	case idempotency.Done:     // replay b.Answer
//	case idempotency.InUse:    // 409, Retry-After
//	case idempotency.Mismatch: // 422: the key was used for another request
//	}
package idempotency

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"time"
)

// Store holds leases and answers by scope id. Implementations are safe for
// concurrent use; every method is atomic with respect to the others on the
// same id.
type Store interface {
	// Begin takes the lease on id for a request with fingerprint fp, or
	// reports what holds the id: a lease of another request, or an
	// answer. A lease expires by itself after lease, so that a crashed
	// gateway's lease frees itself.
	Begin(ctx context.Context, id, fp string, lease time.Duration) (Begun, error)
	// Complete replaces the lease token holds with the answer, kept for
	// ttl. A lease that expired or is held by another token is left alone
	// (ErrLeaseLost).
	Complete(ctx context.Context, id, token string, a Answer, ttl time.Duration) error
	// Release drops the lease token holds, so that a retry runs again.
	Release(ctx context.Context, id, token string) error
}

// Outcome is what Begin found.
type Outcome int

// The outcomes of Begin.
const (
	// Acquired: the caller holds the lease; it runs the request, then
	// calls Complete or Release with the token.
	Acquired Outcome = iota
	// InUse: another request with the same id and fingerprint holds the
	// lease.
	InUse
	// Done: a request with the same id and fingerprint was answered;
	// Answer is its answer.
	Done
	// Mismatch: the id was used for a request with another fingerprint.
	Mismatch
)

// Begun is the result of Begin.
type Begun struct {
	Outcome Outcome
	// Token identifies the lease (Acquired).
	Token string
	// Answer is the stored answer (Done).
	Answer *Answer
	// LeaseLeft is how long the other request's lease still runs (InUse).
	LeaseLeft time.Duration
}

// Answer is a definite answer kept for replay: the status, the Location
// header, and the body as it was sent (the envelope).
type Answer struct {
	Status   int    `json:"status"`
	Location string `json:"location,omitempty"`
	Body     []byte `json:"body"`
}

// ErrLeaseLost is returned by Complete and Release when the lease expired
// or is held by another token.
var ErrLeaseLost = leaseLost{}

type leaseLost struct{}

func (leaseLost) Error() string {
	return "idempotency: the lease expired or is held by another request"
}

// newToken returns a random lease token (32 hex digits).
func newToken() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
