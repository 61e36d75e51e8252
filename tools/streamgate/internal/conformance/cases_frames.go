package conformance

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/types/known/structpb"

	socketv1 "github.com/streamgate/streamgate/gen/streamgate/socket/v1"
)

// --- §3 frames

// echoResult is ECHO's result.
type echoResult struct {
	ID   string `json:"id"`
	Body any    `json:"body"`
	Meta struct {
		APIVersion     string   `json:"api_version"`
		Subject        string   `json:"subject"`
		Roles          []string `json:"roles"`
		IdempotencyKey string   `json:"idempotency_key"`
		RequestID      string   `json:"request_id"`
	} `json:"meta"`
}

func requestResponse(e *env, st *stream) error {
	r := req("ECHO", "42", []byte(`{"text": "hello", "n": [1, 2.5, null, true]}`))
	r.Meta = &socketv1.Meta{ApiVersion: "v2", Principal: &socketv1.Principal{Subject: "alice", Roles: []string{"admin", "staff"}},
		IdempotencyKey: "ik-1", RequestId: "rq-1", Traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}
	resp, err := st.call(e.ctx, r)
	if err != nil {
		return err
	}
	if _, raw := resp.GetOutcome().(*socketv1.Response_ResultRaw); !raw {
		return fmt.Errorf("a request with body_raw wants its result as result_raw, got %T", resp.GetOutcome())
	}
	if resp.GetReplayed() {
		return errors.New("a read's answer is marked replayed")
	}
	var got echoResult
	if err := result(resp, &got); err != nil {
		return err
	}
	want := map[string]any{"text": "hello", "n": []any{1.0, 2.5, nil, true}}
	switch {
	case got.ID != "42":
		return fmt.Errorf("id: want 42, got %q", got.ID)
	case !reflect.DeepEqual(got.Body, any(want)):
		return fmt.Errorf("body: want %v, got %v", want, got.Body)
	case got.Meta.APIVersion != "v2" || got.Meta.Subject != "alice" || !slices.Equal(got.Meta.Roles, []string{"admin", "staff"}):
		return fmt.Errorf("meta: want v2, alice, [admin staff], got %+v", got.Meta)
	case got.Meta.IdempotencyKey != "ik-1" || got.Meta.RequestID != "rq-1":
		return fmt.Errorf("meta: want idempotency_key ik-1, request_id rq-1, got %+v", got.Meta)
	}
	// Without a principal in the meta, the key's own is the principal.
	resp, err = st.call(e.ctx, req("ECHO", "", nil))
	if err != nil {
		return err
	}
	if err := result(resp, &got); err != nil {
		return err
	}
	if got.Meta.Subject == "" || got.Meta.Subject == "alice" {
		return fmt.Errorf("without a principal the subject is the key's name, got %q", got.Meta.Subject)
	}
	return nil
}

func resultForm(e *env, st *stream) error {
	v, _ := structpb.NewValue(map[string]any{"text": "typed"})
	resp, err := st.call(e.ctx, &socketv1.Request{Action: "ECHO", ResourceId: "7", Payload: &socketv1.Request_Body{Body: v}})
	if err != nil {
		return err
	}
	if _, ok := resp.GetOutcome().(*socketv1.Response_Result); !ok {
		return fmt.Errorf("a request with body (a JSON value) wants result, got %T", resp.GetOutcome())
	}
	var got echoResult
	if err := result(resp, &got); err != nil {
		return err
	}
	if !reflect.DeepEqual(got.Body, any(map[string]any{"text": "typed"})) {
		return fmt.Errorf("body: got %v", got.Body)
	}
	// No body: result as a value, body null.
	resp, err = st.call(e.ctx, req("ECHO", "8", nil))
	if err != nil {
		return err
	}
	if _, ok := resp.GetOutcome().(*socketv1.Response_Result); !ok {
		return fmt.Errorf("a request without a body wants result, got %T", resp.GetOutcome())
	}
	got = echoResult{Body: "unset"}
	if err := result(resp, &got); err != nil {
		return err
	}
	if got.Body != nil {
		return fmt.Errorf("without a body ECHO's body is null, got %v", got.Body)
	}
	return nil
}

// statsResult is STATS's result.
type statsResult struct {
	Runs      map[string]int `json:"runs"`
	Counters  map[string]int `json:"counters"`
	Cancelled int            `json:"cancelled"`
}

func (e *env) stats(st *stream) (statsResult, error) {
	var s statsResult
	r, err := st.call(e.ctx, req("STATS", "", nil))
	if err != nil {
		return s, err
	}
	return s, result(r, &s)
}

// waitCancelled polls STATS until cancelled passes before (there is no
// signal to wait on).
func (e *env) waitCancelled(st *stream, before int) error {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		s, err := e.stats(st)
		if err != nil {
			return err
		}
		if s.Cancelled > before {
			return nil
		}
		select {
		case <-e.ctx.Done():
			return fmt.Errorf("STATS.cancelled stayed %d", s.Cancelled)
		case <-tick.C:
		}
	}
}

// roundTrip sends an ECHO and waits for it: frames sent before it have
// been taken in (frames of a stream are handled in order).
func (e *env) roundTrip(st *stream) error {
	r, err := st.call(e.ctx, req("ECHO", "sync", nil))
	if err != nil {
		return err
	}
	return result(r, new(any))
}

func cancelFrame(e *env, st *stream) error {
	before, err := e.stats(st)
	if err != nil {
		return err
	}
	id, err := st.request(req("SLOW", "", map[string]int{"ms": 30000}))
	if err != nil {
		return err
	}
	if err := e.roundTrip(st); err != nil {
		return err
	}
	if err := st.send(&socketv1.ConnectRequest{Frame: &socketv1.ConnectRequest_Cancel{Cancel: &socketv1.Cancel{Id: id}}}); err != nil {
		return err
	}
	if err := e.waitCancelled(st, before.Cancelled); err != nil {
		return err
	}
	if err := e.roundTrip(st); err != nil {
		return err
	}
	for _, f := range st.stash {
		if f.GetResponse() != nil && f.GetResponse().GetId() == id {
			return fmt.Errorf("a cancelled request was answered: %s", describeError(f.GetResponse().GetError()))
		}
	}
	// A cancel for an id not in flight is ignored.
	if err := st.send(&socketv1.ConnectRequest{Frame: &socketv1.ConnectRequest_Cancel{Cancel: &socketv1.Cancel{Id: 999_999}}}); err != nil {
		return err
	}
	return e.roundTrip(st)
}

// subscribe subscribes st to topic and waits for the acknowledgement.
func (e *env) subscribe(st *stream, topic string) error {
	if err := st.send(&socketv1.ConnectRequest{Frame: &socketv1.ConnectRequest_Subscribe{Subscribe: &socketv1.Subscribe{Topic: topic}}}); err != nil {
		return err
	}
	f, err := st.await(e.ctx, func(f *socketv1.ConnectResponse) bool { return f.GetSubscribed() != nil })
	if err != nil {
		return fmt.Errorf("waiting for subscribed: %w", err)
	}
	switch s := f.GetSubscribed(); {
	case s.GetTopic() != topic:
		return fmt.Errorf("subscribed names topic %q, want %q", s.GetTopic(), topic)
	case s.GetError() != nil:
		return fmt.Errorf("the subscription was refused: %s", describeError(s.GetError()))
	}
	return nil
}

// subscribed opens a stream and subscribes it to the case's topic (or
// pattern) prefix+suffix, waiting for the ack.
func (e *env) subscribed(suffix string) (*stream, string, error) {
	st, err := e.open(e.cfg.Key, false)
	if err != nil {
		return nil, "", err
	}
	topic := e.prefix + suffix
	if err := e.subscribe(st, topic); err != nil {
		return nil, "", err
	}
	return st, topic, nil
}

func subscribeAck(e *env) error {
	st, topic, err := e.subscribed("/ack")
	if err != nil {
		return err
	}
	// Subscribing twice is one subscription: one event per publish.
	if err := e.subscribe(st, topic); err != nil {
		return err
	}
	for seq := range uint64(2) {
		if err := e.publish(st, topic, 1, nil, nil); err != nil {
			return err
		}
		if _, err := e.event(st, topic, seq+1); err != nil {
			return err
		}
	}
	for _, f := range st.stash {
		if f.GetEvent() != nil {
			return fmt.Errorf("a topic subscribed twice delivered an event twice (seq %d)", f.GetEvent().GetSeq())
		}
	}
	return nil
}

func subscribeBadTopic(e *env, st *stream) error {
	for _, topic := range []string{"", "a//b", "a/*/b", "has space"} {
		if err := st.send(&socketv1.ConnectRequest{Frame: &socketv1.ConnectRequest_Subscribe{Subscribe: &socketv1.Subscribe{Topic: topic}}}); err != nil {
			return err
		}
		f, err := st.await(e.ctx, func(f *socketv1.ConnectResponse) bool { return f.GetResponse() != nil || f.GetSubscribed() != nil })
		if err != nil {
			return fmt.Errorf("topic %q: %w", topic, err)
		}
		if f.GetResponse() == nil || f.GetResponse().GetId() != 0 {
			return fmt.Errorf("topic %q: want a response with id 0 (INVALID_ARGUMENT), got %v", topic, f)
		}
		if err := wantError(f.GetResponse(), "INVALID_ARGUMENT", ""); err != nil {
			return fmt.Errorf("topic %q: %w", topic, err)
		}
	}
	return e.roundTrip(st)
}

// publish runs PUBLISH on st and checks its answer.
func (e *env) publish(st *stream, topic string, count int, data any, vis map[string]any) error {
	body := map[string]any{"topic": topic, "count": count, "data": data}
	if vis != nil {
		body["visibility"] = vis
	}
	id, err := st.request(req("PUBLISH", "", body))
	if err != nil {
		return fmt.Errorf("send PUBLISH: %w", err)
	}
	got, err := answerTo[struct {
		Published int `json:"published"`
	}](e.ctx, st, id, "PUBLISH")
	if err != nil {
		return err
	}
	if got.Published != count {
		return fmt.Errorf("PUBLISH: published %d, want %d", got.Published, count)
	}
	return nil
}

// event waits for the next event of topic (or a gap marker, an error)
// and checks its seq.
func (e *env) event(st *stream, topic string, seq uint64) (*socketv1.Event, error) {
	f, err := st.await(e.ctx, func(f *socketv1.ConnectResponse) bool {
		return f.GetEvent() != nil && (f.GetEvent().GetTopic() == topic || f.GetEvent().GetGap())
	})
	if err != nil {
		return nil, fmt.Errorf("waiting for event %d of %s: %w", seq, topic, err)
	}
	ev := f.GetEvent()
	switch {
	case ev.GetGap():
		return nil, fmt.Errorf("waiting for event %d of %s: a gap marker came", seq, topic)
	case ev.GetSeq() != seq:
		return nil, fmt.Errorf("want event seq %d of %s, got seq %d", seq, topic, ev.GetSeq())
	}
	return ev, nil
}

func unsubscribe(e *env, st *stream) error {
	a, b := e.prefix+"/unsub/a", e.prefix+"/unsub/b"
	if err := e.subscribe(st, a); err != nil {
		return err
	}
	if err := e.subscribe(st, b); err != nil {
		return err
	}
	if err := st.send(&socketv1.ConnectRequest{Frame: &socketv1.ConnectRequest_Unsubscribe{Unsubscribe: &socketv1.Unsubscribe{Topic: a}}}); err != nil {
		return err
	}
	// Both publish on the same stream after the unsubscribe frame: an
	// event of a would be queued before b's.
	if err := e.publish(st, a, 1, nil, nil); err != nil {
		return err
	}
	if err := e.publish(st, b, 1, nil, nil); err != nil {
		return err
	}
	if _, err := e.event(st, b, 1); err != nil {
		return err
	}
	for _, f := range st.stash {
		if f.GetEvent().GetTopic() == a {
			return errors.New("an event of an unsubscribed topic arrived")
		}
	}
	return nil
}

func eventsInOrder(e *env) error {
	st, topic, err := e.subscribed("/order")
	if err != nil {
		return err
	}
	vis := map[string]any{"public": false, "subjects": []string{"alice"}, "roles": []string{"admin"}}
	if err := e.publish(st, topic, 5, map[string]any{"x": "y"}, vis); err != nil {
		return err
	}
	for i := 1; i <= 5; i++ {
		ev, err := e.event(st, topic, uint64(i))
		if err != nil {
			return err
		}
		var data struct {
			I    int `json:"i"`
			Data any `json:"data"`
		}
		if err := jsonUnmarshal(ev.GetData(), &data); err != nil {
			return fmt.Errorf("event %d: data: %w", i, err)
		}
		if data.I != i || !reflect.DeepEqual(data.Data, any(map[string]any{"x": "y"})) {
			return fmt.Errorf("event %d: want data {\"i\": %d, \"data\": {\"x\": \"y\"}}, got %s", i, i, clip(ev.GetData()))
		}
		v := ev.GetVisibility()
		if v.GetPublic() || !slices.Equal(v.GetSubjects(), []string{"alice"}) || !slices.Equal(v.GetRoles(), []string{"admin"}) {
			return fmt.Errorf("event %d: want visibility subjects [alice] roles [admin], got %v", i, v)
		}
	}
	return nil
}

func gapMarker(e *env) error {
	// The subscriber's connection keeps HTTP/2's smallest window, so the
	// service cannot send ahead while the kit does not read.
	sub, err := e.open(e.cfg.Key, true, windowOptions()...)
	if err != nil {
		return err
	}
	topic := e.prefix + "/gap"
	if err := sub.send(&socketv1.ConnectRequest{Frame: &socketv1.ConnectRequest_Subscribe{Subscribe: &socketv1.Subscribe{Topic: topic}}}); err != nil {
		return err
	}
	f, err := sub.cs.Recv() // before the receiver starts: nothing else is read
	if err != nil {
		return fmt.Errorf("waiting for subscribed: %w", err)
	}
	if f.GetSubscribed().GetTopic() != topic || f.GetSubscribed().GetError() != nil {
		return fmt.Errorf("want subscribed %s, got %v", topic, f)
	}
	pub, err := e.open(e.cfg.Key, false)
	if err != nil {
		return err
	}
	const n = 2000 // 2 MB of events: far more than the window, the send queue and the event queue hold
	pad := string(make([]byte, 1000))
	if err := e.publish(pub, topic, n, map[string]string{"pad": pad}, map[string]any{"public": true}); err != nil {
		return err
	}
	sub.read()
	var last uint64
	gap := false
	for !gap {
		f, err := sub.await(e.ctx, func(f *socketv1.ConnectResponse) bool { return f.GetEvent() != nil })
		if err != nil {
			return fmt.Errorf("after %d events, no gap marker: %w", last, err)
		}
		ev := f.GetEvent()
		if ev.GetGap() {
			if ev.GetTopic() != "" || ev.GetSeq() != 0 || len(ev.GetData()) != 0 || ev.GetVisibility() != nil {
				return fmt.Errorf("a gap marker has no topic, seq, data or visibility; got %v", ev)
			}
			gap = true
			continue
		}
		if ev.GetSeq() <= last {
			return fmt.Errorf("event seq %d after %d", ev.GetSeq(), last)
		}
		last = ev.GetSeq()
	}
	if last >= n {
		return fmt.Errorf("the gap marker came after the last event (%d)", last)
	}
	// The stream carries on: events queued before the drop, then the
	// next one, which shows the jump.
	if err := e.publish(pub, topic, 1, nil, nil); err != nil {
		return err
	}
	for {
		f, err := sub.await(e.ctx, func(f *socketv1.ConnectResponse) bool { return f.GetEvent() != nil })
		if err != nil {
			return fmt.Errorf("after the gap marker: %w", err)
		}
		ev := f.GetEvent()
		if ev.GetGap() {
			continue // another drop is allowed
		}
		if ev.GetSeq() <= last {
			return fmt.Errorf("event seq %d after %d", ev.GetSeq(), last)
		}
		last = ev.GetSeq()
		if last == n+1 {
			return nil
		}
	}
}

// --- §4 ids, ordering and concurrency

func manyInFlight(e *env, st *stream) error {
	ms := []int{900, 600, 300, 10}
	ids := make(map[uint64]int, len(ms))
	for _, m := range ms {
		id, err := st.request(req("SLOW", "", map[string]int{"ms": m}))
		if err != nil {
			return err
		}
		ids[id] = m
	}
	var order []int
	for range ms {
		f, err := st.await(e.ctx, func(f *socketv1.ConnectResponse) bool { return f.GetResponse() != nil })
		if err != nil {
			return err
		}
		r := f.GetResponse()
		m, ok := ids[r.GetId()]
		if !ok {
			return fmt.Errorf("a response to unknown request %d", r.GetId())
		}
		var got sleptResult
		if err := result(r, &got); err != nil {
			return err
		}
		if got.SleptMs != m {
			return fmt.Errorf("request %d (SLOW %d) answered slept_ms %d: answers matched to the wrong ids", r.GetId(), m, got.SleptMs)
		}
		order = append(order, m)
	}
	if !slices.Equal(order, []int{10, 300, 600, 900}) {
		return fmt.Errorf("want the answers as they finish (10, 300, 600, 900 ms), got %v", order)
	}
	return nil
}

func idZero(e *env, st *stream) error {
	r := req("ECHO", "", nil)
	return wantRefused(e, st, func() error {
		return st.send(&socketv1.ConnectRequest{Frame: &socketv1.ConnectRequest_Request{Request: r}})
	})
}

func duplicateID(e *env, st *stream) error {
	const id = 7
	if _, err := st.request(&socketv1.Request{Id: id, Action: "SLOW", Payload: &socketv1.Request_BodyRaw{BodyRaw: []byte(`{"ms": 700}`)}}); err != nil {
		return err
	}
	if _, err := st.request(&socketv1.Request{Id: id, Action: "ECHO"}); err != nil {
		return err
	}
	first, err := st.response(e.ctx, id)
	if err != nil {
		return err
	}
	if err := wantError(first, "INVALID_ARGUMENT", ""); err != nil {
		return fmt.Errorf("the duplicate: %w", err)
	}
	if err := wantSlept(e.ctx, st, id, 700, "the request in flight"); err != nil {
		return err
	}
	// Once answered, the id may be used again.
	again, err := st.call(e.ctx, &socketv1.Request{Id: id, Action: "ECHO"})
	if err != nil {
		return err
	}
	return result(again, new(any))
}

// wantFrameRefused sends raw bytes as a frame on a stream of its own and
// expects an INVALID_ARGUMENT response with id 0, the stream carrying on.
func wantFrameRefused(e *env, frame []byte) error {
	return onStream(func(e *env, st *stream) error {
		return wantRefused(e, st, func() error { return st.sendRaw(frame) })
	})(e)
}

// wantRefused sends a frame on st with send and expects an
// INVALID_ARGUMENT response with id 0, the stream carrying on.
func wantRefused(e *env, st *stream, send func() error) error {
	if err := send(); err != nil {
		return err
	}
	resp, err := st.response(e.ctx, 0)
	if err != nil {
		return err
	}
	if err := wantError(resp, "INVALID_ARGUMENT", ""); err != nil {
		return err
	}
	return e.roundTrip(st)
}

func emptyFrame(e *env) error { return wantFrameRefused(e, nil) }

// unknownFrameKind sends a frame of a kind from the future: field 99.
func unknownFrameKind(e *env) error {
	b := protowire.AppendTag(nil, 99, protowire.BytesType)
	b = protowire.AppendBytes(b, []byte{0x08, 0x01})
	return wantFrameRefused(e, b)
}

func undecodableFrame(e *env) error {
	return e.endsOneStream(func(st *stream) error {
		if err := e.roundTrip(st); err != nil {
			return err
		}
		return st.sendRaw([]byte{0xff, 0xff, 0xff, 0xff})
	}, func(end error) error {
		if end == nil {
			return errors.New("a frame that is not a ConnectRequest ended the stream without an error status")
		}
		return nil
	})
}

// endsOneStream checks a frame that ends its stream and nothing else:
// on a connection of its own, send writes it on a new stream, ended
// checks how the stream ended, and another stream on the connection
// must still round-trip.
func (e *env) endsOneStream(send func(*stream) error, ended func(end error) error) error {
	cc, err := e.conn()
	if err != nil {
		return err
	}
	st, err := e.openOn(cc, e.cfg.Key, false)
	if err != nil {
		return err
	}
	if err := send(st); err != nil {
		return err
	}
	if err := ended(st.end(e.ctx)); err != nil {
		return err
	}
	// The connection and the service carry on.
	other, err := e.openOn(cc, e.cfg.Key, false)
	if err != nil {
		return err
	}
	return e.roundTrip(other)
}
