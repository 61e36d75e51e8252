package stack_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/streamgate/streamgate/services/orders"
	"github.com/streamgate/streamgate/services/payments"
	"github.com/streamgate/streamgate/tools/internal/polyglottest"
	"github.com/streamgate/streamgate/tools/streamgate/internal/stack"
)

// stackSocket is a WebSocket client of the stack's gateway.
type stackSocket struct {
	t *testing.T
	c *websocket.Conn
}

// socketFrame is any frame the gateway sends.
type socketFrame struct {
	Type     string          `json:"type"`
	ID       string          `json:"id"`
	Status   int             `json:"status"`
	OK       bool            `json:"ok"`
	Result   json.RawMessage `json:"result"`
	Error    *struct{ Code, Message string }
	Replayed bool            `json:"replayed"`
	Topic    string          `json:"topic"`
	Seq      uint64          `json:"seq"`
	Data     json.RawMessage `json:"data"`
	raw      string
}

// socket connects to /{version}/socket and authenticates with a first
// frame (as a browser does) unless cred is anonymous.
func (s *testStack) socket(t *testing.T, version, cred string) *stackSocket {
	t.Helper()
	return socketTo(t, s.rest.Base, version, cred)
}

// socketTo is socket to the gateway whose REST URL is base.
func socketTo(t *testing.T, base, version, cred string) *stackSocket {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(base, "http")+"/"+version+"/socket",
		&websocket.DialOptions{Subprotocols: []string{"streamgate.v1"}})
	if err != nil {
		t.Fatal(err)
	}
	c.SetReadLimit(1 << 20)
	t.Cleanup(func() { _ = c.CloseNow() })
	ws := &stackSocket{t: t, c: c}
	if cred != anonymous {
		ws.send(map[string]any{"type": "auth", "token": cred})
		if f := ws.read(); f.raw != `{"type":"auth","ok":true}` {
			t.Fatalf("auth: %s", f.raw)
		}
	}
	return ws
}

func (w *stackSocket) send(frame map[string]any) {
	w.t.Helper()
	b, _ := json.Marshal(frame)
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	if err := w.c.Write(ctx, websocket.MessageText, b); err != nil {
		w.t.Fatal(err)
	}
}

func (w *stackSocket) read() socketFrame {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	_, b, err := w.c.Read(ctx)
	if err != nil {
		w.t.Fatalf("read: %v", err)
	}
	var f socketFrame
	if err := json.Unmarshal(b, &f); err != nil {
		w.t.Fatalf("frame %s: %v", b, err)
	}
	f.raw = string(b)
	return f
}

// answer reads frames until the response with id; events read meanwhile
// go to events.
func (w *stackSocket) answer(id string, events *[]socketFrame) socketFrame {
	w.t.Helper()
	for {
		f := w.read()
		switch {
		case f.Type == "event" && events != nil:
			*events = append(*events, f)
		case f.Type == "response" && f.ID == id:
			return f
		default:
			w.t.Fatalf("waiting for the answer to %s, got %s", id, f.raw)
		}
	}
}

func TestSocketOnTheStack(t *testing.T) {
	s := startStack(t, stack.Options{})
	s.newUser(t, "ws-alice")
	s.newUser(t, "ws-bob")
	it := s.newItem(t, 900, 5)
	o := s.newOrder(t, "ws-alice", it.ID, 1, "")

	t.Run("subscribe refused for someone else's order as REST", func(t *testing.T) {
		bob := s.socket(t, "v1", as(t, "ws-bob"))
		bob.send(map[string]any{"type": "subscribe", "id": "1", "topic": "orders/" + o.ID})
		f := bob.answer("1", nil)
		r := s.call(t, as(t, "ws-bob"), "GET", "/v1/orders/"+o.ID, nil)
		if f.Status != http.StatusNotFound || r.Status != f.Status || r.Error == nil || f.Error == nil || string(r.Error.Code) != f.Error.Code || r.Error.Message != f.Error.Message {
			t.Fatalf("socket %s, REST %d %+v", f.raw, r.Status, r.Error)
		}
		anon := s.socket(t, "v1", anonymous)
		anon.send(map[string]any{"type": "subscribe", "id": "2", "topic": "orders/" + o.ID})
		if f := anon.answer("2", nil); f.Status != http.StatusUnauthorized {
			t.Fatalf("anonymous: %s", f.raw)
		}
	})

	t.Run("pay over the socket, watch the order in seq order, replay once", func(t *testing.T) {
		alice := s.socket(t, "v3", as(t, "ws-alice"))
		alice.send(map[string]any{"type": "subscribe", "id": "o", "topic": "orders/" + o.ID})
		if f := alice.answer("o", nil); f.Status != http.StatusOK {
			t.Fatalf("subscribe: %s", f.raw)
		}
		alice.send(map[string]any{"type": "subscribe", "id": "i", "topic": "items/" + it.ID})
		if f := alice.answer("i", nil); f.Status != http.StatusOK {
			t.Fatalf("subscribe to the item: %s", f.raw)
		}
		pay := map[string]any{"type": "request", "method": "POST", "path": "/orders/" + o.ID + "/pay",
			"body": map[string]any{"gateway": "A", "card": cardOK}, "idempotency_key": "ws-pay-" + o.ID}
		var events []socketFrame
		pay["id"] = "p1"
		alice.send(pay)
		first := alice.answer("p1", &events)
		if first.Status != http.StatusOK || first.Replayed {
			t.Fatalf("pay: %s", first.raw)
		}
		pay["id"] = "p2"
		alice.send(pay)
		again := alice.answer("p2", &events)
		if again.Status != http.StatusOK || !again.Replayed || string(again.Result) != string(first.Result) {
			t.Fatalf("retry: %s; first %s", again.raw, first.raw)
		}
		if n := s.payments(t, o.ID); n[payments.StatusSucceeded] != 1 || len(n) != 1 {
			t.Fatalf("payments: %v, want exactly 1 succeeded", n)
		}
		s.checkCharged(t, o.ID)
		// The order's events, in seq order, end paid; the item's stock
		// went down by the reservation.
		paid, stocked := false, false
		lastSeq := map[string]uint64{}
		for deadline := time.Now().Add(requestTimeout); !paid || !stocked; {
			if time.Now().After(deadline) {
				t.Fatalf("events so far %v: no paid order or stock change", events)
			}
			var ev socketFrame
			if len(events) > 0 {
				ev, events = events[0], events[1:]
			} else {
				ev = alice.read()
			}
			if ev.Type != "event" {
				t.Fatalf("unexpected frame %s", ev.raw)
			}
			if last, ok := lastSeq[ev.Topic]; ok && ev.Seq != last+1 {
				t.Fatalf("%s: seq %d after %d", ev.Topic, ev.Seq, last)
			}
			lastSeq[ev.Topic] = ev.Seq
			switch ev.Topic {
			case "orders/" + o.ID:
				var got orders.Order
				if err := json.Unmarshal(ev.Data, &got); err != nil || got.ID != o.ID {
					t.Fatalf("order event %s: %v", ev.raw, err)
				}
				paid = paid || got.Status == orders.StatusPaid
			case "items/" + it.ID:
				var got struct {
					Stock int64 `json:"stock"`
				}
				if err := json.Unmarshal(ev.Data, &got); err != nil {
					t.Fatalf("item event %s: %v", ev.raw, err)
				}
				stocked = stocked || got.Stock == it.Stock-1
			default:
				t.Fatalf("event of a topic not subscribed to: %s", ev.raw)
			}
		}
		alice.send(map[string]any{"type": "request", "id": "g", "action": "GET_ORDER", "resource_id": o.ID})
		if f := alice.answer("g", nil); f.Status != http.StatusOK || !strings.Contains(string(f.Result), fmt.Sprintf(`"status":%q`, orders.StatusPaid)) {
			t.Fatalf("GET_ORDER after paying: %s", f.raw)
		}
	})
}

// A socket request frame is a server span of its own ("socket request",
// its route and status), with the gateway's call to the service under it.
func TestSocketFrameTraced(t *testing.T) {
	polyglottest.GoOnly(t, "the services' spans are recorded in this process; the Node and Python services do not trace")
	spans := traces()
	s := startStack(t, stack.Options{})
	it := s.newItem(t, 300, 1)
	ws := s.socket(t, "v1", anonymous)
	ws.send(map[string]any{"type": "request", "id": "t", "method": "GET", "path": "/items/" + it.ID})
	if f := ws.answer("t", nil); f.Status != http.StatusOK {
		t.Fatalf("GET: %s", f.raw)
	}
	tree := spans.waitTrace(t, func(sp tracetest.SpanStub) bool {
		return sp.Name == "socket request" && attr(sp, "http.route") == "/v1/items/{id}"
	})
	edge := tree.one(t, trace.SpanKindServer, "socket request", "")
	if got := attr(edge, "http.response.status_code"); got != "200" {
		t.Errorf("status %q, want 200", got)
	}
	tree.call(t, edge, "GET_ITEM", "inventory")
}
