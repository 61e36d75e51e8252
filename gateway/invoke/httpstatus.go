package invoke

import (
	"net/http"
	"slices"

	"github.com/streamgate/streamgate/gateway/observe"
	"github.com/streamgate/streamgate/status"
)

// codeStatus is the one table from error codes to HTTP statuses at the
// gateway's edges (REST, the HttpStatus of GatewayService.Invoke, a
// WebSocket answer's status). Each code has one status. FAILED_PRECONDITION
// is 422 (the request is understood and well formed, but the state of
// things refuses it: an order already paid, a suspended user, a used
// voucher, missing stock); 409 stays for ALREADY_EXISTS and CONFLICT:
// another request got there first or is still running. The one refinement
// is the configuration's: Table.statusOf. docs/gateway.md ("Error codes
// and HTTP statuses") shows this table; TestDocsStatusTable keeps the two equal.
var codeStatus = map[status.Code]int{
	status.CodeInvalidArgument:    http.StatusBadRequest,
	status.CodeUnauthenticated:    http.StatusUnauthorized,
	status.CodePermissionDenied:   http.StatusForbidden,
	status.CodeNotFound:           http.StatusNotFound,
	status.CodeAlreadyExists:      http.StatusConflict,
	status.CodeConflict:           http.StatusConflict,
	status.CodeFailedPrecondition: http.StatusUnprocessableEntity,
	status.CodeNotSupported:       http.StatusUnprocessableEntity,
	status.CodeResourceExhausted:  http.StatusTooManyRequests,
	status.CodeUnavailable:        http.StatusServiceUnavailable,
	status.CodeDeadlineExceeded:   http.StatusGatewayTimeout,
	status.CodeCanceled:           observe.StatusClientGone, // the client closed the request
	status.CodeInternal:           http.StatusInternalServerError,
}

// HTTPStatus returns the HTTP status a code answers with; a code outside
// the standard set is 500.
func HTTPStatus(c status.Code) int {
	if s, ok := codeStatus[c]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// statusOf returns the HTTP status a service's error answers with: its
// code's, except a FAILED_PRECONDITION whose reason the configuration
// lists in http.payment_required_reasons (a payment the provider refused),
// which is 402. The gateway knows no service's reasons of its own: a
// service declares them (the example payments service, PaymentRefusals)
// and the configuration names them.
func (t *Table) statusOf(e *status.Error) int {
	if e.Code == status.CodeFailedPrecondition {
		if r := e.Reason(); r != "" && slices.Contains(t.cfg.HTTP.PaymentRequiredReasons, r) {
			return http.StatusPaymentRequired
		}
	}
	return HTTPStatus(e.Code)
}

// serviceFailed answers an error that a service, or a pipeline of them,
// returned: with t.statusOf, since its reason may be one the
// configuration maps.
func (t *Table) serviceFailed(e *status.Error) Answer {
	return Answer{Status: t.statusOf(e), Err: e}
}

// Statuses that no error code maps to: the HTTP layer answers them
// before a route runs. Their envelopes still carry a standard code.
const (
	StatusMethodNotAllowed = http.StatusMethodNotAllowed      // NOT_SUPPORTED
	StatusTooLarge         = http.StatusRequestEntityTooLarge // INVALID_ARGUMENT, reason body_too_large
	StatusMediaType        = http.StatusUnsupportedMediaType  // INVALID_ARGUMENT, reason unsupported_media_type
	statusKeyReused        = http.StatusUnprocessableEntity   // INVALID_ARGUMENT, reason idempotency_key_reused
)
