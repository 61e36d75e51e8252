package status

// Code is one of the standard error codes of the socket protocol
// (docs/protocol.md). The set is closed: every error that crosses a
// socket carries one of these.
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

// Wire names of the details that refine a code. They are part of the
// protocol.
const (
	// DetailReason is the details key that refines an error code: a
	// lower_snake word the service chooses ("order_paid").
	DetailReason = "reason"
	// DetailRetryAfterMs is the details key of a hint, in milliseconds, of
	// when trying again may succeed.
	DetailRetryAfterMs = "retry_after_ms"
)

// Codes lists the standard codes.
func Codes() []Code {
	return []Code{CodeInvalidArgument, CodeUnauthenticated, CodePermissionDenied, CodeNotFound, CodeAlreadyExists,
		CodeConflict, CodeFailedPrecondition, CodeNotSupported, CodeResourceExhausted, CodeUnavailable,
		CodeDeadlineExceeded, CodeCanceled, CodeInternal}
}

// Valid reports whether c is one of the standard codes.
func (c Code) Valid() bool {
	switch c {
	case CodeInvalidArgument, CodeUnauthenticated, CodePermissionDenied, CodeNotFound, CodeAlreadyExists,
		CodeConflict, CodeFailedPrecondition, CodeNotSupported, CodeResourceExhausted, CodeUnavailable,
		CodeDeadlineExceeded, CodeCanceled, CodeInternal:
		return true
	}
	return false
}
