package socket

import (
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	socketv1 "github.com/streamgate/streamgate/gen/streamgate/socket/v1"
	"github.com/streamgate/streamgate/services/socket/internal/wire"
)

// Visibility says who may see an event. A caller whose key may delegate
// (the gateway) receives every event with its visibility and filters for
// its own clients (Allows); any other caller receives only the events its
// key's principal may see.
type Visibility struct {
	// Public events are seen by everyone who may read the object.
	Public bool `json:"public,omitempty"`
	// Subjects see the event (e.g. the object's owner).
	Subjects []string `json:"subjects,omitempty"`
	// Roles: principals with one of them see the event (e.g. "admin").
	Roles []string `json:"roles,omitempty"`
}

// Allows reports whether p may see an event of this visibility.
func (v Visibility) Allows(p Principal) bool {
	if v.Public || slices.Contains(v.Subjects, p.Subject) {
		return true
	}
	for _, r := range v.Roles {
		if p.HasRole(r) {
			return true
		}
	}
	return false
}

func (v Visibility) proto() *socketv1.Visibility {
	return &socketv1.Visibility{Public: v.Public, Subjects: v.Subjects, Roles: v.Roles}
}

// eventQueue is how many events wait for one stream's sender. A stream
// that does not read fills it; then its events are dropped (and counted),
// so it never holds up publishers or other streams, and a gap marker
// (Event.gap) sent as soon as the queue has room tells its caller events
// are missing (as does the seq jump of a topic's next event).
const eventQueue = 256

// maxTopicSeqs bounds how many topics' seqs a server remembers. Past it
// they are forgotten and start again from 1: each topic's next event then
// shows its subscribers a jump (a gap they cannot tell from lost events),
// which is the price of bounded memory over millions of objects.
const maxTopicSeqs = 1 << 18

// serverEvents are a server's topic sequence numbers and subscribed
// streams.
type serverEvents struct {
	mu   sync.Mutex                    // guards seqs, subs, exact, patterns, sinks; held while an event is queued, so each stream and sink gets a topic's events in seq order
	seqs map[string]uint64             // the last seq published per topic
	subs map[*serverStream]*streamSubs // streams with a subscription
	// sinks are the transports that carry every event on (carried.go).
	sinks []*eventSink
	// exact indexes the streams subscribed to each topic, and patterns
	// lists the streams with a pattern subscription (few: gateways), so
	// a Publish looks at the streams it may concern only.
	exact    map[string]map[*serverStream]*streamSubs
	patterns map[*serverStream]*streamSubs
}

// streamSubs are one stream's subscriptions and event queue.
type streamSubs struct {
	topics   map[string]bool // subscribed topics and patterns
	patterns int             // how many of topics are patterns
	all      bool            // the key may delegate: every event, whatever its visibility
	self     Principal       // otherwise: events this principal may see
	queue    chan *socketv1.ConnectResponse
	// dropped: an event did not fit the queue; the pump sends a gap
	// marker as soon as it has room. wake (1-buffered) rouses an idle
	// pump for it.
	dropped atomic.Bool
	wake    chan struct{}
}

// gapMarker tells a stream that the service dropped events for it.
var gapMarker = &socketv1.ConnectResponse{Frame: &socketv1.ConnectResponse_Event{Event: &socketv1.Event{Gap: true}}}

// Publish sends an event on topic to every stream subscribed to it (or to
// a pattern matching it), with the topic's next seq (per topic and
// process, from 1). data is raw JSON ([]byte or json.RawMessage, checked;
// empty means null) or a value to encode as JSON; it should be what a read of the object
// returns. Publish never blocks on subscribers: a stream whose event queue
// is full misses the event. Handlers publish after their change is
// stored; any goroutine may publish.
func (s *Server) Publish(topic string, data any, vis Visibility) error {
	if e := wire.CheckTopic(topic, false); e != nil {
		return e
	}
	raw, err := wire.EncodeBody(data)
	if err != nil {
		return err
	}
	if len(raw) == 0 {
		raw = []byte("null")
	}
	if !json.Valid(raw) {
		return Errorf(CodeInvalidArgument, "the data of an event on %q is not valid JSON", topic)
	}
	ev := &socketv1.Event{Topic: topic, Data: raw, Visibility: vis.proto()}
	frame := &socketv1.ConnectResponse{Frame: &socketv1.ConnectResponse_Event{Event: ev}}
	s.obs.server(serverEvent{kind: eventPublished})
	se := &s.events
	se.mu.Lock()
	defer se.mu.Unlock()
	if se.seqs == nil || len(se.seqs) >= maxTopicSeqs {
		se.seqs = map[string]uint64{}
	}
	se.seqs[topic]++
	ev.Seq = se.seqs[topic]
	if len(se.sinks) > 0 {
		se.toSinks(topic, ev.Seq, raw, vis)
	}
	for st, sub := range se.patterns {
		if se.exact[topic][st] == nil && sub.matchesPattern(topic) {
			s.queueEvent(sub, vis, frame)
		}
	}
	for _, sub := range se.exact[topic] {
		s.queueEvent(sub, vis, frame)
	}
	return nil
}

// queueEvent queues an event's frame for a stream that may see it, or
// marks the stream's queue as having dropped events. Called with
// events.mu held.
func (s *Server) queueEvent(sub *streamSubs, vis Visibility, frame *socketv1.ConnectResponse) {
	if !sub.all && !vis.Allows(sub.self) {
		return
	}
	select {
	case sub.queue <- frame:
	default:
		s.obs.server(serverEvent{kind: eventDropped})
		sub.dropped.Store(true)
		select {
		case sub.wake <- struct{}{}:
		default:
		}
	}
}

// matchesPattern reports whether one of the stream's patterns matches
// the topic.
func (sub *streamSubs) matchesPattern(topic string) bool {
	for p := range sub.topics {
		if isPattern(p) && wire.TopicMatches(p, topic) {
			return true
		}
	}
	return false
}

// isPattern reports whether a subscription's topic is a pattern.
func isPattern(topic string) bool { return strings.HasSuffix(topic, "*") }

// indexLocked adds (or, with add false, removes) a stream's subscription
// to topic in the indexes. Called with mu held.
func (se *serverEvents) indexLocked(st *serverStream, sub *streamSubs, topic string, add bool) {
	if add == sub.topics[topic] {
		return // no change
	}
	if add {
		sub.topics[topic] = true
	} else {
		delete(sub.topics, topic)
	}
	if isPattern(topic) {
		if add {
			sub.patterns++
		} else {
			sub.patterns--
		}
		if sub.patterns > 0 {
			if se.patterns == nil {
				se.patterns = map[*serverStream]*streamSubs{}
			}
			se.patterns[st] = sub
		} else {
			delete(se.patterns, st)
		}
		return
	}
	streams := se.exact[topic]
	if add {
		if streams == nil {
			streams = map[*serverStream]*streamSubs{}
			if se.exact == nil {
				se.exact = map[string]map[*serverStream]*streamSubs{}
			}
			se.exact[topic] = streams
		}
		streams[st] = sub
		return
	}
	delete(streams, st)
	if len(streams) == 0 {
		delete(se.exact, topic)
	}
}

// onSubscribe adds a subscription to the stream, the first one starting
// the stream's event pump, and acknowledges it. A bad topic is answered
// with an error response (id 0), like an empty frame; a key limited to
// some actions (Key.Actions) is refused in the acknowledgement
// (PERMISSION_DENIED): events carry whole objects, whatever action
// changed them.
func (st *serverStream) onSubscribe(topic string) {
	if e := wire.CheckTopic(topic, true); e != nil {
		st.reply(newResponse(0, false, nil, e))
		return
	}
	if len(st.key.Actions) > 0 {
		// An action-scoped key would otherwise see events of actions it
		// may not call.
		e := Errorf(CodePermissionDenied, "key %q is limited to some actions and may not subscribe", st.key.Name)
		st.send(&socketv1.ConnectResponse{Frame: &socketv1.ConnectResponse_Subscribed{Subscribed: &socketv1.Subscribed{Topic: topic, Error: wire.ErrorToProto(e)}}})
		return
	}
	if st.subscribe(topic) {
		st.send(&socketv1.ConnectResponse{Frame: &socketv1.ConnectResponse_Subscribed{Subscribed: &socketv1.Subscribed{Topic: topic}}})
	}
}

// subscribe records the subscription; false once the stream is ending.
func (st *serverStream) subscribe(topic string) bool {
	se := &st.srv.events
	se.mu.Lock()
	defer se.mu.Unlock()
	if st.ctx.Err() != nil {
		return false // the pump is gone (or going) and takes nothing more
	}
	sub := se.subs[st]
	if sub == nil {
		sub = &streamSubs{
			topics: map[string]bool{},
			all:    st.key.Delegate,
			self:   Principal{Subject: st.key.Name, Roles: st.key.Roles},
			queue:  make(chan *socketv1.ConnectResponse, eventQueue),
			wake:   make(chan struct{}, 1),
		}
		if se.subs == nil {
			se.subs = map[*serverStream]*streamSubs{}
		}
		se.subs[st] = sub
		st.srv.streamWG.Add(1)
		go st.pumpEvents(sub)
	}
	se.indexLocked(st, sub, topic, true)
	return true
}

// onUnsubscribe ends the stream's subscription to topic, if any.
func (st *serverStream) onUnsubscribe(topic string) {
	se := &st.srv.events
	se.mu.Lock()
	defer se.mu.Unlock()
	if sub := se.subs[st]; sub != nil {
		se.indexLocked(st, sub, topic, false)
	}
}

// pumpEvents hands the stream's queued events to its sender until the
// stream ends, then drops the stream's subscriptions.
func (st *serverStream) pumpEvents(sub *streamSubs) {
	defer st.srv.streamWG.Done()
	defer func() {
		se := &st.srv.events
		se.mu.Lock()
		for topic := range sub.topics {
			se.indexLocked(st, sub, topic, false)
		}
		delete(se.subs, st)
		se.mu.Unlock()
	}()
	for {
		if sub.dropped.Swap(false) {
			st.send(gapMarker)
		}
		select {
		case f := <-sub.queue:
			st.send(f)
			if st.ctx.Err() != nil {
				return
			}
			st.srv.obs.server(serverEvent{kind: eventDelivered})
		case <-sub.wake:
		case <-st.ctx.Done():
			return
		case <-st.senderDone:
			return
		}
	}
}
