package status

import (
	"context"
	"errors"
	"fmt"
)

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
//	status.Errorf(status.CodeUnavailable, "gateway %s is unavailable", name).WithCause(err)
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
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

// Reason returns the details' reason (DetailReason), "" when there is
// none or it is not a string.
func (e *Error) Reason() string {
	r, _ := e.Details[DetailReason].(string)
	return r
}

func (e *Error) Error() string {
	return string(e.Code) + ": " + e.Message
}

// Unwrap returns the cause, if any.
func (e *Error) Unwrap() error { return e.cause }

// Is reports whether target is an *Error with the same code (and message,
// when target has one), so that
// errors.Is(err, &status.Error{Code: status.CodeNotFound}) works.
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
