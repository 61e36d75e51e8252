package socket

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Code is one of the standard error codes of DESIGN.md. The set is closed:
// every error that crosses a socket carries one of these.
type Code string

// The standard error codes.
const (
	CodeInvalidArgument    Code = "INVALID_ARGUMENT"
	CodeUnauthenticated    Code = "UNAUTHENTICATED"
	CodePermissionDenied   Code = "PERMISSION_DENIED"
	CodeNotFound           Code = "NOT_FOUND"
	CodeAlreadyExists      Code = "ALREADY_EXISTS"
	CodeConflict           Code = "CONFLICT"
	CodeFailedPrecondition Code = "FAILED_PRECONDITION"
	CodeNotSupported       Code = "NOT_SUPPORTED"
	CodeResourceExhausted  Code = "RESOURCE_EXHAUSTED"
	CodeUnavailable        Code = "UNAVAILABLE"
	CodeDeadlineExceeded   Code = "DEADLINE_EXCEEDED"
	CodeCanceled           Code = "CANCELED"
	CodeInternal           Code = "INTERNAL"
)

// statusKey is a row of httpStatus: a code, and a reason or "" for the
// code's own status.
type statusKey struct {
	code   Code
	reason string
}

// httpStatus is the one table that maps errors to HTTP statuses at the
// REST edge. Each code has one status (reason ""). A few (code, reason)
// pairs refine it, and only these: FAILED_PRECONDITION is 422 (the request
// is understood and well formed, but the state of things refuses it: an
// order already paid, a suspended user, a used voucher, missing stock),
// except a payment the provider refused (card declined, insufficient
// funds, expired or invalid card), which is 402. 409 stays for
// ALREADY_EXISTS and CONFLICT: another request got there first or is
// still running. README's "Error codes and HTTP statuses" shows this
// table; TestReadmeStatusTable keeps the two equal.
var httpStatus = map[statusKey]int{
	{CodeInvalidArgument, ""}:    http.StatusBadRequest,
	{CodeUnauthenticated, ""}:    http.StatusUnauthorized,
	{CodePermissionDenied, ""}:   http.StatusForbidden,
	{CodeNotFound, ""}:           http.StatusNotFound,
	{CodeAlreadyExists, ""}:      http.StatusConflict,
	{CodeConflict, ""}:           http.StatusConflict,
	{CodeFailedPrecondition, ""}: http.StatusUnprocessableEntity,
	{CodeNotSupported, ""}:       http.StatusUnprocessableEntity,
	{CodeResourceExhausted, ""}:  http.StatusTooManyRequests,
	{CodeUnavailable, ""}:        http.StatusServiceUnavailable,
	{CodeDeadlineExceeded, ""}:   http.StatusGatewayTimeout,
	{CodeCanceled, ""}:           499, // client closed request
	{CodeInternal, ""}:           http.StatusInternalServerError,

	// A payment refused by its provider: the reasons payments passes on.
	{CodeFailedPrecondition, "card_declined"}:      http.StatusPaymentRequired,
	{CodeFailedPrecondition, "insufficient_funds"}: http.StatusPaymentRequired,
	{CodeFailedPrecondition, "expired_card"}:       http.StatusPaymentRequired,
	{CodeFailedPrecondition, "invalid_card"}:       http.StatusPaymentRequired,
}

// Codes lists the standard codes.
func Codes() []Code {
	return []Code{CodeInvalidArgument, CodeUnauthenticated, CodePermissionDenied, CodeNotFound, CodeAlreadyExists,
		CodeConflict, CodeFailedPrecondition, CodeNotSupported, CodeResourceExhausted, CodeUnavailable,
		CodeDeadlineExceeded, CodeCanceled, CodeInternal}
}

// HTTPStatus returns the HTTP status a code maps to at the REST edge; an
// unknown code maps to 500. An error's own status may be refined by its
// reason: see Error.HTTPStatus.
func (c Code) HTTPStatus() int {
	if s, ok := httpStatus[statusKey{code: c}]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// Valid reports whether c is one of the standard codes.
func (c Code) Valid() bool {
	_, ok := httpStatus[statusKey{code: c}]
	return ok
}

// Error is the error that crosses a socket: a standard code, a message safe
// to show to clients, and optional details. Handlers return it to choose the
// code; any other error reaches the caller as INTERNAL with a generic message
// (the cause is logged, never sent).
//
// The message and the cause are kept apart: Errorf builds the message that
// clients see, WithCause attaches the internal error (a driver's, a dial's,
// another service's) that is logged and found by errors.Is and errors.As
// but never sent.
type Error struct {
	Code    Code           `json:"code"`
	Message string         `json:"message"`
	Details map[string]any `json:"details,omitempty"`
	cause   error
}

// Errorf returns an *Error with the code and a message formatted as
// fmt.Sprintf does. The message reaches clients: keep internal errors out
// of it and attach them with WithCause instead (go vet's printf check
// rejects a %w verb here, which is the point).
//
//	socket.Errorf(socket.CodeUnavailable, "gateway %s is unavailable", name).WithCause(err)
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// HTTPStatus returns the HTTP status e answers with at the REST edge: the
// status of its code and its details' reason when the table has that pair
// (a payment refusal is 402), else its code's status.
func (e *Error) HTTPStatus() int {
	if reason, ok := e.Details[DetailReason].(string); ok && reason != "" {
		if s, ok := httpStatus[statusKey{e.Code, reason}]; ok {
			return s
		}
	}
	return e.Code.HTTPStatus()
}

// WithDetails returns a copy of e with the details set.
func (e *Error) WithDetails(details map[string]any) *Error {
	c := *e
	c.Details = details
	return &c
}

// WithCause returns a copy of e with the cause set: the internal error
// behind it, for logs and for errors.Is and errors.As. The cause is never
// sent to clients and never changes the message.
func (e *Error) WithCause(err error) *Error {
	c := *e
	c.cause = err
	return &c
}

func (e *Error) Error() string {
	return string(e.Code) + ": " + e.Message
}

// Unwrap returns the cause, if any.
func (e *Error) Unwrap() error { return e.cause }

// Is reports whether target is an *Error with the same code, so that
// errors.Is(err, &socket.Error{Code: socket.CodeNotFound}) works.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code && (t.Message == "" || t.Message == e.Message)
}

// AsError converts any error to an *Error: an *Error in the chain is
// returned as is; context errors become DEADLINE_EXCEEDED or CANCELED;
// anything else becomes INTERNAL with a generic message and err as cause.
func AsError(err error) *Error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return &Error{Code: CodeDeadlineExceeded, Message: "deadline exceeded", cause: err}
	case errors.Is(err, context.Canceled):
		return &Error{Code: CodeCanceled, Message: "canceled", cause: err}
	}
	return &Error{Code: CodeInternal, Message: "internal error", cause: err}
}

// CodeOf returns the code of err as AsError would assign it; "" for nil.
func CodeOf(err error) Code {
	if err == nil {
		return ""
	}
	return AsError(err).Code
}

// codeNames maps gRPC status codes to the standard codes, for errors that
// come from the transport rather than from a response frame.
var codeNames = map[codes.Code]Code{
	codes.InvalidArgument:    CodeInvalidArgument,
	codes.Unauthenticated:    CodeUnauthenticated,
	codes.PermissionDenied:   CodePermissionDenied,
	codes.NotFound:           CodeNotFound,
	codes.AlreadyExists:      CodeAlreadyExists,
	codes.FailedPrecondition: CodeFailedPrecondition,
	codes.Unimplemented:      CodeNotSupported,
	codes.ResourceExhausted:  CodeResourceExhausted,
	codes.Unavailable:        CodeUnavailable,
	codes.DeadlineExceeded:   CodeDeadlineExceeded,
	codes.Canceled:           CodeCanceled,
	codes.Internal:           CodeInternal,
	codes.Unknown:            CodeInternal,
}

// statusMessages are the messages FromStatus gives per code: a status's own
// text may come from the transport (addresses, dial errors) and is kept as
// the cause only.
var statusMessages = map[Code]string{
	CodeInvalidArgument:    "the service refused the request as invalid",
	CodeUnauthenticated:    "the service did not accept the credentials",
	CodePermissionDenied:   "permission denied",
	CodeNotFound:           "not found",
	CodeAlreadyExists:      "already exists",
	CodeFailedPrecondition: "the service refused the request in its current state",
	CodeNotSupported:       "the service does not support this call",
	CodeResourceExhausted:  "the service is out of resources for this request",
	CodeUnavailable:        "the service is unavailable",
	CodeDeadlineExceeded:   "deadline exceeded",
	CodeCanceled:           "canceled",
	CodeInternal:           "internal error",
}

// FromStatus turns a gRPC status error into an *Error with the matching
// standard code and a generic message for that code; err is kept as the
// cause (logged, never sent). An error without a status becomes
// UNAVAILABLE.
func FromStatus(err error) *Error {
	code := CodeUnavailable
	if s, ok := status.FromError(err); ok {
		if c := codeNames[s.Code()]; c != "" {
			code = c
		}
	}
	return &Error{Code: code, Message: statusMessages[code], cause: err}
}
