package gateway_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/streamgate/streamgate/gateway"
	socketv1 "github.com/streamgate/streamgate/gen/streamgate/socket/v1"
	"github.com/streamgate/streamgate/internal/rusage"
	"github.com/streamgate/streamgate/services/socket"
)

const benchYAML = `
auth:
  api_keys:
    - {name: alice, secret_env: ALICE_KEY}
services:
  users: {target: "${ADDR_users}", key_env: SERVICE_KEY}
versions:
  v1:
    resources:
      users: {service: users, crud: [get]}
`

// BenchmarkGateway sends REST GETs through the gateway into a service over
// loopback (streamgate), and, as the baseline, the same request through a
// plain grpc-gateway mux into the same service's unary Call over loopback
// (grpc-gateway-unary). Both with many goroutines sharing one HTTP client.
func BenchmarkGateway(b *testing.B) {
	// Every request is identical: coalescing would answer many with one
	// run and measure something else, so it is off in the gateway and the
	// service, as the baseline has none.
	userAddr := serveSocket(b, "users", []socket.ServerOption{socket.WithoutCoalescing()}, func(srv *socket.Server) error {
		return srv.Handle("GET_USER", socket.HandlerFunc(func(_ context.Context, r *socket.Request) (json.RawMessage, error) {
			return json.Marshal(map[string]any{"id": r.ResourceID, "name": "Oska", "email": "oska@example.com"})
		}), socket.Read())
	})
	user := &fakeService{Addr: userAddr}
	g, err := gateway.New(parseConfig(b, benchYAML, map[string]*fakeService{"users": user}), gateway.WithoutCoalescing())
	if err != nil {
		b.Fatal(err)
	}
	gw := serveHTTP(b, g)

	// The baseline: grpc-gateway's generated handler for SocketService.Call.
	mux := runtime.NewServeMux(runtime.WithMetadata(func(context.Context, *http.Request) metadata.MD {
		return metadata.Pairs(socket.MetadataAuthorization, "Bearer "+serviceKey)
	}))
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel) // closes the baseline's gRPC connection
	if err := socketv1.RegisterSocketServiceHandlerFromEndpoint(ctx, mux, user.Addr,
		[]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}); err != nil {
		b.Fatal(err)
	}
	base := httptest.NewServer(mux)
	b.Cleanup(base.Close)

	run := func(b *testing.B, ts *httptest.Server, newReq func() *http.Request) {
		client := ts.Client()
		client.Transport.(*http.Transport).MaxIdleConnsPerHost = 256
		check := func() bool {
			resp, err := client.Do(newReq())
			if err != nil {
				b.Error(err)
				return false
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || !strings.Contains(string(body), "Oska") {
				b.Errorf("%d %s", resp.StatusCode, body)
				return false
			}
			return true
		}
		if !check() {
			return
		}
		b.ReportAllocs()
		b.SetParallelism(16)
		cpu := rusage.CPU()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if !check() {
					return
				}
			}
		})
		rusage.Report(b, cpu)
	}
	b.Run("streamgate", func(b *testing.B) {
		run(b, gw, func() *http.Request {
			req, _ := http.NewRequest("GET", gw.URL+"/v1/users/1", nil)
			req.Header.Set("X-API-Key", aliceKey)
			return req
		})
	})
	b.Run("grpc-gateway-unary", func(b *testing.B) {
		run(b, base, func() *http.Request {
			req, _ := http.NewRequest("POST", base.URL+"/socket/v1/call",
				strings.NewReader(`{"request":{"action":"GET_USER","resource_id":"1"}}`))
			req.Header.Set("Content-Type", "application/json")
			return req
		})
	})
}
