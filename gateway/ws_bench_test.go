package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
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
// subscribers over loopback (each subscriber its own socket reading as
// fast as it can). At most 64 events are outstanding (published, not yet
// accounted for by every subscriber), so no queue overflows. An event a
// subscriber got counts one delivery; so does each state a conflated event
// says it skipped (sub-benchmark conflate; with conflate: false every
// event is a frame). Reports events/s, deliveries/s, and per delivery:
// the process's CPU time (gateway, service and the 1,000 clients alike:
// compare runs, not absolute values), allocations, and the share of
// deliveries that were skipped states.
func BenchmarkSocketEventFanout(b *testing.B) {
	for _, conflate := range []bool{true, false} {
		name := "conflate"
		if !conflate {
			name = "conflate-false"
		}
		b.Run(name, func(b *testing.B) { benchmarkEventFanout(b, conflate) })
	}
}

func benchmarkEventFanout(b *testing.B, conflate bool) {
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
	yaml := strings.ReplaceAll(eventsYAML, "${ADDR_orders}", addr)
	if !conflate {
		yaml = strings.ReplaceAll(yaml, "crud: [get, update]}", "crud: [get, update], conflate: false}")
	}
	g, err := gateway.New(parseConfig(b, yaml, nil), gateway.WithCacheSize(0))
	if err != nil {
		b.Fatal(err)
	}
	ts := serveHTTP(b, g)
	url := "ws" + strings.TrimPrefix(ts.URL, "http") + "/v1/socket"

	var delivered, skipped atomic.Int64
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
				_, f, err := c.Read(context.Background())
				if err != nil {
					return
				}
				n := skippedOf(f)
				skipped.Add(n)
				delivered.Add(1 + n)
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
	wait := func(ok func() bool) {
		for !ok() {
			select {
			case <-progress:
			case <-ctx.Done():
				b.Fatalf("delivered %d of %d", delivered.Load(), int64(b.N)*subscribers)
			}
		}
	}
	var mem0, mem1 runtime.MemStats
	runtime.ReadMemStats(&mem0)
	cpu0 := processCPU(b)
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		wait(func() bool { return int64(i)*subscribers-delivered.Load() <= window*subscribers })
		if err := srv.Publish("orders/o1", data, vis); err != nil {
			b.Fatal(err)
		}
	}
	wait(func() bool { return delivered.Load() >= int64(b.N)*subscribers })
	elapsed := time.Since(start).Seconds()
	b.StopTimer()
	cpu := processCPU(b) - cpu0
	runtime.ReadMemStats(&mem1)
	deliveries := float64(b.N) * subscribers
	b.ReportMetric(float64(b.N)/elapsed, "events/s")
	b.ReportMetric(deliveries/elapsed, "deliveries/s")
	b.ReportMetric(float64(cpu.Nanoseconds())/deliveries, "cpu-ns/delivery")
	b.ReportMetric(float64(mem1.Mallocs-mem0.Mallocs)/deliveries, "allocs/delivery")
	b.ReportMetric(float64(skipped.Load())/deliveries, "skipped/delivery")
}

// skippedOf reads a conflated event frame's "skipped" count (0 for any
// other frame).
func skippedOf(f []byte) int64 {
	rest, ok := bytes.CutPrefix(f, []byte(`{"type":"event","skipped":`))
	if !ok {
		return 0
	}
	end := bytes.IndexByte(rest, ',')
	if end < 0 {
		return 0
	}
	n, _ := strconv.ParseInt(string(rest[:end]), 10, 64)
	return n
}

// processCPU is the CPU time (user and system) the process used so far.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
