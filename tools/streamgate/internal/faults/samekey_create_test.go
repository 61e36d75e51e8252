package faults_test

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/streamgate/streamgate/services/orders"
	"github.com/streamgate/streamgate/services/socket"
	"github.com/streamgate/streamgate/tools/internal/resttest"
)

// TestSameKeyCreatesAfterAKill: POST /v1/orders, each with its own
// Idempotency-Key, while the orders instance is killed (its connections
// reset, new ones refused) and started again; every 503 is retried with
// its key, as docs/idempotency.md advises. Orders whose answer was lost were
// created all the same, so the retry reaches orders again: it must answer
// the first order, never create a second. Exactly one order per key, and
// it is the one the 201 named. Defect (issue 16): 402 orders for 400
// requests; here, before the fix, 306 to 308 orders for 300.
func TestSameKeyCreatesAfterAKill(t *testing.T) {
	const creates, workers = 300, 8
	// From the kill's moment, orders' answers are held (orders made, their
	// answers not yet sent) until its connections are reset.
	hold := &heldAnswers{release: make(chan struct{}), first: make(chan struct{})}
	c := startCluster(t, options{serverOpts: map[string][]socket.ServerOption{
		"orders": {socket.WithGRPCServerOptions(grpc.ChainStreamInterceptor(hold.intercept))},
	}})
	item := c.newItem(t, "same-key", 100, 1)

	killed := make(chan struct{})
	dead := c.services["orders"].instances[0].proxy
	var wg sync.WaitGroup
	wg.Go(func() {
		<-killed
		hold.on.Store(true)
		select {
		case <-hold.first: // an order was made and its answer is held
		case <-time.After(waitLong):
			t.Error("no answer of orders was held")
		}
		dead.Refuse()
		dead.Reset()
		hold.on.Store(false)
		close(hold.release)
		ctx, cancel := context.WithTimeout(context.Background(), waitLong)
		defer cancel()
		if err := dead.WaitRefused(ctx, 1); err != nil {
			t.Error(err)
		}
		dead.Pass() // started again
	})

	// Request i orders i+1 of the item, so its order can be told apart.
	ids := make([]string, creates)
	var first503, retries atomic.Int64
	var reasons sync.Map // reason of a first 503 → *atomic.Int64
	var kill sync.Once
	load(workers, creates, time.Minute, func(i int) {
		if i == creates/4 {
			kill.Do(func() { close(killed) })
		}
		tok, key := as(t, fmt.Sprintf("samekey-%d", i%4)), newKey()
		body := map[string]any{"lines": []orders.Line{{ItemID: item.ID, Quantity: int64(i + 1)}}}
		deadline := time.Now().Add(waitLong)
		for attempt := 0; ; attempt++ {
			r, err := c.do(tok, "POST", "/v1/orders", body, "Idempotency-Key", key)
			switch {
			case err != nil:
				t.Errorf("create %d: %v", i, err)
				return
			case r.Status == http.StatusCreated:
				ids[i] = resttest.Into[orders.Order](t, r).ID
				return
			case r.Status != http.StatusServiceUnavailable:
				t.Errorf("create %d: %d %s", i, r.Status, r.Raw)
				return
			case time.Now().After(deadline):
				t.Errorf("create %d: still 503 after %d attempts", i, attempt+1)
				return
			}
			if attempt == 0 {
				first503.Add(1)
				n, _ := reasons.LoadOrStore(r.Reason(), new(atomic.Int64))
				n.(*atomic.Int64).Add(1)
			}
			retries.Add(1)
			<-time.After(20 * time.Millisecond) // a client's pause between retries
		}
	})
	kill.Do(func() { close(killed) })
	wg.Wait()

	stored := map[int64][]string{} // quantity → the ids of its orders
	token := ""
	for {
		path := "/v1/orders?page_size=1000"
		if token != "" {
			path += "&page_token=" + token
		}
		page := resttest.Into[orders.Page[orders.Order]](t, c.call(t, adminKey, "GET", path, nil, http.StatusOK))
		for _, o := range page.Items {
			stored[o.Lines[0].Quantity] = append(stored[o.Lines[0].Quantity], o.ID)
		}
		if token = page.NextPageToken; token == "" {
			break
		}
	}
	total := 0
	for _, got := range stored {
		total += len(got)
	}
	why := map[string]int64{}
	reasons.Range(func(k, v any) bool { why[k.(string)] = v.(*atomic.Int64).Load(); return true })
	t.Logf("%d creates, %d answered 503 first (by reason %v), %d retries; %d orders stored", creates, first503.Load(), why, retries.Load(), total)
	if first503.Load() == 0 {
		t.Errorf("no create saw the kill")
	}
	for i, id := range ids {
		got := stored[int64(i+1)]
		if id != "" && (len(got) != 1 || got[0] != id) {
			t.Errorf("create %d answered 201 with %s; stored: %v (want exactly it)", i, id, got)
		}
	}
	c.settled(t)
}

// heldAnswers holds a server's answers while on: the first held answer
// closes first, and every held one waits for release or its stream's end.
type heldAnswers struct {
	on        atomic.Bool
	first     chan struct{} // closed when the first answer is held
	firstOnce sync.Once
	release   chan struct{}
}

func (h *heldAnswers) intercept(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	return handler(srv, &heldStream{ServerStream: ss, h: h})
}

// heldStream is a server stream whose sends heldAnswers may hold.
type heldStream struct {
	grpc.ServerStream
	h *heldAnswers
}

func (s *heldStream) SendMsg(m any) error {
	if s.h.on.Load() {
		s.h.firstOnce.Do(func() { close(s.h.first) })
		select {
		case <-s.h.release:
		case <-s.Context().Done():
		}
	}
	return s.ServerStream.SendMsg(m)
}
