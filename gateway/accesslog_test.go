package gateway_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/streamgate/streamgate/gateway"
	gatewayv1 "github.com/streamgate/streamgate/gen/streamgate/gateway/v1"
)

// accessLines returns the access log's lines, decoded.
func accessLines(t *testing.T, logs *logCapture) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if m["msg"] == "request" {
			out = append(out, m)
		}
	}
	return out
}

// Every REST request and every GatewayService call leaves one access
// line saying who asked for what, what it ran and how it ended; no key,
// token or secret appears anywhere in the logs, at any level.
func TestAccessLog(t *testing.T) {
	_, svcs := newSystem(t)
	logs := newLogCapture()
	gw := runGateway(t, testYAML, svcs, gateway.RunOptions{Logger: logs.Logger()})
	base := "http://" + gw.addrs.HTTP
	jwt := token(t, "bob", []string{"user"}, time.Hour)
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"

	send := func(method, path, body string, headers ...string) int {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		for i := 0; i+1 < len(headers); i += 2 {
			req.Header.Set(headers[i], headers[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	send("GET", "/v1/users/1", "", "X-API-Key", aliceKey, "X-Request-Id", "req-get", "traceparent", "00-"+traceID+"-00f067aa0ba902b7-01")
	send("GET", "/v1/users/1", "", "Authorization", "Bearer "+aliceKey, "X-Request-Id", "req-get-again")
	send("POST", "/v1/orders/7/pay", `{"card":"4242"}`, "Authorization", "Bearer "+jwt, "X-Request-Id", "req-pay", "Idempotency-Key", "pay-7")
	send("GET", "/v1/payments/1", "", "Authorization", "Bearer "+jwt, "X-Request-Id", "req-denied")
	send("GET", "/v1/nothing/here", "", "X-Request-Id", "req-404")

	cc, err := grpc.NewClient(gw.addrs.GRPC, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+adminKey, "x-request-id", "req-grpc")
	body, _ := structpb.NewValue(map[string]any{"card": "4242"})
	if _, err := gatewayv1.NewGatewayServiceClient(cc).Invoke(ctx, &gatewayv1.InvokeRequest{Version: "v2", Resource: "orders", Id: "8", Action: "pay", Payload: &gatewayv1.InvokeRequest_Body{Body: body}}); err != nil {
		t.Fatal(err)
	}
	gw.stop(t)

	byID := map[string]map[string]any{}
	for _, l := range accessLines(t, logs) {
		id, _ := l["request_id"].(string)
		if byID[id] != nil {
			t.Errorf("two access lines for %s", id)
		}
		byID[id] = l
		for _, k := range []string{"trace_id", "version", "route", "actions", "principal", "status", "duration", "cache"} {
			if _, ok := l[k]; !ok {
				t.Errorf("%s: no %s in %v", id, k, l)
			}
		}
	}
	want := map[string]map[string]any{
		"req-get":       {"protocol": "http", "trace_id": traceID, "version": "v1", "route": "GET /v1/users/{id}", "actions": "users.GET_USER", "principal": "alice", "status": 200.0, "cache": "miss"},
		"req-get-again": {"trace_id": "", "principal": "alice", "status": 200.0, "cache": "miss"},
		"req-pay":       {"route": "POST /v1/orders/{id}/pay", "actions": "orders.GET_ORDER,payments.PAY", "principal": "bob", "status": 200.0, "cache": ""},
		"req-denied":    {"route": "GET /v1/payments/{id}", "principal": "bob", "status": 403.0},
		"req-404":       {"path": "/v1/nothing/here", "route": "", "status": 404.0},
		"req-grpc": {"protocol": "grpc", "method": "/streamgate.gateway.v1.GatewayService/Invoke", "version": "v2", "route": "POST /v2/orders/{id}/pay",
			"actions": "orders.GET_ORDER,users.CHECK_PURCHASABLE,payments.CHECK_CARD,payments.PAY", "principal": "admin", "status": 200.0, "grpc_code": "OK"},
	}
	for id, fields := range want {
		l := byID[id]
		if l == nil {
			t.Errorf("no access line for %s in %s", id, logs.String())
			continue
		}
		for k, v := range fields {
			if l[k] != v {
				t.Errorf("%s: %s = %#v, want %#v", id, k, l[k], v)
			}
		}
	}
	for name, secret := range map[string]string{"alice's key": aliceKey, "the admin key": adminKey, "the JWT": jwt, "the JWT secret": jwtSecret, "the service key": serviceKey} {
		if strings.Contains(logs.String(), secret) {
			t.Errorf("the logs contain %s", name)
		}
	}
	if !strings.Contains(logs.String(), `"msg":"gateway serving"`) {
		t.Errorf("startup not logged: %s", logs.String())
	}
}
