package gateway_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/streamgate/streamgate/services/socket"
)

// TestReplayedStepIsNeverUndone: a pipeline compensates only what its own
// run created. Defect (issue 8): a retried purchase's PAY replayed the
// first purchase's charge, its MARK_PAID failed, and its undo refunded the
// real charge.
func TestReplayedStepIsNeverUndone(t *testing.T) {
	for _, c := range []struct {
		name     string
		replayed bool
		undone   int
	}{
		{"created by this run: undone", false, 1},
		{"replayed: left alone", true, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			shop := startService(t, "shop", map[string]handlerFunc{
				"CHARGE": func(ctx context.Context, _ *socket.Request) (any, error) {
					if c.replayed {
						socket.MarkReplayed(ctx)
					}
					return map[string]any{"id": "ch_1"}, nil
				},
				"REFUND": func(context.Context, *socket.Request) (any, error) { return map[string]any{"refunded": true}, nil },
				"FINISH": func(context.Context, *socket.Request) (any, error) {
					return nil, fail(socket.CodeConflict, "the order changed")
				},
			})
			_, ts := startGateway(t, `
auth:
  api_keys:
    - {name: admin, secret_env: ADMIN_KEY, roles: [admin]}
services:
  shop: {target: "${ADDR_shop}", key_env: SERVICE_KEY}
versions:
  v1:
    resources:
      orders:
        service: shop
        crud: []
        actions:
          - name: buy
            pipeline:
              - {as: charge, action: CHARGE, undo: {action: REFUND, id: "${charge.id}"}}
              - {as: finish, action: FINISH}
`, map[string]*fakeService{"shop": shop})
			r := do(t, ts, "POST", "/v1/orders/7/buy", "", bearer(adminKey)...)
			if r.Status != http.StatusConflict {
				t.Fatalf("got %d, want 409: %s", r.Status, r.Raw)
			}
			if got := shop.count("REFUND"); got != c.undone {
				t.Fatalf("REFUND ran %d times, want %d: %s", got, c.undone, r.Raw)
			}
			_, listed := r.Env.Error.Details["undone"]
			if listed != (c.undone > 0) {
				t.Fatalf("details.undone listed %v: %s", listed, r.Raw)
			}
		})
	}
}
