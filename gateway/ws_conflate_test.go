package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/streamgate/streamgate/gateway"
	"github.com/streamgate/streamgate/internal/promtest"
	"github.com/streamgate/streamgate/services/socket"
	"github.com/streamgate/streamgate/services/socket/keyring"
	"github.com/streamgate/streamgate/services/socket/sockettest"
)

// startStateShop serves an orders resource (conflate: false unless
// conflate) whose UPDATE_ORDER publishes the body as the state of
// orders/{id}, with a small send queue, and returns a way to read the
// gateway's metrics.
func startStateShop(t *testing.T, conflate bool) (*socketSystem, func(name string) float64) {
	t.Helper()
	keys, err := keyring.New(keyring.Key{Name: "gateway", Secret: serviceKey, Delegate: true})
	must(t, err)
	srv, err := socket.NewServer(socket.Config{Name: "orders"}, socket.WithKeys(keys), socket.WithDrainTimeout(2*time.Second))
	must(t, err)
	must(t, srv.Handle("GET_ORDER", socket.HandlerFunc(func(context.Context, *socket.Request) (json.RawMessage, error) {
		return json.RawMessage(`{"id":"o1"}`), nil
	}), socket.Read()))
	must(t, srv.Handle("UPDATE_ORDER", socket.HandlerFunc(func(_ context.Context, r *socket.Request) (json.RawMessage, error) {
		return json.RawMessage(`{}`), srv.Publish("orders/"+r.ResourceID, r.Body, socket.Visibility{Roles: []string{"admin"}})
	})))
	addr := sockettest.Serve(t, srv)
	yaml := strings.ReplaceAll(shopYAML, "${ADDR_orders}", addr)
	if !conflate {
		yaml = strings.ReplaceAll(yaml, "crud: [get, update]}", "crud: [get, update], conflate: false}")
	}
	reg := prometheus.NewRegistry()
	g, err := gateway.New(parseConfig(t, yaml, nil), gateway.WithCacheSize(0), gateway.WithMetrics(reg),
		gateway.WithSocketLimits(gateway.SocketLimits{SendQueue: 8, Stall: time.Minute}))
	must(t, err)
	s := &socketSystem{g: g, ts: serveHTTP(t, g), reg: reg}
	return s, func(name string) float64 { return promtest.Gather(t, reg).Value(name) }
}

// publishStates subscribes a client to orders/o1 that then reads nothing
// while n updates of 32 KiB each (enough to fill the kernel's buffers
// between them) are published one after the other, or until stop says
// so; it returns the client and how many were published.
func publishStates(t *testing.T, s *socketSystem, n int, stop func() bool) (*wsClient, int) {
	t.Helper()
	c := dialSocket(t, s.socketURL("v1"), "X-API-Key", adminKey)
	if f := c.request(`{"type":"subscribe","id":"s","topic":"orders/o1"}`); f.Status != 200 {
		t.Fatalf("subscribe: %s", f.raw)
	}
	pad := strings.Repeat("x", 32<<10)
	for i := range n {
		if stop() {
			return c, i
		}
		if r := do(t, s.ts, "PUT", "/v1/orders/o1", fmt.Sprintf(`{"n":%d,"pad":%q}`, i, pad), "X-API-Key", adminKey); r.Status != 200 {
			t.Fatalf("PUT %d: %d %s", i, r.Status, r.Raw)
		}
	}
	return c, n
}

// A subscriber that reads nothing while its topic gets far more states
// than its send queue holds is not cut off: each newer state replaces the
// one still queued, so it holds at most one event of the topic (plus what
// the kernel holds). Once it reads it ends on the latest state, seqs in
// order, and every state published is either delivered or counted in the
// "skipped" of the next one delivered (and in the metric).
func TestSocketSlowSubscriberGetsLatestStateWithSkipped(t *testing.T) {
	t.Parallel()
	s, metric := startStateShop(t, true)
	const n = 400
	c, _ := publishStates(t, s, n, func() bool { return false })
	var delivered, skipped int
	var last uint64
	for {
		var f struct {
			frame
			Skipped *int `json:"skipped"`
		}
		raw := c.read()
		must(t, json.Unmarshal([]byte(raw.raw), &f))
		if f.Type != "event" || f.Topic != "orders/o1" {
			t.Fatalf("got %.200s", raw.raw)
		}
		k := 0
		if f.Skipped != nil {
			if k = *f.Skipped; k < 1 {
				t.Fatalf("skipped %d: %.200s", k, raw.raw)
			}
			if !strings.HasPrefix(raw.raw, `{"type":"event","skipped":`) {
				t.Fatalf("skipped not right after the type: %.200s", raw.raw)
			}
		}
		if delivered > 0 && f.Seq != last+uint64(k)+1 {
			t.Fatalf("seq %d after %d with %d skipped", f.Seq, last, k)
		}
		last = f.Seq
		delivered++
		skipped += k
		var data struct{ N int }
		must(t, json.Unmarshal(f.Data, &data))
		if data.N != delivered+skipped-1 {
			t.Fatalf("state %d delivered as number %d (%d skipped so far)", data.N, delivered+skipped, skipped)
		}
		if data.N == n-1 {
			break // the latest state
		}
	}
	if delivered+skipped != n {
		t.Fatalf("%d delivered + %d skipped, want %d", delivered, skipped, n)
	}
	if skipped == 0 {
		t.Fatal("nothing was conflated: the client's buffers never filled")
	}
	if v := metric("streamgate_gateway_socket_events_conflated_total"); v != float64(skipped) {
		t.Fatalf("conflated metric %v, want %d", v, skipped)
	}
	if v := metric("streamgate_gateway_socket_cutoffs_total"); v != 0 {
		t.Fatalf("%v cut-offs", v)
	}
	// Still open and in order: a request after the states is answered.
	if f := c.request(`{"type":"request","id":"after","method":"GET","path":"/orders/o1"}`); f.Status != 200 {
		t.Fatalf("after the states: %s", f.raw)
	}
	t.Logf("%d states: %d delivered, %d skipped", n, delivered, skipped)
}

// With conflate: false on the resource, the same subscriber gets no
// state skipped: once its send queue fills it is cut off (4408). The
// client reads once the cut-off is counted, so the close frame, queued
// behind what the client has not read, reaches it.
func TestSocketSlowSubscriberCutOffWithoutConflation(t *testing.T) {
	t.Parallel()
	s, metric := startStateShop(t, false)
	c, published := publishStates(t, s, 400, func() bool { return metric("streamgate_gateway_socket_cutoffs_total") >= 1 })
	if published == 400 {
		t.Fatal("400 states published and no cut-off")
	}
	if got := c.closeCode(); got != 4408 {
		t.Fatalf("closed with %d, want 4408", got)
	}
	if v := metric("streamgate_gateway_socket_events_conflated_total"); v != 0 {
		t.Fatalf("conflated metric %v, want 0", v)
	}
	if v := metric("streamgate_gateway_socket_cutoffs_total"); v != 1 {
		t.Fatalf("%v cut-offs, want 1", v)
	}
}
