// Package hub shares the services' event subscriptions between the
// gateway's own watchers: one upstream subscription per service and
// topic, made by the first watcher and ended when the last leaves,
// numbered with the gateway's own seq per topic, filtered by each
// watcher's principal, and moved to a service's new client when a reload
// changes it (with a gap marker, since events may be lost in between).
//
//	var h hub.Hub
//	stop, seq, err := h.Watch(ctx, "orders", "orders/ord_1", client, current, principal, deliver)
//	defer stop()
package hub

import (
	"context"
	"encoding/json"
	"sync"
	"sync/atomic"

	"github.com/streamgate/streamgate/services/socket"
	"github.com/streamgate/streamgate/services/socket/caller"
)

// Event is an event as the gateway hands it to its own clients (the
// WebSocket endpoint): the topic, the gateway's seq for the topic and the
// service's JSON.
type Event struct {
	Topic string
	// Seq is the gateway's own count for the topic, from 1 for the first
	// event after the topic's upstream subscription was made; it skips a
	// number where events from the service may be missing.
	Seq uint64
	// Epoch is the epoch Seq belongs to when the events come from the
	// event log (Log): it changes when the topic's stream is made again.
	// Empty for the gateway's own seqs, which no other gateway shares.
	Epoch string
	Data  json.RawMessage
	// Skipped is how many events of the topic the hub conflated away just
	// before this one (a watcher that takes the latest state, while the
	// hub was still handing out an earlier event): Seq jumps past them.
	Skipped int
	// Gap marks a gap marker rather than an event: events of the topic
	// may be missing (a broken, drained or overflowing stream to the
	// service, a reload that moved it); it has no Data, and Seq is the
	// number it takes, so the next event follows it without a jump.
	Gap bool
}

// Hub shares one upstream subscription per service and topic between the
// gateway's local watchers. The zero Hub is ready.
type Hub struct {
	mu        sync.Mutex // guards upstreams, seqs, floor and each upstream's client, stop, err and watchers
	upstreams map[upstreamKey]*upstream
	// seqs are the last seqs of ended upstreams, so that one made again
	// continues the count; past maxHubSeqs they are forgotten, and floor
	// (the highest forgotten) is where a topic not in seqs starts.
	seqs  map[upstreamKey]uint64
	floor uint64
}

// maxHubSeqs bounds how many ended upstreams' seqs the hub remembers.
const maxHubSeqs = 1 << 16

type upstreamKey struct{ service, topic string }

// upstream is one subscription on a service client, fanned out to the
// watchers of its topic.
type upstream struct {
	h      *Hub
	key    upstreamKey
	ready  chan struct{}  // closed once the first watcher's subscribe is done (client, stop, err set)
	client *caller.Client // the client subscribed through (changes on reloads)
	stop   func()         // ends the client's subscription; nil while subscribing
	err    error          // why the subscribe failed
	// watchers are appended in place (a delivery's snapshot ends before
	// what is appended) and compacted into a new array once half of them
	// have left, so a join or a leave costs O(1) amortized, not a copy.
	watchers []*watcher
	live     int // watchers not yet removed
	keepAll  int // live watchers that take every event (no conflation)

	pendMu   sync.Mutex // guards pending and draining
	pending  []delivery // numbered events waiting for drain, in order
	draining bool       // drain runs: later events queue behind pending

	deliverMu sync.Mutex    // serializes deliveries (two clients overlap during a reload)
	seq       atomic.Uint64 // the last seq numbered; changes under deliverMu
}

// watcher is one local subscriber to a topic.
type watcher struct {
	up      *upstream // the upstream it was added to; guarded by Hub.mu
	keepAll bool      // takes every event: the topic is not conflated while it watches
	p       socket.Principal
	deliver func(Event)
	stopped atomic.Bool
}

// Watch adds a watcher acting for p to the topic of service, and calls
// deliver with every event p may see (socket.Visibility.Allows), in seq
// order, until stop is called or ctx ends. The topic's first watcher
// subscribes through client; current returns the service's client at any
// moment (a reload may change it while the first watcher subscribes).
// seq is the topic's seq when the watch began.
//
// While none of the topic's watchers asks for every event (conflate
// true for all) and they are many (over 64), the events are handed out by
// a goroutine of the topic's own, and one that comes while it still hands out an earlier
// one replaces the waiting one (Event.Skipped counts them): a topic
// with thousands of watchers never holds its subscription back, and
// each watcher gets the latest state.
//
// deliver runs on the subscription's goroutine and must not block (queue
// the event, or drop the watcher); it may call stop. It may still be
// running when stop returns, but is not called again after. Errors:
// UNAVAILABLE when the service cannot be subscribed to.
func (h *Hub) Watch(ctx context.Context, service, topic string, client *caller.Client, current func() *caller.Client, p socket.Principal, conflate bool, deliver func(Event)) (stop func(), seq uint64, err error) {
	w := &watcher{p: p, deliver: deliver, keepAll: !conflate}
	key := upstreamKey{service, topic}
	seq, err = h.add(key, client, current, w)
	if err != nil {
		return nil, 0, err
	}
	// remove is complete before AfterFunc exists: with ctx already done,
	// AfterFunc runs it at once on its own goroutine.
	remove := sync.OnceFunc(func() {
		w.stopped.Store(true)
		h.remove(key, w)
	})
	unwatch := context.AfterFunc(ctx, remove)
	return func() { unwatch(); remove() }, seq, nil
}

// Upstreams returns how many upstream subscriptions the hub holds.
func (h *Hub) Upstreams() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.upstreams)
}

// add adds a watcher to the upstream of key; the first subscribes through
// client, without holding the hub's lock (the service acknowledges the
// subscription first), and the others wait for it. A reload while the
// first subscribes (rebind skips an upstream still subscribing) is caught
// up with here: current returns the service's client now.
func (h *Hub) add(key upstreamKey, client *caller.Client, current func() *caller.Client, w *watcher) (seq uint64, err error) {
	h.mu.Lock()
	up := h.upstreams[key]
	first := up == nil
	if first {
		up = &upstream{h: h, key: key, ready: make(chan struct{})}
		up.seq.Store(h.startLocked(key))
		if h.upstreams == nil {
			h.upstreams = map[upstreamKey]*upstream{}
		}
		h.upstreams[key] = up
	}
	up.watchers = append(up.watchers, w)
	up.live++
	if w.keepAll {
		up.keepAll++
	}
	w.up = up
	// onEvent takes its snapshot of the watchers before numbering: every
	// event numbered after this reaches w.
	seq = up.seq.Load()
	h.mu.Unlock()
	if first {
		stop, err := client.Subscribe(context.Background(), key.topic, up.onEvent)
		h.mu.Lock()
		up.client, up.stop, up.err = client, stop, err
		unused := err != nil || up.live == 0 // failed, or every watcher left meanwhile
		if unused {
			up.stop = nil
			if h.upstreams[key] == up {
				h.endLocked(up)
			}
		}
		close(up.ready)
		now := current()
		h.mu.Unlock()
		if unused && stop != nil {
			stop()
		}
		if !unused && now != nil && now != client {
			h.move(up, now)
		}
	}
	<-up.ready
	if up.err != nil {
		return 0, socket.Errorf(socket.CodeUnavailable, "the service %s cannot be subscribed to now", key.service).WithCause(up.err)
	}
	return seq, nil
}

// startLocked returns the seq a new upstream of key starts at: one past
// the last of its previous upstream (events between the two are not
// seen), so a topic's seq never restarts lower. Called with mu held.
func (h *Hub) startLocked(key upstreamKey) uint64 {
	if last, ok := h.seqs[key]; ok {
		delete(h.seqs, key)
		return last + 1
	}
	return h.floor
}

// endLocked takes an upstream out of the hub, remembering its seq.
// Called with mu held.
func (h *Hub) endLocked(up *upstream) {
	delete(h.upstreams, up.key)
	if h.seqs == nil || len(h.seqs) >= maxHubSeqs {
		for _, s := range h.seqs {
			h.floor = max(h.floor, s+1)
		}
		h.seqs = map[upstreamKey]uint64{}
	}
	h.seqs[up.key] = up.seq.Load()
}

// remove takes a watcher off its upstream, ending the upstream with its
// last watcher (or leaving that to add while it still subscribes).
func (h *Hub) remove(key upstreamKey, w *watcher) {
	var stop func()
	defer func() {
		if stop != nil {
			stop() // outside the lock: event delivery needs it
		}
	}()
	h.mu.Lock()
	defer h.mu.Unlock()
	up := h.upstreams[key]
	if up == nil || up != w.up {
		return
	}
	up.live--
	if w.keepAll {
		up.keepAll--
	}
	if up.live == 0 {
		up.watchers = nil
		stop = up.stop
		up.stop = nil
		h.endLocked(up)
		return
	}
	if up.live <= len(up.watchers)/2 {
		// A new array: deliveries may still read the old one.
		rest := make([]*watcher, 0, 2*up.live)
		for _, o := range up.watchers {
			if !o.stopped.Load() {
				rest = append(rest, o)
			}
		}
		up.watchers = rest
	}
}

// watchersNow returns the upstream's watchers, and whether they all take
// the latest state rather than every event.
func (h *Hub) watchersNow(up *upstream) (watchers []*watcher, conflate bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return up.watchers, up.keepAll == 0
}

// onEvent numbers an event from the service and hands it to the watchers
// who may see it. A gap (events from the service may be missing) takes a
// number of its own: a gap marker alone goes to every watcher as one
// (the lost event may have been the topic's last: no jump would tell),
// and an event marked as after a gap follows the skipped number.
func (up *upstream) onEvent(e caller.Event) {
	up.deliverMu.Lock()
	defer up.deliverMu.Unlock()
	if e.Data == nil {
		if e.Gap {
			up.gapLocked()
		}
		return
	}
	if e.Gap {
		up.seq.Add(1)
	}
	watchers, conflate := up.h.watchersNow(up) // before numbering: see add
	ev := Event{Topic: e.Topic, Seq: up.seq.Add(1), Data: e.Data}
	up.handLocked(delivery{ev: ev, vis: e.Visibility, watchers: watchers}, conflate)
}

// gapLocked hands every watcher a gap marker, which takes the topic's
// next seq. Called with deliverMu held.
func (up *upstream) gapLocked() {
	watchers, _ := up.h.watchersNow(up) // before numbering: see add
	ev := Event{Topic: up.key.topic, Seq: up.seq.Add(1), Gap: true}
	up.handLocked(delivery{ev: ev, everyone: true, watchers: watchers}, false)
}

// Rebind moves the upstreams to the clients of a new configuration (by
// service name) whose client for their service changed (a reload changed
// its target or key); the old subscription ends once the new one is made,
// and the watchers get a gap marker. Callers serialize Rebind.
func (h *Hub) Rebind(clients map[string]*caller.Client) {
	type move struct {
		up     *upstream
		client *caller.Client
	}
	var moves []move
	h.mu.Lock()
	for _, up := range h.upstreams {
		c := clients[up.key.service]
		if c == nil || c == up.client || up.stop == nil {
			continue // gone from the configuration (its client ends with the old table), or still subscribing (add moves it)
		}
		moves = append(moves, move{up, c})
	}
	h.mu.Unlock()
	for _, m := range moves {
		h.move(m.up, m.client)
	}
}

// move subscribes the upstream through client and ends its subscription
// through the previous one. Subscribing waits for the service, so it runs
// outside the lock event delivery needs. Events between the two
// subscriptions may be lost (published on the new instance before its
// subscription, on the old one after its end, or queued for the old
// subscription when it ended), and no later event need come to show it:
// the watchers get a gap marker once the old subscription is over.
func (h *Hub) move(up *upstream, client *caller.Client) {
	h.mu.Lock()
	skip := up.client == client || up.stop == nil
	h.mu.Unlock()
	if skip {
		return
	}
	stop, err := client.Subscribe(context.Background(), up.key.topic, up.onEvent)
	if err != nil {
		return // stays on the retiring client; its end is a gap
	}
	h.mu.Lock()
	old := up.stop
	if old == nil || up.client == client { // the last watcher left, or another move won
		old = stop
	} else {
		up.client, up.stop = client, stop
	}
	h.mu.Unlock()
	old()
	up.deliverMu.Lock()
	up.gapLocked()
	up.deliverMu.Unlock()
}

// Close ends every upstream subscription.
func (h *Hub) Close() {
	h.mu.Lock()
	var stops []func()
	for key, up := range h.upstreams {
		if up.stop != nil {
			stops = append(stops, up.stop)
			up.stop = nil
		}
		delete(h.upstreams, key)
	}
	h.mu.Unlock()
	for _, stop := range stops {
		stop()
	}
}
