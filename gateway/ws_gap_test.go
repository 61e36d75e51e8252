package gateway_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// After a reload that moves a service to another instance, an update made
// during the move either reaches a WebSocket watcher or a gap marker
// follows: the watcher never waits for an event that will not come.
// Each round moves orders to the other instance while an update of the
// watched order runs, then reads until that update's event or a gap
// marker ({"type":"gap"}, or an event whose seq jumped).
func TestSocketReloadThatMovesTheServiceSignalsLostEvents(t *testing.T) {
	t.Parallel()
	const rounds = 30
	pubs := []*publisher{startPublisher(t), startPublisher(t)}
	g, update := startEventsGateway(t, pubs[0])
	ts := serveHTTP(t, g)
	c := dialSocket(t, "ws"+strings.TrimPrefix(ts.URL, "http")+"/v1/socket", "X-API-Key", adminKey)
	if f := c.request(`{"type":"subscribe","id":"s","topic":"orders/1"}`); f.Status != 200 {
		t.Fatalf("subscribe: %s", f.raw)
	}
	var last uint64 // the last seq read: seqs only rise
	gaps, arrived := 0, 0
	for round := 1; round <= rounds; round++ {
		to := pubs[round%2]
		var wg sync.WaitGroup
		wg.Go(func() { update("1", fmt.Sprintf(`{"n":%d}`, round)) })
		must(t, g.Apply(parseConfig(t, strings.ReplaceAll(eventsYAML, "${ADDR_orders}", to.addr), nil)))
		wg.Wait()
		deadline := time.Now().Add(10 * time.Second)
		for done := false; !done; {
			f, err := c.readErr(time.Until(deadline))
			if err != nil {
				t.Fatalf("round %d: update %d's event never came and no gap marker followed (%v); %d arrived, %d gaps before", round, round, err, arrived, gaps)
			}
			if f.Type != "event" && f.Type != "gap" {
				t.Fatalf("round %d: %s", round, f.raw)
			}
			if f.Seq <= last {
				t.Fatalf("round %d: seq %d after %d: %s", round, f.Seq, last, f.raw)
			}
			jumped := f.Seq > last+1
			last = f.Seq
			if f.Type == "gap" || jumped {
				gaps++
				done = true // the client reads the order again
			}
			if f.Type == "event" {
				var d struct{ N int }
				must(t, json.Unmarshal(f.Data, &d))
				if d.N == round {
					arrived++
					done = true
				}
			}
		}
	}
	t.Logf("%d moves with an update during each: %d events arrived in their round, %d gap markers", rounds, arrived, gaps)
}
