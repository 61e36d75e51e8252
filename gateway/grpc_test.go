package gateway_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/streamgate/streamgate/gateway"
	gatewayv1 "github.com/streamgate/streamgate/gen/streamgate/gateway/v1"
)

// grpcClient serves the gateway's GatewayService on loopback.
func grpcClient(t *testing.T, g *gateway.Gateway) gatewayv1.GatewayServiceClient {
	t.Helper()
	s := grpc.NewServer()
	g.RegisterGRPC(s)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.Serve(lis) }()
	t.Cleanup(s.Stop)
	cc, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	return gatewayv1.NewGatewayServiceClient(cc)
}

func TestGRPCInvokeMatchesREST(t *testing.T) {
	t.Parallel()
	sys, svcs := newSystem(t)
	g, ts := startGateway(t, testYAML, svcs)
	c := grpcClient(t, g)
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+aliceKey)

	body, _ := structpb.NewValue(map[string]any{"card": "4242"})
	r, err := c.Invoke(ctx, &gatewayv1.InvokeRequest{Version: "v2", Resource: "orders", Id: "7", Action: "pay", Payload: &gatewayv1.InvokeRequest_Body{Body: body}})
	if err != nil {
		t.Fatal(err)
	}
	if !r.GetOk() || r.GetHttpStatus() != 200 || r.GetResult().GetStructValue().AsMap()["id"] != "p-1" {
		t.Fatalf("Invoke pay: %v", r)
	}
	if sys.paid.Load() != 1 {
		t.Fatalf("paid %d", sys.paid.Load())
	}
	// Raw bodies come back raw, and errors match the REST edge.
	r, err = c.Invoke(ctx, &gatewayv1.InvokeRequest{Version: "v1", Resource: "users", Id: "404", Payload: &gatewayv1.InvokeRequest_BodyRaw{}})
	if err != nil {
		t.Fatal(err)
	}
	rest := do(t, ts, "GET", "/v1/users/404", "", bearer(aliceKey)...)
	if r.GetOk() || r.GetError().GetCode() != string(rest.Env.Error.Code) || int(r.GetHttpStatus()) != rest.Status {
		t.Fatalf("gRPC %v vs REST %s", r, rest.Raw)
	}
	r, err = c.Invoke(ctx, &gatewayv1.InvokeRequest{Version: "v1", Resource: "users", Id: "1", Method: "PUT", Payload: &gatewayv1.InvokeRequest_BodyRaw{BodyRaw: []byte(`{"name":"x"}`)}})
	if err != nil || !r.GetOk() || !json.Valid(r.GetResultRaw()) {
		t.Fatalf("raw PUT: %v %v", r, err)
	}
	// Without credentials: the same 401 as REST.
	r, err = c.Invoke(context.Background(), &gatewayv1.InvokeRequest{Version: "v1", Resource: "users", Id: "1"})
	if err != nil || r.GetHttpStatus() != 401 {
		t.Fatalf("anonymous Invoke: %v %v", r, err)
	}

	if _, err := c.ListRoutes(ctx, &gatewayv1.ListRoutesRequest{Version: "v2"}); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("ListRoutes by a non-admin: %v", err)
	}
	admin := metadata.AppendToOutgoingContext(context.Background(), "x-api-key", adminKey)
	routes, err := c.ListRoutes(admin, &gatewayv1.ListRoutesRequest{Version: "v2"})
	if err != nil {
		t.Fatal(err)
	}
	var pay *gatewayv1.Route
	for _, rt := range routes.GetRoutes() {
		if rt.GetPath() == "/v2/orders/{id}/pay" {
			pay = rt
		}
	}
	if pay == nil || strings.Join(pay.GetPipeline(), ",") != "orders.GET_ORDER,users.CHECK_PURCHASABLE,payments.CHECK_CARD,payments.PAY" {
		t.Fatalf("pay route %v", pay)
	}
	if _, err := c.Reload(ctx, &gatewayv1.ReloadRequest{}); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("Reload by a non-admin: %v", err)
	}
	if _, err := c.Reload(admin, &gatewayv1.ReloadRequest{}); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("Reload of a config not from a file: %v", err)
	}
}

func TestRESTBindingOfGatewayService(t *testing.T) {
	t.Parallel()
	_, svcs := newSystem(t)
	_, ts := startGateway(t, testYAML, svcs)
	r := do(t, ts, "POST", "/gateway/v1/invoke", `{"version":"v1","resource":"users","id":"1"}`, bearer(aliceKey)...)
	if r.Status != 200 || !r.Env.OK || !strings.Contains(string(r.Env.Result), "Oska") {
		t.Fatalf("%d %s", r.Status, r.Raw)
	}
	r = do(t, ts, "POST", "/gateway/v1/invoke", `{"version":"v1","resource":"users","id":"404"}`, bearer(aliceKey)...)
	if r.Status != 404 || r.Env.Error.Code != "NOT_FOUND" {
		t.Fatalf("%d %s", r.Status, r.Raw)
	}
	r = do(t, ts, "GET", "/gateway/v1/versions/v1/routes", "", bearer(aliceKey)...)
	if r.Status != 403 || r.Env.Error.Code != "PERMISSION_DENIED" {
		t.Fatalf("routes for a non-admin: %d %s", r.Status, r.Raw)
	}
	r = do(t, ts, "GET", "/gateway/v1/versions/v1/routes", "", bearer(adminKey)...)
	if r.Status != 200 || !strings.Contains(r.Raw, "/v1/orders/{id}/pay") {
		t.Fatalf("%d %s", r.Status, r.Raw)
	}
	// GatewayService's own messages reach REST callers as they are.
	r = do(t, ts, "GET", "/gateway/v1/versions/v9/routes", "", bearer(adminKey)...)
	if r.Status != 404 || !strings.Contains(r.Env.Error.Message, "unknown API version") {
		t.Fatalf("routes of an unknown version: %d %s", r.Status, r.Raw)
	}
}

func TestOpenAPIDocuments(t *testing.T) {
	t.Parallel()
	_, svcs := newSystem(t)
	_, ts := startGateway(t, testYAML, svcs)
	if r := do(t, ts, "GET", "/v2/openapi.json", ""); r.Status != 401 {
		t.Fatalf("anonymous OpenAPI read: %d", r.Status)
	}
	req, _ := http.NewRequest("GET", ts.URL+"/v2/openapi.json", nil)
	req.Header.Set("X-API-Key", aliceKey)
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc struct {
		OpenAPI string                               `json:"openapi"`
		Paths   map[string]map[string]map[string]any `json:"paths"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	get := doc.Paths["/v2/users/{id}"]["get"]
	if doc.OpenAPI != "3.0.3" || get == nil || get["description"] != "test action GET_USER" || doc.Paths["/v2/orders/{id}/pay"]["post"] == nil {
		t.Fatalf("document: %+v", doc)
	}
	if _, ok := doc.Paths["/v2/users/whoami"]["get"]["security"]; !ok {
		t.Fatal("anonymous route does not clear security")
	}
	r2, err := ts.Client().Get(ts.URL + "/gateway/v1/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Body.Close()
	var swagger map[string]any
	if err := json.NewDecoder(r2.Body).Decode(&swagger); err != nil || swagger["openapi"] != "3.0.3" || swagger["info"].(map[string]any)["version"] != "v1" {
		t.Fatalf("gRPC API document: %v %v %v", swagger["openapi"], swagger["info"], err)
	}
	if r := do(t, ts, "GET", "/v9/openapi.json", "", "X-API-Key", aliceKey); r.Status != 404 {
		t.Fatalf("unknown version document: %d", r.Status)
	}
}
