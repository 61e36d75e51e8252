package gateway_test

import (
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

	"github.com/streamgate/streamgate/gateway"
	"github.com/streamgate/streamgate/services/socket"
	"github.com/streamgate/streamgate/services/socket/keyring"
)

// BenchmarkSocketVsREST sends the same GET /v1/users/1 through the same
// gateway into the same service over loopback: as REST requests over
// keep-alive connections (rest-keepalive), and as request frames over ONE
// WebSocket shared by every goroutine (websocket-one-socket), answers
// matched by id. Both with 16×GOMAXPROCS goroutines; coalescing off.
func BenchmarkSocketVsREST(b *testing.B) {
	userAddr := serveSocket(b, "users", []socket.ServerOption{socket.WithoutCoalescing()}, func(srv *socket.Server) error {
		return srv.Handle("GET_USER", socket.HandlerFunc(func(_ context.Context, r *socket.Request) (json.RawMessage, error) {
			return json.Marshal(map[string]any{"id": r.ResourceID, "name": "Oska", "email": "oska@example.com"})
		}), socket.Read())
	})
	g, err := gateway.New(parseConfig(b, benchYAML, map[string]*fakeService{"users": {Addr: userAddr}}),
		gateway.WithoutCoalescing(), gateway.WithSocketLimits(gateway.SocketLimits{InFlight: 1024, SendQueue: 4096}))
	if err != nil {
		b.Fatal(err)
	}
	ts := serveHTTP(b, g)

	b.Run("rest-keepalive", func(b *testing.B) {
		client := ts.Client()
		client.Transport.(*http.Transport).MaxIdleConnsPerHost = 256
		b.ReportAllocs()
		b.SetParallelism(16)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				req, _ := http.NewRequest("GET", ts.URL+"/v1/users/1", nil)
				req.Header.Set("X-API-Key", aliceKey)
				resp, err := client.Do(req)
				if err != nil {
					b.Error(err)
					return
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || !strings.Contains(string(body), "Oska") {
					b.Errorf("%d %s", resp.StatusCode, body)
					return
				}
			}
		})
	})
	b.Run("websocket-one-socket", func(b *testing.B) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(ts.URL, "http")+"/v1/socket",
			&websocket.DialOptions{Subprotocols: []string{"streamgate.v1"}, HTTPHeader: http.Header{"X-Api-Key": {aliceKey}}})
		if err != nil {
			b.Fatal(err)
		}
		defer c.CloseNow()
		var mu sync.Mutex // guards waiting
		waiting := map[string]chan []byte{}
		readDone := make(chan struct{})
		go func() { // routes answers to their senders by id
			defer close(readDone)
			for {
				_, data, err := c.Read(context.Background())
				if err != nil {
					return
				}
				var f struct {
					ID string `json:"id"`
				}
				_ = json.Unmarshal(data, &f)
				mu.Lock()
				ch := waiting[f.ID]
				delete(waiting, f.ID)
				mu.Unlock()
				if ch != nil {
					ch <- data
				}
			}
		}()
		var next atomic.Int64
		b.ReportAllocs()
		b.SetParallelism(16)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			ch := make(chan []byte, 1)
			for pb.Next() {
				id := fmt.Sprint(next.Add(1))
				mu.Lock()
				waiting[id] = ch
				mu.Unlock()
				if err := c.Write(ctx, websocket.MessageText, []byte(`{"type":"request","id":"`+id+`","method":"GET","path":"/users/1"}`)); err != nil {
					b.Error(err)
					return
				}
				if ans := <-ch; !strings.Contains(string(ans), `"status":200`) || !strings.Contains(string(ans), "Oska") {
					b.Errorf("answer %s", ans)
					return
				}
			}
		})
		b.StopTimer()
		_ = c.Close(websocket.StatusNormalClosure, "")
		<-readDone
	})
}

// BenchmarkSocketEventFanout publishes events on one topic in a service
// and measures how fast the gateway fans them out to 1,000 WebSocket
// subscribers over loopback (each subscriber its own socket reading every
// event). At most 64 events are outstanding (published, not yet read by
// every subscriber), so no queue overflows. Reports events/s (published
// events every subscriber got) and deliveries/s (event frames read).
func BenchmarkSocketEventFanout(b *testing.B) {
	const subscribers, window = 1000, 64
	keys, err := keyring.New(keyring.Key{Name: "gateway", Secret: serviceKey, Delegate: true})
	if err != nil {
		b.Fatal(err)
	}
	var srv *socket.Server
	addr := serveSocket(b, "orders", []socket.ServerOption{socket.WithKeys(keys)}, func(s *socket.Server) error {
		srv = s
		return s.Handle("GET_ORDER", socket.HandlerFunc(func(_ context.Context, r *socket.Request) (json.RawMessage, error) {
			return json.Marshal(map[string]string{"id": r.ResourceID})
		}), socket.Read())
	})
	cfg := parseConfig(b, strings.ReplaceAll(eventsYAML, "${ADDR_orders}", addr), nil)
	g, err := gateway.New(cfg, gateway.WithCacheSize(0))
	if err != nil {
		b.Fatal(err)
	}
	ts := serveHTTP(b, g)
	url := "ws" + strings.TrimPrefix(ts.URL, "http") + "/v1/socket"

	var delivered atomic.Int64
	progress := make(chan struct{}, 1) // a delivery happened
	var wg sync.WaitGroup
	conns := make([]*websocket.Conn, subscribers)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	for i := range conns {
		c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{Subprotocols: []string{"streamgate.v1"}, HTTPHeader: http.Header{"X-Api-Key": {adminKey}}})
		if err != nil {
			b.Fatal(err)
		}
		conns[i] = c
		if err := c.Write(ctx, websocket.MessageText, []byte(`{"type":"subscribe","id":"s","topic":"orders/o1"}`)); err != nil {
			b.Fatal(err)
		}
		if _, ans, err := c.Read(ctx); err != nil || !strings.Contains(string(ans), `"status":200`) {
			b.Fatalf("subscribe: %s %v", ans, err)
		}
		wg.Go(func() {
			for {
				if _, _, err := c.Read(context.Background()); err != nil {
					return
				}
				delivered.Add(1)
				select {
				case progress <- struct{}{}:
				default:
				}
			}
		})
	}
	defer func() {
		for _, c := range conns {
			_ = c.CloseNow()
		}
		wg.Wait()
	}()
	data := json.RawMessage(`{"id":"o1","status":"paid","total_cents":1250}`)
	vis := socket.Visibility{Public: true}
	b.ResetTimer()
	start := time.Now()
	wait := func(ok func() bool) {
		for !ok() {
			select {
			case <-progress:
			case <-ctx.Done():
				b.Fatalf("delivered %d of %d", delivered.Load(), int64(b.N)*subscribers)
			}
		}
	}
	for i := range b.N {
		wait(func() bool { return int64(i)*subscribers-delivered.Load() <= window*subscribers })
		if err := srv.Publish("orders/o1", data, vis); err != nil {
			b.Fatal(err)
		}
	}
	wait(func() bool { return delivered.Load() >= int64(b.N)*subscribers })
	elapsed := time.Since(start).Seconds()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed, "events/s")
	b.ReportMetric(float64(b.N)*subscribers/elapsed, "deliveries/s")
}
