package socket

import "github.com/streamgate/streamgate/status"

// The error type, its codes and the helpers callers use (AsError, CodeOf)
// live in package status, which the gateway and the request library
// import too. A handler returns Errorf's *status.Error; the codes are
// here as well, so a service needs no second import to name one.

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

// Errorf is status.Errorf: an error with the code and a message formatted
// as fmt.Sprintf does. The message reaches clients; attach internal errors
// with WithCause.
func Errorf(code status.Code, format string, args ...any) *status.Error {
	return status.Errorf(code, format, args...)
}
