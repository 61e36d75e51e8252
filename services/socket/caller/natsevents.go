package caller

import (
	"cmp"
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/streamgate/streamgate/internal/eventlog"
	"github.com/streamgate/streamgate/services/socket"
	"github.com/streamgate/streamgate/services/socket/internal/natswire"
	"github.com/streamgate/streamgate/services/socket/internal/wire"
	"github.com/streamgate/streamgate/status"
)

// Subscribing over NATS: the service's instances store their events in
// JetStream (natsserve.WithEvents) on subjects derived from the topics,
// and a subscription is a core NATS subscription on the subject of its
// topic, or of every topic under its pattern ("orders/*" is
// streamgate.events.orders.>, "*" streamgate.events.>), which sees each
// event as it is published. It keeps the events of the client's service
// (header Streamgate-Service), and what the client's key may see: an
// instance says which events that is (a natswire.Grant, from the
// service's keyring, and the root of its subjects), asked again once
// grantTTL old: a revoked key stops receiving within it.

const (
	grantWait = 2 * time.Second  // bounds one question for the client's grant
	grantTTL  = 30 * time.Second // how long an instance's answer stands
)

// natsGrant is what the client's key may receive, once an instance said.
type natsGrant struct {
	mu  sync.Mutex      // guards g, at and ttl; held while asking
	g   *natswire.Grant // nil until an instance answered
	at  time.Time       // when g was asked for
	ttl time.Duration   // how long g stands; 0 is grantTTL (tests shorten it)
}

// grant returns the client's grant, asking an instance when none has
// answered yet or the answer is grantTTL old (within ctx and grantWait);
// nil when none ever answered. When a refresh finds no instance the last
// answer stands for another grantTTL.
func (l *natsLink) grant(ctx context.Context) *natswire.Grant {
	l.grants.mu.Lock()
	defer l.grants.mu.Unlock()
	if l.grants.g != nil && time.Since(l.grants.at) < cmp.Or(l.grants.ttl, grantTTL) {
		return l.grants.g
	}
	l.grants.at = time.Now()
	ctx, cancel := context.WithTimeout(ctx, grantWait)
	defer cancel()
	if g := natswire.AskGrant(ctx, l.nc, l.service, l.key); g != nil {
		l.grants.g = g
	}
	return l.grants.g
}

// natsSubscribe is Subscribe over NATS.
func (c *Client) natsSubscribe(ctx context.Context, topic string, fn func(Event)) (stop func(), err error) {
	if e := wire.CheckTopic(topic, true); e != nil {
		return nil, e
	}
	root := eventlog.DefaultRoot
	if g := c.nats.grant(ctx); g != nil {
		if g.Code != "" {
			return nil, status.Errorf(status.Code(g.Code), "%s", g.Message)
		}
		root = cmp.Or(g.Root, root)
	}
	ev := &c.events
	sub := &subscription{topic: topic, fn: fn, queue: make(chan Event, subscriptionQueue), done: make(chan struct{})}
	ev.mu.Lock()
	if ev.ctx.Err() != nil {
		ev.mu.Unlock()
		return nil, errClientClosed
	}
	ev.wg.Add(1)
	ev.mu.Unlock()
	r := &natsReader{link: c.nats, ctx: ev.ctx, sub: sub, seqs: map[string]uint64{}, reconnects: c.nats.nc.Stats().Reconnects}
	ns, err := c.nats.nc.Subscribe(eventlog.PatternSubject(root, topic), r.onMsg)
	if err != nil {
		ev.wg.Done()
		return nil, status.Errorf(status.CodeUnavailable, "the subscription to the events of service %s over NATS failed", c.nats.service).WithCause(err)
	}
	// Once the NATS server has the subscription, events published after
	// Subscribe returns reach it (at most the connect timeout).
	_ = c.nats.nc.FlushTimeout(ev.connectTimeout)
	go sub.run(ev.wg)
	end := func() {
		sub.once.Do(func() {
			_ = ns.Unsubscribe()
			close(sub.done)
		})
	}
	unwatch := context.AfterFunc(ctx, end)
	stopClient := context.AfterFunc(ev.ctx, end)
	return func() { unwatch(); stopClient(); end() }, nil
}

// natsReader turns one subscription's NATS messages into events. onMsg
// runs on the NATS subscription's goroutine, one message at a time.
type natsReader struct {
	link *natsLink
	ctx  context.Context // the client's
	sub  *subscription
	seqs map[string]uint64 // the last seq by instance and topic; onMsg's own
	// reconnects is the connection's count of reconnects at the last
	// message: events published while it was away are lost.
	reconnects uint64
}

// onMsg hands the subscription an event of its service that the client's
// key may see, marking a gap when the publishing instance's seq for the
// topic jumped.
func (r *natsReader) onMsg(m *nats.Msg) {
	h := m.Header
	topic := h.Get(eventlog.HeaderTopic)
	if h.Get(eventlog.HeaderService) != r.link.service || !wire.TopicMatches(r.sub.topic, topic) {
		return
	}
	e := Event{Topic: topic, Data: m.Data}
	if n := r.link.nc.Stats().Reconnects; n != r.reconnects {
		r.reconnects, e.Gap = n, true
	}
	e.Seq, _ = strconv.ParseUint(h.Get(eventlog.HeaderSeq), 10, 64)
	e.Visibility = eventlog.Visibility(h)
	// Every event of the topic counts, seen or not, so only events lost
	// on the way show as a gap; one sent again (an instance retrying to
	// store it, before it sends the next) is delivered once.
	if e.Seq > 0 {
		key := h.Get(eventlog.HeaderInstance) + "\x00" + topic
		last, ok := r.seqs[key]
		switch {
		case ok && e.Seq == last:
			return
		case ok && e.Seq != last+1:
			e.Gap = true
		}
		if len(r.seqs) >= maxTrackedTopics {
			clear(r.seqs)
		}
		r.seqs[key] = e.Seq
	}
	g := r.link.grant(r.ctx)
	switch {
	case g == nil:
		// Who may see it is unknown: it is lost to this subscription.
		r.sub.dropped.Store(true)
		return
	case g.Code != "", !g.Delegate && !e.Visibility.Allows(socket.Principal{Subject: g.Subject, Roles: g.Roles}):
		if e.Gap {
			r.sub.dropped.Store(true) // the next event it sees says so
		}
		return
	}
	if e.Data == nil {
		e.Data = []byte("null")
	}
	r.sub.offer(e)
}
