package faults_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/coder/websocket"
)

// TestInvalidInputStorm: one anonymous client sends text that is not
// UTF-8 through every edge (REST path, body, trace and request-id
// headers, a WebSocket request frame) as fast as it is answered, while
// other clients read items, create orders and buy on v3. The bad requests
// get 400 (or, for hint headers, their normal answer) and not one
// well-formed request fails (was: every read of inventory 503
// no_ready_instance, every v3 purchase failed).
func TestInvalidInputStorm(t *testing.T) {
	c := startCluster(t, options{})
	item := c.newItem(t, "storm", 300, 10000)
	const buyers = 12
	orderIDs := make([]string, buyers)
	for i := range buyers {
		user := fmt.Sprintf("storm-%d", i)
		c.newUser(t, user)
		orderIDs[i] = c.newOrder(t, user, item.ID).ID
	}

	ws, _, err := websocket.Dial(context.Background(), "ws"+strings.TrimPrefix(c.rest.Base, "http")+"/v1/socket", &websocket.DialOptions{Subprotocols: []string{"streamgate.v1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()

	bad := []struct {
		name string
		send func(i int) (int, string, error)
		want int
	}{
		{"path %ff", func(int) (int, string, error) { return c.status("", "GET", "/v1/items/%ff", nil) }, 400},
		{"path %c3%28", func(int) (int, string, error) { return c.status("", "GET", "/v3/items/%c3%28", nil) }, 400},
		{"body", func(int) (int, string, error) {
			return c.status(as(t, "storm-0"), "POST", "/v1/orders", json.RawMessage("{\"lines\":[{\"item_id\":\"\xff\",\"quantity\":1}]}"))
		}, 400},
		{"traceparent", func(int) (int, string, error) {
			return c.status("", "GET", "/v1/items/"+item.ID, nil, "Traceparent", "00-\xff0af7651916cd43dd8448eb211c80319-b7ad6b7169203331-01")
		}, 200},
		{"X-Request-Id", func(int) (int, string, error) {
			return c.status("", "GET", "/v1/items/"+item.ID, nil, "X-Request-Id", "id-\xff")
		}, 200},
		{"WebSocket frame", func(i int) (int, string, error) {
			ctx, cancel := context.WithTimeout(context.Background(), waitLong)
			defer cancel()
			if err := ws.Write(ctx, websocket.MessageText, fmt.Appendf(nil, `{"type":"request","id":%d,"method":"GET","path":"/items/%%ff"}`, i)); err != nil {
				return 0, "", err
			}
			_, b, err := ws.Read(ctx)
			var f struct {
				Status int `json:"status"`
			}
			_ = json.Unmarshal(b, &f)
			return f.Status, string(b), err
		}, 400},
	}

	var (
		stormDone = make(chan struct{})
		stopStorm = make(chan struct{})
		badSent   atomic.Int64
		badWrong  atomic.Int64
	)
	go func() {
		defer close(stormDone)
		for i := 0; ; i++ {
			select {
			case <-stopStorm:
				return
			default:
			}
			b := bad[i%len(bad)]
			status, raw, err := b.send(i)
			badSent.Add(1)
			if err != nil || status != b.want {
				if badWrong.Add(1) <= 3 {
					t.Errorf("bad request %s: %d %s %v; want %d", b.name, status, raw, err, b.want)
				}
			}
		}
	}()

	var reads, creates, buys tally
	var wg sync.WaitGroup
	wg.Go(func() {
		load(4, 400, waitLong, func(int) { reads.add(c.do("", "GET", "/v1/items/"+item.ID, nil)) })
	})
	wg.Go(func() {
		load(2, 60, waitLong, func(i int) {
			creates.add(c.do(as(t, fmt.Sprintf("storm-%d", i%buyers)), "POST", "/v1/orders", map[string]any{"lines": []map[string]any{{"item_id": item.ID, "quantity": 1}}}))
		})
	})
	wg.Go(func() {
		load(4, buyers, waitLong, func(i int) {
			buys.add(c.do(as(t, fmt.Sprintf("storm-%d", i)), "POST", "/v3/orders/"+orderIDs[i]+"/pay", map[string]any{"gateway": "B", "card": cardOK}, "Idempotency-Key", newKey()))
		})
	})
	wg.Wait()
	close(stopStorm)
	<-stormDone
	reads.only(t, "reads beside the storm", http.StatusOK)
	creates.only(t, "creates beside the storm", http.StatusCreated)
	buys.only(t, "v3 purchases beside the storm", http.StatusOK)
	t.Logf("%d bad requests (%d answered otherwise than expected) beside reads: %v; creates: %v; v3 purchases: %v", badSent.Load(), badWrong.Load(), &reads, &creates, &buys)
	if badSent.Load() < int64(len(bad)) {
		t.Errorf("only %d bad requests went out: the storm proves nothing", badSent.Load())
	}
	c.settled(t)
}

// status is do returning the status and the raw answer.
func (c *cluster) status(cred, method, path string, body any, header ...string) (int, string, error) {
	r, err := c.do(cred, method, path, body, header...)
	return r.Status, r.Raw, err
}
