package socket

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/streamgate/streamgate/services/socket/internal/wire"
	"github.com/streamgate/streamgate/status"
)

// Request is what a handler receives: one action frame.
type Request struct {
	// Action is the action's name, e.g. GET_USER.
	Action string
	// ResourceID is the resource the action is about; empty for collection
	// actions.
	ResourceID string
	// Body is the request's JSON body; nil when there is none.
	Body json.RawMessage
	// Meta is who asks, in which API version, under which trace.
	Meta Meta
}

// Meta travels with every request. The server fills it from the frame and
// the stream's key; handlers read it from Request.Meta or MetaFrom(ctx).
type Meta struct {
	// APIVersion is the API version the request came in on, e.g. "v2".
	APIVersion string
	// Principal is the end user, or the key itself when the caller does not
	// delegate.
	Principal Principal
	// Caller is the name of the key that opened the stream.
	Caller string
	// TraceParent and TraceState are the W3C trace context.
	TraceParent, TraceState string
	// IdempotencyKey is the client's Idempotency-Key, for writes.
	IdempotencyKey string
	// RequestID is the id the edge assigned to the request.
	RequestID string
	// ReadEpoch, on reads, says which writes the caller has seen; reads
	// with different epochs never share a handler run.
	ReadEpoch string
}

// Principal is an authenticated caller.
type Principal struct {
	Subject string
	Roles   []string
}

// HasRole reports whether the principal has the role.
func (p Principal) HasRole(role string) bool { return slices.Contains(p.Roles, role) }

// MetaFrom returns the meta in ctx, or the zero Meta.
func MetaFrom(ctx context.Context) Meta {
	if m := metaIn(ctx); m != nil {
		return *m
	}
	return Meta{}
}

// metaIn returns the meta in ctx (set by the server for a handler, or by
// caller.ContextWithMeta for the requests made with it), or nil.
func metaIn(ctx context.Context) *Meta {
	switch v := wire.MetaValue(ctx).(type) {
	case *Meta:
		return v
	case *requestState:
		return v.meta
	}
	return nil
}

// Handler runs an action. It returns the result as JSON, or an error; an
// *status.Error chooses the code, any other error becomes INTERNAL. The context
// ends at the request's deadline, when the caller cancels, or when the
// stream ends.
type Handler interface {
	ServeAction(ctx context.Context, req *Request) (json.RawMessage, error)
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, req *Request) (json.RawMessage, error)

// ServeAction calls f.
func (f HandlerFunc) ServeAction(ctx context.Context, req *Request) (json.RawMessage, error) {
	return f(ctx, req)
}

// Typed adapts a function with typed input and output to Handler. The body
// is decoded into In (unknown fields and trailing data are INVALID_ARGUMENT;
// an empty body leaves In zero) and the result is encoded as JSON.
func Typed[In, Out any](fn func(ctx context.Context, id string, in In) (Out, error)) Handler {
	return HandlerFunc(func(ctx context.Context, req *Request) (json.RawMessage, error) {
		var in In
		if err := DecodeBody(req.Body, &in); err != nil {
			return nil, err
		}
		out, err := fn(ctx, req.ResourceID, in)
		if err != nil {
			return nil, err
		}
		b, err := json.Marshal(out)
		if err != nil {
			return nil, fmt.Errorf("encode %s result: %w", req.Action, err)
		}
		return b, nil
	})
}

// DecodeBody decodes a JSON body into v strictly: unknown fields, trailing
// data and type mismatches are INVALID_ARGUMENT errors that say where. An
// empty body leaves v unchanged.
func DecodeBody(body json.RawMessage, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return bodyError(err, dec.InputOffset())
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return Errorf(CodeInvalidArgument, "invalid JSON body: unexpected data after the value at offset %d", dec.InputOffset())
	}
	return nil
}

func bodyError(err error, offset int64) *status.Error {
	var syntax *json.SyntaxError
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return Errorf(CodeInvalidArgument, "invalid JSON body at offset %d: %s", syntax.Offset, syntax.Error()).
			WithDetails(map[string]any{"offset": syntax.Offset})
	case errors.As(err, &typeErr):
		return Errorf(CodeInvalidArgument, "invalid body: field %q must be %s, got %s", typeErr.Field, typeErr.Type, typeErr.Value).
			WithDetails(map[string]any{"field": typeErr.Field, "offset": typeErr.Offset})
	case errors.Is(err, io.ErrUnexpectedEOF):
		return Errorf(CodeInvalidArgument, "invalid JSON body: unexpected end at offset %d", offset)
	}
	if field, ok := unknownField(err); ok {
		return Errorf(CodeInvalidArgument, "invalid body: unknown field %q", field).
			WithDetails(map[string]any{"field": field, DetailReason: ReasonUnknownField})
	}
	return Errorf(CodeInvalidArgument, "invalid body: %s", err.Error())
}

// ReasonUnknownField is the details reason of a body field the action
// does not take (details.field names it).
const ReasonUnknownField = "unknown_field"

// unknownField returns the field encoding/json's DisallowUnknownFields
// complained about.
func unknownField(err error) (string, bool) {
	q, ok := strings.CutPrefix(err.Error(), "json: unknown field ")
	if !ok {
		return "", false
	}
	field, uerr := strconv.Unquote(q)
	return field, uerr == nil
}

// ActionOption declares an action's properties at registration.
type ActionOption func(*actionSpec)

// actionSpec is what an action declares about itself.
type actionSpec struct {
	read       bool
	public     bool
	idempotent bool
	cacheTTL   time.Duration
	versions   []string
	timeout    time.Duration
	doc        string
}

// Read marks the action as a read: it changes nothing, so it is idempotent,
// may be retried on another instance, cached and coalesced. Actions are
// writes unless marked.
func Read() ActionOption {
	return func(s *actionSpec) { s.read, s.idempotent = true, true }
}

// Public declares that a read's answer is the same for every caller, so
// identical reads from different principals may share one handler run (and
// one cache entry at the gateway). Reads are per-caller unless marked.
func Public() ActionOption {
	return func(s *actionSpec) { s.public = true }
}

// Idempotent marks a write as safe to send twice (PUT, DELETE).
func Idempotent() ActionOption {
	return func(s *actionSpec) { s.idempotent = true }
}

// CacheTTL declares how long a read's result may be cached. Default 0: not
// cached.
func CacheTTL(d time.Duration) ActionOption {
	return func(s *actionSpec) { s.cacheTTL = d }
}

// Versions limits the action to the API versions named. A request in any
// other version, or in none, gets NOT_SUPPORTED naming the supported ones.
// Default: all versions.
func Versions(versions ...string) ActionOption {
	return func(s *actionSpec) { s.versions = append(s.versions, versions...) }
}

// Timeout bounds how long the handler may run, whatever deadline the
// caller gave. Default: only the caller's deadline.
func Timeout(d time.Duration) ActionOption {
	return func(s *actionSpec) { s.timeout = d }
}

// Doc describes the action in the Describe catalogue.
func Doc(text string) ActionOption {
	return func(s *actionSpec) { s.doc = text }
}
