package socket

import "github.com/streamgate/streamgate/status"

// The error type and its codes live in package status, which the gateway
// imports too; these names keep the runtime's callers working. New code
// may use either.

// Code is status.Code: one of the standard error codes.
type Code = status.Code

// Error is status.Error: a code, a message safe for clients, details and
// a cause that is never sent.
type Error = status.Error

// The standard error codes (status.Code…).
const (
	CodeInvalidArgument    = status.CodeInvalidArgument
	CodeUnauthenticated    = status.CodeUnauthenticated
	CodePermissionDenied   = status.CodePermissionDenied
	CodeNotFound           = status.CodeNotFound
	CodeAlreadyExists      = status.CodeAlreadyExists
	CodeConflict           = status.CodeConflict
	CodeFailedPrecondition = status.CodeFailedPrecondition
	CodeNotSupported       = status.CodeNotSupported
	CodeResourceExhausted  = status.CodeResourceExhausted
	CodeUnavailable        = status.CodeUnavailable
	CodeDeadlineExceeded   = status.CodeDeadlineExceeded
	CodeCanceled           = status.CodeCanceled
	CodeInternal           = status.CodeInternal
)

// Codes lists the standard codes (status.Codes).
func Codes() []Code { return status.Codes() }

// Errorf is status.Errorf: an *Error with the code and a message formatted
// as fmt.Sprintf does. The message reaches clients; attach internal errors
// with WithCause.
func Errorf(code Code, format string, args ...any) *Error {
	return status.Errorf(code, format, args...)
}

// AsError is status.AsError: any error as an *Error (context errors as
// DEADLINE_EXCEEDED or CANCELED, anything else as INTERNAL).
func AsError(err error) *Error { return status.AsError(err) }

// CodeOf is status.CodeOf: the code AsError would assign err; "" for nil.
func CodeOf(err error) Code { return status.CodeOf(err) }

// FromStatus is status.FromGRPC: a gRPC status error as an *Error with a
// generic message and err as its cause.
func FromStatus(err error) *Error { return status.FromGRPC(err) }
