package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/streamgate/streamgate/gateway"
	gatewayv1 "github.com/streamgate/streamgate/gen/streamgate/gateway/v1"
)

// Text that is not UTF-8, from one client through any edge, is refused
// (ids, paths, queries, bodies: 400 INVALID_ARGUMENT naming the part) or
// dropped (hints: X-Request-Id, traceparent, tracestate), and never takes
// the gateway's stream to a service away from other clients: reads and
// writes sent meanwhile by well-behaved clients all succeed.
func TestInvalidUTF8FailsOnlyItsRequest(t *testing.T) {
	t.Parallel()
	_, svcs := newSystem(t)
	gw := runGateway(t, testYAML, svcs, gateway.RunOptions{})
	base := "http://" + gw.addrs.HTTP
	alice := "Bearer " + aliceKey

	rest := func(method, path, body string, headers ...string) (int, string) {
		var rd io.Reader = http.NoBody
		if body != "" {
			rd = strings.NewReader(body)
		}
		req, err := http.NewRequest(method, base+path, rd)
		if err != nil {
			return 0, err.Error()
		}
		req.Header.Set("Authorization", alice)
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		for i := 0; i+1 < len(headers); i += 2 {
			req.Header[http.CanonicalHeaderKey(headers[i])] = []string{headers[i+1]}
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	ws := dialSocket(t, "ws://"+gw.addrs.HTTP+"/v1/socket", "Authorization", alice)
	var wsMu sync.Mutex // one request at a time on the test's socket
	wsRequest := func(frameJSON []byte) (int, string) {
		wsMu.Lock()
		defer wsMu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := ws.c.Write(ctx, websocket.MessageText, frameJSON); err != nil {
			return 0, err.Error()
		}
		f := ws.read()
		return f.Status, f.raw
	}
	invoke := gatewayClient(t, gw.addrs.GRPC)
	grpcCall := func(in *gatewayv1.InvokeRequest) (int, string) {
		ctx, cancel := context.WithTimeout(metadata.AppendToOutgoingContext(context.Background(), "authorization", alice), 10*time.Second)
		defer cancel()
		out, err := invoke.Invoke(ctx, in)
		if err != nil {
			return 0, err.Error()
		}
		b, _ := json.Marshal(out.GetError())
		return int(out.GetHttpStatus()), string(b)
	}

	cases := []struct {
		name     string
		send     func() (int, string)
		status   int
		contains string
	}{
		{"REST path id %ff", func() (int, string) { return rest("GET", "/v1/users/%ff", "") }, 400, "UTF-8"},
		{"REST path id %c3%28", func() (int, string) { return rest("GET", "/v1/users/%c3%28", "") }, 400, "UTF-8"},
		{"REST path action", func() (int, string) { return rest("GET", "/v1/users/1/%ff", "") }, 400, "UTF-8"},
		{"REST path resource", func() (int, string) { return rest("GET", "/v1/%ff/1", "") }, 400, "UTF-8"},
		{"REST query value", func() (int, string) { return rest("GET", "/v1/users?status=%ff", "") }, 400, "status"},
		{"REST query name", func() (int, string) { return rest("GET", "/v1/users?%ff=1", "") }, 400, "UTF-8"},
		{"REST body", func() (int, string) { return rest("POST", "/v1/users", "{\"name\":\"\xff\"}") }, 400, "UTF-8"},
		{"REST body, overlong", func() (int, string) { return rest("POST", "/v1/users", "{\"name\":\"\xc3\x28\"}") }, 400, "UTF-8"},
		{"X-Request-Id is replaced", func() (int, string) { return rest("GET", "/v1/users/ok-rid", "", "X-Request-Id", "rid-\xff") }, 200, ""},
		{"traceparent is dropped", func() (int, string) {
			return rest("GET", "/v1/users/ok-tp", "", "Traceparent", "00-\xff0af7651916cd43dd8448eb211c80319-b7ad6b7169203331-01")
		}, 200, ""},
		{"tracestate is dropped", func() (int, string) { return rest("GET", "/v1/users/ok-ts", "", "Tracestate", "k=\xff") }, 200, ""},
		{"WebSocket path", func() (int, string) {
			return wsRequest([]byte(`{"type":"request","id":1,"method":"GET","path":"/users/%ff"}`))
		}, 400, "UTF-8"},
		{"WebSocket query", func() (int, string) {
			return wsRequest([]byte(`{"type":"request","id":2,"method":"GET","path":"/users?status=%c3%28"}`))
		}, 400, "status"},
		{"WebSocket body", func() (int, string) {
			return wsRequest([]byte("{\"type\":\"request\",\"id\":3,\"method\":\"POST\",\"path\":\"/users\",\"body\":{\"name\":\"\xff\"}}"))
		}, 400, "UTF-8"},
		{"gRPC Invoke body", func() (int, string) {
			return grpcCall(&gatewayv1.InvokeRequest{Version: "v1", Resource: "users", Method: "POST", Payload: &gatewayv1.InvokeRequest_BodyRaw{BodyRaw: []byte("{\"name\":\"\xff\"}")}})
		}, 400, "UTF-8"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// Well-behaved traffic beside the bad requests: reads with
			// ids of their own (nothing to coalesce) and writes (never
			// sent twice, so a cut stream shows).
			var (
				stop   = make(chan struct{})
				wg     sync.WaitGroup
				good   atomic.Int64
				failed atomic.Int64
				first  atomic.Value
			)
			for w := range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; ; i++ {
						select {
						case <-stop:
							return
						default:
						}
						method, path, body, want := "GET", fmt.Sprintf("/v1/users/good-%d-%d", w, i), "", 200
						if i%2 == 1 {
							method, path, body, want = "POST", "/v1/users", `{"name":"ok"}`, 201
						}
						status, raw := rest(method, path, body)
						if status != want {
							failed.Add(1)
							first.CompareAndSwap(nil, fmt.Sprintf("%s %s: %d %s", method, path, status, raw))
						} else {
							good.Add(1)
						}
					}
				}()
			}
			for range 20 {
				status, raw := tc.send()
				if status != tc.status || !strings.Contains(raw, tc.contains) {
					t.Errorf("bad request answered %d %s; want %d containing %q", status, raw, tc.status, tc.contains)
					break
				}
				if bytes.ContainsRune([]byte(raw), 0xff) || strings.Contains(raw, "\xff") {
					t.Errorf("the answer carries the raw byte: %q", raw)
				}
			}
			// Keep going until the good traffic has had its turn.
			for good.Load() < 40 && failed.Load() == 0 {
				if status, raw := tc.send(); status != tc.status {
					t.Errorf("bad request answered %d %s", status, raw)
					break
				}
			}
			close(stop)
			wg.Wait()
			if n := failed.Load(); n > 0 {
				t.Errorf("%d of %d well-formed requests failed beside the bad ones; first: %v", n, n+good.Load(), first.Load())
			}
		})
	}
	// The services still answer on the socket too.
	if status, raw := wsRequest([]byte(`{"type":"request","id":9,"method":"GET","path":"/users/after"}`)); status != 200 {
		t.Errorf("a WebSocket request after the storm answered %d %s", status, raw)
	}
}

// gatewayClient dials a gateway's GatewayService; closed at cleanup.
func gatewayClient(t *testing.T, addr string) gatewayv1.GatewayServiceClient {
	t.Helper()
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	return gatewayv1.NewGatewayServiceClient(cc)
}
