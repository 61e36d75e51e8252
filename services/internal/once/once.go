// Package once makes a service's writes apply at most once per
// idempotency key. The gateway derives a key per write ("HEX:ACTION") and
// sends it in the frame's meta; Keyed middleware puts it, with a
// fingerprint of the request, in the handler's context, and the store
// records it in the same transaction as the row it writes, under a
// unique constraint. A retry with the key answers the first result,
// marked replayed; the key with another request is refused.
//
//	keyed := once.Keyed(st) // st's Applied finds a key's record
//	r.Handle("CREATE_USER", keyed(socket.Typed(s.create)))
//
//	// in the SQL store, one transaction for the row and its key:
//	err := s.keys.Write(ctx, func(tx *sql.Tx) (any, error) { … insert u …; return u, nil })
//	// in the memory store, under the store's mutex:
//	err := s.keys.Write(ctx, func() (any, error) { … s.byID[u.ID] = u …; return u, nil })
//
// A write whose key was applied meanwhile (a concurrent request with the
// same key won) returns an *AppliedError, which Keyed turns into the
// replay.
package once

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/streamgate/streamgate/services/socket"
)

// Key names one keyed write: whose key it is, the key, and a digest of
// the request it was sent with.
type Key struct {
	// Subject is the principal's subject: keys of two callers never meet.
	Subject string
	// ID is the request's idempotency key.
	ID string
	// Fingerprint is a digest of the action, the resource id and the body
	// (in canonical JSON).
	Fingerprint string
}

// Record is what is kept for an applied key: its request's fingerprint
// and the write's result as JSON.
type Record struct {
	Fingerprint string
	Result      json.RawMessage
}

// Ledger finds the record of a key applied before. A store that embeds it
// in its interface makes its keyed writes apply at most once per
// idempotency key: under a key in their context (From) they keep it, with
// their result, in the same transaction as the row, and when it was
// applied already they change nothing and return an *AppliedError.
type Ledger interface {
	// Applied returns the record of k's subject and id, and whether there
	// is one.
	Applied(ctx context.Context, k Key) (Record, bool, error)
}

// AppliedError is what a store's write returns, changing nothing, when its
// key was applied already (by an earlier or a concurrent request).
type AppliedError struct {
	Record Record
}

func (e *AppliedError) Error() string { return "the idempotency key was applied already" }

// ReasonKeyReused is the details reason of the answer to a key sent again
// with another request.
const ReasonKeyReused = "idempotency_key_reused"

type keyCtx struct{}

// keyed is what a context carries: the key, and whether a write kept it.
type keyed struct {
	key  Key
	kept atomic.Bool
}

// With returns ctx carrying k, for the store's writes.
func With(ctx context.Context, k Key) context.Context {
	return context.WithValue(ctx, keyCtx{}, &keyed{key: k})
}

// From returns the key in ctx, if any.
func From(ctx context.Context) (Key, bool) {
	if kd, ok := ctx.Value(keyCtx{}).(*keyed); ok {
		return kd.key, true
	}
	return Key{}, false
}

// markKept records that a write kept the key in ctx.
func markKept(ctx context.Context) {
	if kd, ok := ctx.Value(keyCtx{}).(*keyed); ok {
		kd.kept.Store(true)
	}
}

// kept reports whether a write kept the key in ctx.
func kept(ctx context.Context) bool {
	kd, ok := ctx.Value(keyCtx{}).(*keyed)
	return ok && kd.kept.Load()
}

// Keyed returns middleware for a write action: a request with an
// idempotency key whose write was applied before gets the first result
// again, marked replayed (socket.MarkReplayed), without running; one with
// the key and another request (another action, resource or body) gets
// CONFLICT, reason idempotency_key_reused. Otherwise the handler runs
// with the key in its context (From), for its store to record with the
// row; an *AppliedError from it (a concurrent request with the key won)
// is answered the same way, and so is any answer of a run that kept no
// key while a concurrent request with the key applied it (the handler
// found the resource already changed, created or gone). A request
// without a key just runs.
func Keyed(l Ledger) func(socket.Handler) socket.Handler {
	return func(next socket.Handler) socket.Handler {
		return socket.HandlerFunc(func(ctx context.Context, req *socket.Request) (json.RawMessage, error) {
			meta := socket.MetaFrom(ctx)
			if meta.IdempotencyKey == "" {
				return next.ServeAction(ctx, req)
			}
			k := Key{Subject: meta.Principal.Subject, ID: meta.IdempotencyKey, Fingerprint: Fingerprint(req)}
			rec, ok, err := l.Applied(ctx, k)
			if err != nil {
				return nil, fmt.Errorf("look up idempotency key: %w", err)
			}
			if ok {
				return replay(ctx, k, rec)
			}
			kctx := With(ctx, k)
			res, err := next.ServeAction(kctx, req)
			var applied *AppliedError
			if errors.As(err, &applied) {
				return replay(ctx, k, applied.Record)
			}
			if !kept(kctx) {
				// The run wrote nothing under the key: when a concurrent
				// request with the key did, its result is the answer.
				if rec, ok, lerr := l.Applied(ctx, k); lerr == nil && ok {
					return replay(ctx, k, rec)
				}
			}
			return res, err
		})
	}
}

// replay answers a request whose key was applied with rec.
func replay(ctx context.Context, k Key, rec Record) (json.RawMessage, error) {
	if rec.Fingerprint != k.Fingerprint {
		return nil, socket.Errorf(socket.CodeConflict, "the Idempotency-Key was used with a different request").
			WithDetails(map[string]any{socket.DetailReason: ReasonKeyReused})
	}
	socket.MarkReplayed(ctx)
	return rec.Result, nil
}

// Fingerprint is the digest of a request that a key is kept with: its
// action, resource id and body. The body counts as canonical JSON (key
// order and spacing do not matter); a body that is not JSON counts as its
// bytes.
func Fingerprint(req *socket.Request) string {
	body := bytes.TrimSpace(req.Body)
	var v any
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if len(body) > 0 && dec.Decode(&v) == nil {
		if b, err := json.Marshal(v); err == nil {
			body = b
		}
	}
	h := sha256.New()
	for _, part := range [][]byte{[]byte(req.Action), []byte(req.ResourceID), body} {
		fmt.Fprintf(h, "%d:", len(part))
		h.Write(part)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// encode is a write's result as kept in a record.
func encode(result any) (json.RawMessage, error) {
	b, err := json.Marshal(result)
	if err != nil {
		return nil, fmt.Errorf("encode the result kept with the idempotency key: %w", err)
	}
	return b, nil
}
