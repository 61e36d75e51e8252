package faults_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// wsFrame is a frame of the WebSocket endpoint, as far as these tests
// read it.
type wsFrame struct {
	Type   string          `json:"type"`
	Status int             `json:"status"`
	Result json.RawMessage `json:"result"`
	Seq    uint64          `json:"seq"`
	Epoch  string          `json:"epoch"`
	Data   json.RawMessage `json:"data"`
}

// itemEvents follows one item's events over WebSocket connections: each
// event must carry the next price (an update's), a higher seq and the
// same epoch.
type itemEvents struct {
	topic     string
	lastSeq   uint64
	epoch     string
	lastPrice int64
	events    int // received
	repeats   int // the same state again (an update sent twice)
}

// dialEvents opens the gateway's WebSocket endpoint as the admin and
// subscribes to the item's topic, from the last seq seen when resume is
// set; it returns the connection and whether the events were recovered.
func (e *itemEvents) dialEvents(t *testing.T, g *gatewayProc, resume bool) (*websocket.Conn, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(g.rest.Base, "http")+"/v1/socket", &websocket.DialOptions{
		Subprotocols: []string{"streamgate.v1"}, HTTPHeader: http.Header{"Authorization": {"Bearer " + adminKey}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.CloseNow() })
	sub := fmt.Sprintf(`{"type":"subscribe","id":"s","topic":%q}`, e.topic)
	if resume {
		sub = fmt.Sprintf(`{"type":"subscribe","id":"s","topic":%q,"since":%d,"epoch":%q}`, e.topic, e.lastSeq, e.epoch)
	}
	if err := c.Write(ctx, websocket.MessageText, []byte(sub)); err != nil {
		t.Fatal(err)
	}
	_, b, err := c.Read(ctx)
	var f wsFrame
	var a struct {
		Seq       uint64 `json:"seq"`
		Epoch     string `json:"epoch"`
		Recovered bool   `json:"recovered"`
	}
	if err != nil || json.Unmarshal(b, &f) != nil || f.Type != "response" || f.Status != http.StatusOK || json.Unmarshal(f.Result, &a) != nil {
		t.Fatalf("subscribe to %s: %s %v", e.topic, b, err)
	}
	if !resume {
		e.lastSeq, e.epoch = a.Seq, a.Epoch
	} else if a.Epoch != e.epoch || a.Seq != e.lastSeq {
		t.Fatalf("resume from seq %d epoch %s: answered seq %d epoch %s recovered %v", e.lastSeq, e.epoch, a.Seq, a.Epoch, a.Recovered)
	}
	return c, a.Recovered
}

// readUntil reads events from c until one carries price, or c fails
// (returned: a gateway killed under it).
func (e *itemEvents) readUntil(t *testing.T, c *websocket.Conn, price int64) error {
	t.Helper()
	for e.lastPrice < price {
		ctx, cancel := context.WithTimeout(context.Background(), waitLong)
		_, b, err := c.Read(ctx)
		cancel()
		if err != nil {
			return err
		}
		var f wsFrame
		var item struct {
			PriceCents int64 `json:"price_cents"`
		}
		if json.Unmarshal(b, &f) != nil || f.Type != "event" || json.Unmarshal(f.Data, &item) != nil {
			t.Fatalf("after price %d (seq %d): %s; want the next event", e.lastPrice, e.lastSeq, b)
		}
		if f.Seq <= e.lastSeq || f.Epoch != e.epoch || (item.PriceCents != e.lastPrice+1 && item.PriceCents != e.lastPrice) {
			t.Fatalf("after price %d (seq %d, epoch %s): %s; want price %d, a higher seq, the same epoch", e.lastPrice, e.lastSeq, e.epoch, b, e.lastPrice+1)
		}
		if item.PriceCents == e.lastPrice {
			e.repeats++
		}
		e.events++
		e.lastSeq, e.lastPrice = f.Seq, item.PriceCents
	}
	return nil
}

// One of two gateways SIGKILLed while a WebSocket client follows an
// item's events through it and an admin updates the item through the
// other: the client resumes on the other gateway from the last seq it saw
// and gets every update's event, once, in order, none lost.
func TestFleetGatewayKilledEventsResume(t *testing.T) {
	f := startFleet(t, fleetOptions{instances: map[string]int{"inventory": 3}, gateways: 2, events: true})
	c := &cluster{rest: f.gateways[1].rest}
	const base, updates = 1000, 300
	item := c.newItem(t, "fleet-events-item", base, 10)
	e := &itemEvents{topic: "items/" + item.ID, lastPrice: base}
	ws, _ := e.dialEvents(t, f.gateways[0], false)

	updated := make(chan error, 1)
	go func() {
		tick := time.NewTicker(10 * time.Millisecond) // steady updates, 100/s
		defer tick.Stop()
		for n := int64(1); n <= updates; n++ {
			<-tick.C
			r, err := c.do(adminKey, "PATCH", "/v1/items/"+item.ID, map[string]any{"price_cents": base + n})
			if err == nil && r.Status != http.StatusOK {
				err = fmt.Errorf("update %d: %d %s", n, r.Status, r.Raw)
			}
			if err != nil {
				updated <- err
				return
			}
		}
		updated <- nil
	}()
	if err := e.readUntil(t, ws, base+updates/3); err != nil {
		t.Fatal(err)
	}
	killedAt := e.lastPrice
	f.gateways[0].kill(t)
	// The socket to the dead gateway fails, perhaps after a few events
	// already on their way.
	if err := e.readUntil(t, ws, base+updates); err == nil {
		t.Fatal("the events kept coming from a killed gateway")
	}
	seenBefore, since := e.events, e.lastSeq
	resumedAt := time.Now()
	ws, recovered := e.dialEvents(t, f.gateways[1], true)
	if !recovered {
		t.Fatalf("resume from seq %d on the other gateway: not recovered", e.lastSeq)
	}
	if err := e.readUntil(t, ws, base+updates); err != nil {
		t.Fatal(err)
	}
	if err := <-updated; err != nil {
		t.Fatal(err)
	}
	t.Logf("%d updates: %d events through the killed gateway (killed after price %d), %d after resuming on the other from seq %d (all %d in %v), %d repeated states",
		updates, seenBefore, killedAt-base, e.events-seenBefore, since, updates, time.Since(resumedAt).Round(time.Millisecond), e.repeats)
}
