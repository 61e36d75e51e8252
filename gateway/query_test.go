package gateway_test

import (
	"context"
	"strings"
	"testing"

	"github.com/streamgate/streamgate/services/socket"
)

// A list's query becomes its body, but a client wrote a query: its
// mistakes are named as query parameters, not body fields.
func TestUnknownQueryParameterSaysQuery(t *testing.T) {
	t.Parallel()
	type filter struct {
		Status   string `json:"status"`
		PageSize int    `json:"page_size"`
	}
	users := startService(t, "users", map[string]handlerFunc{
		"LIST_USERS": func(_ context.Context, r *socket.Request) (any, error) {
			var f filter
			if err := socket.DecodeBody(r.Body, &f); err != nil {
				return nil, err
			}
			return []any{}, nil
		},
		"CREATE_USER": func(_ context.Context, r *socket.Request) (any, error) {
			var f filter
			if err := socket.DecodeBody(r.Body, &f); err != nil {
				return nil, err
			}
			return map[string]any{"id": "1"}, nil
		},
	}, "LIST_USERS")
	_, ts := startGateway(t, strings.Replace(healthYAML, "crud: [get]", "crud: [list, create]", 1), map[string]*fakeService{"users": users})

	r := do(t, ts, "GET", "/v1/users?status=active&colour=blue", "")
	if r.Status != 400 || r.Env.Error.Message != `unknown query parameter "colour"` || r.Env.Error.Details["field"] != "colour" {
		t.Fatalf("unknown query parameter: %d %s", r.Status, r.Raw)
	}
	if r := do(t, ts, "GET", "/v1/users?status=active", ""); r.Status != 200 {
		t.Fatalf("known parameters: %d %s", r.Status, r.Raw)
	}
	// A body is still a body.
	r = do(t, ts, "POST", "/v1/users", `{"colour":"blue"}`)
	if r.Status != 400 || !strings.Contains(r.Env.Error.Message, "body") || strings.Contains(r.Env.Error.Message, "query") {
		t.Fatalf("unknown body field: %d %s", r.Status, r.Raw)
	}
}
