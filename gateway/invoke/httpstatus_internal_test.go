package invoke

import (
	"net/http"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/streamgate/streamgate/gateway/config"
	"github.com/streamgate/streamgate/services/payments"
	"github.com/streamgate/streamgate/status"
)

// statusTable returns a table whose configuration is the YAML doc.
func statusTable(t *testing.T, doc string) *Table {
	t.Helper()
	cfg, err := config.Parse("gateway.yaml", []byte(doc), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	return &Table{cfg: cfg}
}

// TestHTTPStatus pins the one table from errors to HTTP statuses: each
// code's status, and the payment refusals that alone answer 402, as the
// configuration lists them (by default the example payments service's).
func TestHTTPStatus(t *testing.T) {
	t.Parallel()
	refused := func(code status.Code, reason any) *status.Error {
		return status.Errorf(code, "refused").WithDetails(map[string]any{status.DetailReason: reason})
	}
	defaults := statusTable(t, "")
	own := statusTable(t, "http: {payment_required_reasons: [card_stolen]}")
	none := statusTable(t, "http: {payment_required_reasons: []}")
	tests := []struct {
		name string
		t    *Table
		err  *status.Error
		want int
	}{
		{"invalid argument", defaults, status.Errorf(status.CodeInvalidArgument, "x"), http.StatusBadRequest},
		{"unauthenticated", defaults, status.Errorf(status.CodeUnauthenticated, "x"), http.StatusUnauthorized},
		{"permission denied", defaults, status.Errorf(status.CodePermissionDenied, "x"), http.StatusForbidden},
		{"not found", defaults, status.Errorf(status.CodeNotFound, "x"), http.StatusNotFound},
		{"already exists", defaults, status.Errorf(status.CodeAlreadyExists, "x"), http.StatusConflict},
		{"conflict", defaults, status.Errorf(status.CodeConflict, "x"), http.StatusConflict},
		{"failed precondition", defaults, status.Errorf(status.CodeFailedPrecondition, "x"), http.StatusUnprocessableEntity},
		{"not supported", defaults, status.Errorf(status.CodeNotSupported, "x"), http.StatusUnprocessableEntity},
		{"resource exhausted", defaults, status.Errorf(status.CodeResourceExhausted, "x"), http.StatusTooManyRequests},
		{"unavailable", defaults, status.Errorf(status.CodeUnavailable, "x"), http.StatusServiceUnavailable},
		{"deadline exceeded", defaults, status.Errorf(status.CodeDeadlineExceeded, "x"), http.StatusGatewayTimeout},
		{"canceled", defaults, status.Errorf(status.CodeCanceled, "x"), 499},
		{"internal", defaults, status.Errorf(status.CodeInternal, "x"), http.StatusInternalServerError},
		{"unknown code", defaults, status.Errorf("TEAPOT", "x"), http.StatusInternalServerError},

		{"order paid", defaults, refused(status.CodeFailedPrecondition, "order_paid"), http.StatusUnprocessableEntity},
		{"user suspended", defaults, refused(status.CodeFailedPrecondition, "user_suspended"), http.StatusUnprocessableEntity},
		{"voucher used", defaults, refused(status.CodeFailedPrecondition, "voucher_used"), http.StatusUnprocessableEntity},
		{"out of stock", defaults, refused(status.CodeFailedPrecondition, "out_of_stock"), http.StatusUnprocessableEntity},
		{"refund refused", defaults, refused(status.CodeFailedPrecondition, "already_refunded"), http.StatusUnprocessableEntity},

		{"card declined", defaults, refused(status.CodeFailedPrecondition, "card_declined"), http.StatusPaymentRequired},
		{"insufficient funds", defaults, refused(status.CodeFailedPrecondition, "insufficient_funds"), http.StatusPaymentRequired},
		{"expired card", defaults, refused(status.CodeFailedPrecondition, "expired_card"), http.StatusPaymentRequired},
		{"invalid card", defaults, refused(status.CodeFailedPrecondition, "invalid_card"), http.StatusPaymentRequired},

		{"a payment reason under another code", defaults, refused(status.CodeInvalidArgument, "card_declined"), http.StatusBadRequest},
		{"a reason that is not a string", defaults, refused(status.CodeFailedPrecondition, 402), http.StatusUnprocessableEntity},

		{"configured: a reason of its own", own, refused(status.CodeFailedPrecondition, "card_stolen"), http.StatusPaymentRequired},
		{"configured: the defaults replaced", own, refused(status.CodeFailedPrecondition, "card_declined"), http.StatusUnprocessableEntity},
		{"configured: none", none, refused(status.CodeFailedPrecondition, "card_declined"), http.StatusUnprocessableEntity},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := tt.t.statusOf(tt.err); got != tt.want {
				t.Fatalf("(%s, reason %v): %d, want %d", tt.err.Code, tt.err.Details[status.DetailReason], got, tt.want)
			}
			if a := tt.t.serviceFailed(tt.err); a.Status != tt.want || a.Err != tt.err {
				t.Fatalf("serviceFailed = %d %v", a.Status, a.Err)
			}
			if tt.err.Details == nil && HTTPStatus(tt.err.Code) != tt.want {
				t.Fatalf("HTTPStatus(%s) = %d, want %d", tt.err.Code, HTTPStatus(tt.err.Code), tt.want)
			}
		})
	}
	for _, c := range status.Codes() {
		if _, ok := codeStatus[c]; !ok {
			t.Errorf("%s has no HTTP status", c)
		}
	}
}

// TestDefaultPaymentRequiredReasons keeps the gateway's default for
// http.payment_required_reasons equal to what the example payments
// service declares as payment refusals: the reasons are the service's,
// and a configuration that names none answers them as it always did.
func TestDefaultPaymentRequiredReasons(t *testing.T) {
	t.Parallel()
	got := slices.Sorted(slices.Values(statusTable(t, "").cfg.HTTP.PaymentRequiredReasons))
	want := slices.Sorted(slices.Values(payments.PaymentRefusals()))
	if !slices.Equal(got, want) {
		t.Fatalf("http.payment_required_reasons defaults to %v; payments declares %v", got, want)
	}
}

// statusKey is a row of docs/gateway.md's status table: a code, and a reason or ""
// for the code's own status.
type statusKey struct {
	code   status.Code
	reason string
}

// TestDocsStatusTable keeps docs/gateway.md's "Error codes and HTTP
// statuses" table equal to codeStatus and the default payment refusals,
// row for row: the table is documented once, and the page cannot say
// otherwise.
func TestDocsStatusTable(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../../docs/gateway.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "\n## Error codes and HTTP statuses\n")
	if !ok {
		t.Fatal(`docs/gateway.md has no "## Error codes and HTTP statuses"`)
	}
	if end := strings.Index(section, "\n#"); end >= 0 {
		section = section[:end]
	}
	codeRE := regexp.MustCompile(`\b[A-Z]+(?:_[A-Z]+)*\b`)
	reasonRE := regexp.MustCompile("`([a-z_]+)`")
	documented := map[statusKey]int{}
	for _, line := range strings.Split(section, "\n") {
		cells := strings.Split(strings.Trim(line, "| "), " | ")
		st, err := strconv.Atoi(strings.TrimSpace(cells[len(cells)-1]))
		if !strings.HasPrefix(line, "|") || len(cells) != 2 || err != nil {
			continue
		}
		reasons := []string{""}
		if m := reasonRE.FindAllStringSubmatch(cells[0], -1); m != nil {
			reasons = reasons[:0]
			for _, r := range m {
				reasons = append(reasons, r[1])
			}
		}
		for _, c := range codeRE.FindAllString(reasonRE.ReplaceAllString(cells[0], ""), -1) {
			for _, r := range reasons {
				documented[statusKey{status.Code(c), r}] = st
			}
		}
	}
	want := map[statusKey]int{}
	for c, s := range codeStatus {
		want[statusKey{code: c}] = s
	}
	for _, r := range statusTable(t, "").cfg.HTTP.PaymentRequiredReasons {
		want[statusKey{status.CodeFailedPrecondition, r}] = http.StatusPaymentRequired
	}
	for k, w := range want {
		if got, ok := documented[k]; !ok || got != w {
			t.Errorf("docs/gateway.md says %s reason %q is %d (0: missing); the table says %d", k.code, k.reason, got, w)
		}
	}
	for k, got := range documented {
		if _, ok := want[k]; !ok {
			t.Errorf("docs/gateway.md lists %s reason %q (%d), the table does not", k.code, k.reason, got)
		}
	}
}
