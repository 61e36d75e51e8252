package hub

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/streamgate/streamgate/services/socket"
	"github.com/streamgate/streamgate/services/socket/caller"
)

// crowd is ws and enough more watchers (that take what they get) for the
// hub to hand a conflated topic's events out on drain (inlineWatchers).
func crowd(ws ...*watcher) []*watcher {
	for range inlineWatchers {
		ws = append(ws, &watcher{deliver: func(Event) {}})
	}
	return ws
}

// newTestUpstream is an upstream of orders/o1 with the given watchers,
// fed by calling its onEvent as the subscription would.
func newTestUpstream(ws ...*watcher) *upstream {
	h := &Hub{}
	up := &upstream{h: h, key: upstreamKey{"orders", "orders/o1"}}
	for _, w := range ws {
		w.up = up
		up.watchers = append(up.watchers, w)
		up.live++
		if w.keepAll {
			up.keepAll++
		}
	}
	return up
}

func stateEvent(n int, vis socket.Visibility) caller.Event {
	return caller.Event{Topic: "orders/o1", Data: json.RawMessage(fmt.Sprintf(`{"n":%d}`, n)), Visibility: vis}
}

// While a conflated topic's delivery is held up (a watcher's deliver is
// slow), the events that come meanwhile replace each other: the
// subscription never waits, and the watcher gets the latest with the
// count of those it skipped; nothing is lost from the count.
func TestHubConflatesWhileDeliveryIsBusy(t *testing.T) {
	const n = 50
	entered, release := make(chan struct{}), make(chan struct{})
	got := make(chan Event, n)
	first := true
	w := &watcher{deliver: func(ev Event) {
		if first {
			first = false
			close(entered)
			<-release // the drain goroutine is busy with event 1
		}
		got <- ev
	}}
	up := newTestUpstream(crowd(w)...)
	public := socket.Visibility{Public: true}
	up.onEvent(stateEvent(1, public))
	<-entered
	for i := 2; i <= n; i++ {
		up.onEvent(stateEvent(i, public)) // never waits for the watcher
	}
	close(release)
	delivered, skipped := 0, 0
	var last Event
	for last.Seq != n {
		last = <-got
		delivered++
		skipped += last.Skipped
	}
	if delivered+skipped != n || string(last.Data) != fmt.Sprintf(`{"n":%d}`, n) {
		t.Fatalf("delivered %d + skipped %d, want %d; last %s", delivered, skipped, n, last.Data)
	}
	if delivered != 2 || last.Skipped != n-2 {
		t.Fatalf("delivered %d (last skipped %d), want event 1 then event %d skipping %d", delivered, last.Skipped, n, n-2)
	}
}

// A topic with a watcher that takes every event is never conflated, and
// a gap marker or an event of another visibility never replaces or is
// replaced: order and counts stay.
func TestHubKeepsWhatMustNotBeConflated(t *testing.T) {
	t.Run("a watcher takes every event", func(t *testing.T) {
		var seqs []uint64
		keep := &watcher{keepAll: true, deliver: func(ev Event) { seqs = append(seqs, ev.Seq) }}
		up := newTestUpstream(crowd(keep)...)
		for i := 1; i <= 10; i++ {
			up.onEvent(stateEvent(i, socket.Visibility{Public: true}))
		}
		if len(seqs) != 10 || seqs[9] != 10 {
			t.Fatalf("seqs %v, want 1..10", seqs)
		}
	})
	t.Run("gaps and visibilities", func(t *testing.T) {
		entered, release := make(chan struct{}), make(chan struct{})
		got := make(chan Event, 16)
		first := true
		admin := socket.Principal{Subject: "root", Roles: []string{"admin"}}
		w := &watcher{p: admin, deliver: func(ev Event) {
			if first {
				first = false
				close(entered)
				<-release
			}
			got <- ev
		}}
		up := newTestUpstream(crowd(w)...)
		public, admins := socket.Visibility{Public: true}, socket.Visibility{Roles: []string{"admin"}}
		up.onEvent(stateEvent(1, public)) // seq 1: being delivered
		<-entered
		up.onEvent(stateEvent(2, public))                       // seq 2: replaced by 3
		up.onEvent(stateEvent(3, public))                       // seq 3
		up.onEvent(caller.Event{Topic: "orders/o1", Gap: true}) // seq 4: a gap marker
		up.onEvent(stateEvent(5, public))                       // seq 5: not merged into the gap
		up.onEvent(stateEvent(6, admins))                       // seq 6: another visibility, kept
		close(release)
		want := []struct {
			seq     uint64
			gap     bool
			skipped int
		}{{1, false, 0}, {3, false, 1}, {4, true, 0}, {5, false, 0}, {6, false, 0}}
		for _, wnt := range want {
			ev := <-got
			if ev.Seq != wnt.seq || ev.Gap != wnt.gap || ev.Skipped != wnt.skipped {
				t.Fatalf("got seq %d gap %v skipped %d, want %+v", ev.Seq, ev.Gap, ev.Skipped, wnt)
			}
		}
	})
}

// A topic with few watchers is handed out on the subscription's own
// goroutine, in full: events that come back to back are all delivered,
// none replaced (the hub conflates only for many watchers).
func TestHubDeliversEveryEventToFewWatchers(t *testing.T) {
	var seqs []uint64
	up := newTestUpstream(&watcher{deliver: func(ev Event) { seqs = append(seqs, ev.Seq) }})
	for i := 1; i <= 10; i++ {
		up.onEvent(stateEvent(i, socket.Visibility{Public: true}))
	}
	if len(seqs) != 10 || seqs[9] != 10 {
		t.Fatalf("seqs %v, want 1..10 as they came", seqs)
	}
}
