// Package status is what an error says across streamgate: a code from a
// closed set, a message safe to show clients, optional details and, kept
// apart, the internal cause. Services return it from handlers; the socket
// runtime carries it in frames; the gateway renders it in envelopes with
// the HTTP status its edge maps the code to.
//
//	return nil, status.Errorf(status.CodeNotFound, "user %q not found", id)
//	return nil, status.Errorf(status.CodeUnavailable, "the store is unavailable").WithCause(err)
//	return nil, status.Errorf(status.CodeFailedPrecondition, "order %s is paid", id).
//		WithDetails(map[string]any{status.DetailReason: "order_paid"})
//
// Any other error becomes INTERNAL with a generic message (AsError): the
// cause is logged, never sent. Context errors become DEADLINE_EXCEEDED and
// CANCELED. The package knows no transport status and no HTTP: the gateway
// owns code → HTTP status, and a service names its own reasons.
package status
