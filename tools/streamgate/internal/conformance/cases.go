package conformance

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/types/known/structpb"

	socketv1 "github.com/streamgate/streamgate/gen/streamgate/socket/v1"
)

// Case is one check of the spec.
type Case struct {
	// Section is the section of docs/protocol.md it checks.
	Section string
	// Name names it in the report and for Options.Run.
	Name string
	// Run returns nil when the service behaves as the section says.
	Run func(e *env) error
}

// standardCodes are the error codes of §6.
var standardCodes = []string{"INVALID_ARGUMENT", "UNAUTHENTICATED", "PERMISSION_DENIED", "NOT_FOUND", "ALREADY_EXISTS",
	"CONFLICT", "FAILED_PRECONDITION", "NOT_SUPPORTED", "RESOURCE_EXHAUSTED", "UNAVAILABLE", "DEADLINE_EXCEEDED",
	"CANCELED", "INTERNAL"}

// Limits the fixture serves with (§11 defaults).
const (
	maxBody        = 1 << 20
	maxFrame       = 4 << 20
	streamInFlight = 1024
	eventQueue     = 256
)

// Cases returns every case in the order Run runs them; drain is last.
func Cases() []Case {
	cs := []Case{
		{"2", "auth-no-key", authRefused("")},
		{"2", "auth-wrong-key", authRefused("not-the-key")},
		{"2", "auth-malformed", authMalformed},
		{"2", "auth-accepted", authAccepted},
		{"3.1", "request-response", requestResponse},
		{"3.2", "result-form-follows-body", resultForm},
		{"3.3", "cancel", cancelFrame},
		{"3.4", "subscribe-ack", subscribeAck},
		{"3.4", "subscribe-bad-topic", subscribeBadTopic},
		{"3.4", "unsubscribe", unsubscribe},
		{"3.5", "events-in-seq-order", eventsInOrder},
		{"3.5", "gap-marker-on-overflow", gapMarker},
		{"4", "many-in-flight-out-of-order", manyInFlight},
		{"4", "request-id-zero-refused", idZero},
		{"4", "duplicate-id-refused", duplicateID},
		{"4", "empty-frame-refused", emptyFrame},
		{"4", "unknown-frame-kind-refused", unknownFrameKind},
		{"4", "undecodable-frame-ends-only-its-stream", undecodableFrame},
		{"5", "deadline", deadline},
		{"6", "unknown-action", unknownAction},
	}
	for _, code := range standardCodes {
		cs = append(cs, Case{"6", "error-code/" + code, errorCode(code)})
	}
	cs = append(cs,
		Case{"6", "bad-json-body", badJSON},
		Case{"6", "unknown-body-field", unknownField},
		Case{"7", "keyed-write-runs-once", keyedWrite},
		Case{"7", "key-reused-with-other-body", keyReused},
		Case{"8", "identical-reads-coalesced", readsCoalesced},
		Case{"8", "writes-never-merged", writesNotMerged},
		Case{"9", "describe-catalogue", describeCatalogue},
		Case{"9", "describe-needs-key", describeNeedsKey},
		Case{"9", "health-serving", healthServing},
		Case{"10", "pattern-subscription", patternSubscription},
		Case{"11", "body-too-large", bodyTooLarge},
		Case{"11", "frame-too-large-ends-only-its-stream", frameTooLarge},
		Case{"11", "in-flight-per-stream-bound", inFlightBound},
		Case{"11", "drain", drain},
	)
	return cs
}

// --- §2 opening and authentication

func authRefused(key string) func(e *env) error {
	return func(e *env) error {
		st, err := e.open(key, false)
		if err != nil {
			return err
		}
		return wantRefusal(e.ctx, st, codes.Unauthenticated)
	}
}

// authMalformed presents the key under another scheme.
func authMalformed(e *env) error {
	cc, err := e.conn()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(e.ctx)
	defer cancel()
	cs, err := socketv1.NewSocketServiceClient(cc).Connect(withRawAuth(ctx, "Basic "+e.cfg.Key))
	if err == nil {
		_, err = cs.Recv()
	}
	if status.Code(err) != codes.Unauthenticated {
		return fmt.Errorf("want the stream refused with UNAUTHENTICATED, got %v", err)
	}
	return nil
}

// wantRefusal checks that a stream ends with code before any frame.
func wantRefusal(ctx context.Context, st *stream, code codes.Code) error {
	f, err := st.next(ctx)
	var ended *endedError
	switch {
	case f != nil:
		return fmt.Errorf("want the stream refused with %s, got a frame", code)
	case !errors.As(err, &ended):
		return fmt.Errorf("want the stream refused with %s: %v", code, err)
	case status.Code(ended.err) != code:
		return fmt.Errorf("want the stream refused with %s, got %v", code, ended.err)
	}
	return nil
}

func authAccepted(e *env) error {
	st, err := e.open(e.cfg.Key, false)
	if err != nil {
		return err
	}
	md, err := st.header()
	if err != nil {
		return fmt.Errorf("the stream was refused: %v", err)
	}
	inst := md.Get("streamgate-instance")
	if len(inst) != 1 || inst[0] == "" {
		return fmt.Errorf("want one streamgate-instance header, got %q", inst)
	}
	cc, err := e.conn()
	if err != nil {
		return err
	}
	d, err := socketv1.NewSocketServiceClient(cc).Describe(withKey(e.ctx, e.cfg.Key), &socketv1.DescribeRequest{})
	if err != nil {
		return fmt.Errorf("Describe: %v", err)
	}
	if d.GetInstance() != inst[0] {
		return fmt.Errorf("streamgate-instance is %q but Describe's instance is %q", inst[0], d.GetInstance())
	}
	// The stream works.
	r, err := st.call(e.ctx, req("ECHO", "1", nil))
	if err != nil {
		return err
	}
	return result(r, new(any))
}

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

func requestResponse(e *env) error {
	st, err := e.open(e.cfg.Key, false)
	if err != nil {
		return err
	}
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

func resultForm(e *env) error {
	st, err := e.open(e.cfg.Key, false)
	if err != nil {
		return err
	}
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

func cancelFrame(e *env) error {
	st, err := e.open(e.cfg.Key, false)
	if err != nil {
		return err
	}
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

func subscribeAck(e *env) error {
	st, err := e.open(e.cfg.Key, false)
	if err != nil {
		return err
	}
	topic := e.prefix + "/ack"
	if err := e.subscribe(st, topic); err != nil {
		return err
	}
	// Subscribing twice is one subscription: one event per publish.
	if err := e.subscribe(st, topic); err != nil {
		return err
	}
	if err := e.publish(st, topic, 1, nil, nil); err != nil {
		return err
	}
	if _, err := e.event(st, topic, 1); err != nil {
		return err
	}
	if err := e.publish(st, topic, 1, nil, nil); err != nil {
		return err
	}
	if _, err := e.event(st, topic, 2); err != nil {
		return err
	}
	for _, f := range st.stash {
		if f.GetEvent() != nil {
			return fmt.Errorf("a topic subscribed twice delivered an event twice (seq %d)", f.GetEvent().GetSeq())
		}
	}
	return nil
}

func subscribeBadTopic(e *env) error {
	st, err := e.open(e.cfg.Key, false)
	if err != nil {
		return err
	}
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
	r, err := st.call(e.ctx, req("PUBLISH", "", body))
	if err != nil {
		return err
	}
	var got struct {
		Published int `json:"published"`
	}
	if err := result(r, &got); err != nil {
		return fmt.Errorf("PUBLISH: %w", err)
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

func unsubscribe(e *env) error {
	st, err := e.open(e.cfg.Key, false)
	if err != nil {
		return err
	}
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
	st, err := e.open(e.cfg.Key, false)
	if err != nil {
		return err
	}
	topic := e.prefix + "/order"
	if err := e.subscribe(st, topic); err != nil {
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
			return fmt.Errorf("event %d: data: %v", i, err)
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
		return fmt.Errorf("waiting for subscribed: %v", err)
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
			break
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

func manyInFlight(e *env) error {
	st, err := e.open(e.cfg.Key, false)
	if err != nil {
		return err
	}
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
		var got struct {
			SleptMs int `json:"slept_ms"`
		}
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

func idZero(e *env) error {
	st, err := e.open(e.cfg.Key, false)
	if err != nil {
		return err
	}
	r := req("ECHO", "", nil)
	if err := st.send(&socketv1.ConnectRequest{Frame: &socketv1.ConnectRequest_Request{Request: r}}); err != nil {
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

func duplicateID(e *env) error {
	st, err := e.open(e.cfg.Key, false)
	if err != nil {
		return err
	}
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
	second, err := st.response(e.ctx, id)
	if err != nil {
		return err
	}
	var got struct {
		SleptMs int `json:"slept_ms"`
	}
	if err := result(second, &got); err != nil || got.SleptMs != 700 {
		return fmt.Errorf("the request in flight: want slept_ms 700, got %v %v", got, err)
	}
	// Once answered, the id may be used again.
	if _, err := st.request(&socketv1.Request{Id: id, Action: "ECHO"}); err != nil {
		return err
	}
	again, err := st.response(e.ctx, id)
	if err != nil {
		return err
	}
	return result(again, new(any))
}

// wantFrameRefused sends raw bytes as a frame and expects an
// INVALID_ARGUMENT response with id 0, the stream carrying on.
func wantFrameRefused(e *env, frame []byte) error {
	st, err := e.open(e.cfg.Key, false)
	if err != nil {
		return err
	}
	if err := st.sendRaw(frame); err != nil {
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
	cc, err := e.conn()
	if err != nil {
		return err
	}
	st, err := e.openOn(cc, e.cfg.Key, false)
	if err != nil {
		return err
	}
	if err := e.roundTrip(st); err != nil {
		return err
	}
	if err := st.sendRaw([]byte{0xff, 0xff, 0xff, 0xff}); err != nil {
		return err
	}
	if err := st.end(e.ctx); err == nil {
		return errors.New("a frame that is not a ConnectRequest ended the stream without an error status")
	}
	// The connection and the service carry on.
	other, err := e.openOn(cc, e.cfg.Key, false)
	if err != nil {
		return err
	}
	return e.roundTrip(other)
}

// --- §5 deadlines

func deadline(e *env) error {
	st, err := e.open(e.cfg.Key, false)
	if err != nil {
		return err
	}
	before, err := e.stats(st)
	if err != nil {
		return err
	}
	r := req("SLOW", "", map[string]int{"ms": 30000})
	r.TimeoutMs = 300
	start := time.Now()
	resp, err := st.call(e.ctx, r)
	if err != nil {
		return err
	}
	if err := wantError(resp, "DEADLINE_EXCEEDED", ""); err != nil {
		return err
	}
	if d := time.Since(start); d < 250*time.Millisecond {
		return fmt.Errorf("answered DEADLINE_EXCEEDED after %s, before timeout_ms 300", d)
	}
	return e.waitCancelled(st, before.Cancelled)
}

// --- §6 errors

func unknownAction(e *env) error {
	st, err := e.open(e.cfg.Key, false)
	if err != nil {
		return err
	}
	for _, action := range []string{"NO_SUCH_ACTION", ""} {
		resp, err := st.call(e.ctx, req(action, "", nil))
		if err != nil {
			return err
		}
		want := "NOT_FOUND"
		if action == "" {
			want = "INVALID_ARGUMENT"
		}
		if err := wantError(resp, want, ""); err != nil {
			return fmt.Errorf("action %q: %w", action, err)
		}
	}
	return nil
}

func errorCode(code string) func(e *env) error {
	return func(e *env) error {
		st, err := e.open(e.cfg.Key, false)
		if err != nil {
			return err
		}
		msg := "conformance says " + code
		resp, err := st.call(e.ctx, req("FAIL", "", map[string]string{"code": code, "message": msg, "reason": "conformance_reason"}))
		if err != nil {
			return err
		}
		if err := wantError(resp, code, "conformance_reason"); err != nil {
			return err
		}
		if m := resp.GetError().GetMessage(); m != msg {
			return fmt.Errorf("message: want %q, got %q", msg, m)
		}
		// Without a reason, details carry none.
		resp, err = st.call(e.ctx, req("FAIL", "", map[string]string{"code": code, "message": msg}))
		if err != nil {
			return err
		}
		if err := wantError(resp, code, ""); err != nil {
			return err
		}
		if r := reasonOf(resp.GetError()); r != "" {
			return fmt.Errorf("FAIL without a reason answered reason %q", r)
		}
		return nil
	}
}

func badJSON(e *env) error {
	st, err := e.open(e.cfg.Key, false)
	if err != nil {
		return err
	}
	for _, body := range []string{`{"a":`, `{"a": 1} trailing`, `not json`} {
		resp, err := st.call(e.ctx, req("ECHO", "", []byte(body)))
		if err != nil {
			return err
		}
		if err := wantError(resp, "INVALID_ARGUMENT", ""); err != nil {
			return fmt.Errorf("body %q: %w", body, err)
		}
	}
	return e.roundTrip(st)
}

func unknownField(e *env) error {
	st, err := e.open(e.cfg.Key, false)
	if err != nil {
		return err
	}
	name := e.prefix + "-unknown-field"
	resp, err := st.call(e.ctx, req("COUNT", "", map[string]any{"name": name, "bogus": 1}))
	if err != nil {
		return err
	}
	if err := wantError(resp, "INVALID_ARGUMENT", "unknown_field"); err != nil {
		return err
	}
	if f := resp.GetError().GetDetails().GetFields()["field"].GetStringValue(); f != "bogus" {
		return fmt.Errorf("details.field: want bogus, got %q", f)
	}
	s, err := e.stats(st)
	if err != nil {
		return err
	}
	if s.Counters[name] != 0 {
		return fmt.Errorf("a refused COUNT counted: %d", s.Counters[name])
	}
	return nil
}

// --- §7 writes and idempotency keys

// countValue is COUNT's result.
type countValue struct {
	Name  string `json:"name"`
	Value int    `json:"value"`
}

func count(e *env, st *stream, name, key string) (countValue, *socketv1.Response, error) {
	r := req("COUNT", "", map[string]string{"name": name})
	if key != "" {
		r.Meta = &socketv1.Meta{IdempotencyKey: key}
	}
	resp, err := st.call(e.ctx, r)
	if err != nil {
		return countValue{}, nil, err
	}
	var v countValue
	if resp.GetOk() {
		err = result(resp, &v)
	}
	return v, resp, err
}

func keyedWrite(e *env) error {
	st, err := e.open(e.cfg.Key, false)
	if err != nil {
		return err
	}
	name, key := e.prefix+"-keyed", e.prefix+"0123456789abcdef0123456789abcdef:COUNT"
	first, resp, err := count(e, st, name, key)
	if err != nil {
		return err
	}
	if resp.GetReplayed() || first.Value != 1 || first.Name != name {
		return fmt.Errorf("first COUNT: want value 1 not replayed, got %+v replayed=%v", first, resp.GetReplayed())
	}
	// The retry comes on another stream, as after a lost answer.
	other, err := e.open(e.cfg.Key, false)
	if err != nil {
		return err
	}
	again, resp, err := count(e, other, name, key)
	if err != nil {
		return err
	}
	if !resp.GetReplayed() || again != first {
		return fmt.Errorf("retried COUNT: want %+v replayed, got %+v replayed=%v", first, again, resp.GetReplayed())
	}
	s, err := e.stats(st)
	if err != nil {
		return err
	}
	if s.Counters[name] != 1 {
		return fmt.Errorf("the counter moved %d times under one key", s.Counters[name])
	}
	// Without a key, every COUNT counts.
	v, resp, err := count(e, st, name, "")
	if err != nil {
		return err
	}
	if v.Value != 2 || resp.GetReplayed() {
		return fmt.Errorf("COUNT without a key: want value 2, got %+v replayed=%v", v, resp.GetReplayed())
	}
	return nil
}

func keyReused(e *env) error {
	st, err := e.open(e.cfg.Key, false)
	if err != nil {
		return err
	}
	name, key := e.prefix+"-reused", e.prefix+":reused"
	if _, _, err := count(e, st, name, key); err != nil {
		return err
	}
	_, resp, err := count(e, st, name+"-other", key)
	if err != nil {
		return err
	}
	if err := wantError(resp, "CONFLICT", "idempotency_key_reused"); err != nil {
		return err
	}
	s, err := e.stats(st)
	if err != nil {
		return err
	}
	if s.Counters[name+"-other"] != 0 || s.Counters[name] != 1 {
		return fmt.Errorf("counters after a reused key: %d and %d, want 1 and 0", s.Counters[name], s.Counters[name+"-other"])
	}
	return nil
}

// --- §8 coalescing

func readsCoalesced(e *env) error {
	st, err := e.open(e.cfg.Key, false)
	if err != nil {
		return err
	}
	key := e.prefix + "-peek"
	const n = 10
	var ids []uint64
	for range n {
		id, err := st.request(req("PEEK", key, map[string]int{"ms": 500}))
		if err != nil {
			return err
		}
		ids = append(ids, id)
	}
	for _, id := range ids {
		resp, err := st.response(e.ctx, id)
		if err != nil {
			return err
		}
		var got struct {
			Key  string `json:"key"`
			Runs int    `json:"runs"`
		}
		if err := result(resp, &got); err != nil {
			return err
		}
		if got.Key != key || got.Runs < 1 {
			return fmt.Errorf("PEEK answered %+v", got)
		}
		if resp.GetReplayed() {
			return errors.New("a coalesced read is marked replayed")
		}
	}
	s, err := e.stats(st)
	if err != nil {
		return err
	}
	if s.Runs[key] >= n {
		return fmt.Errorf("%d identical concurrent PEEKs ran %d times: identical reads in flight were not coalesced", n, s.Runs[key])
	}
	return nil
}

func writesNotMerged(e *env) error {
	st, err := e.open(e.cfg.Key, false)
	if err != nil {
		return err
	}
	name := e.prefix + "-merged"
	const n = 10
	var ids []uint64
	for i := range n {
		r := req("COUNT", "", map[string]string{"name": name})
		r.Meta = &socketv1.Meta{IdempotencyKey: fmt.Sprintf("%s:merge:%d", e.prefix, i)}
		id, err := st.request(r)
		if err != nil {
			return err
		}
		ids = append(ids, id)
	}
	seen := map[int]bool{}
	for _, id := range ids {
		resp, err := st.response(e.ctx, id)
		if err != nil {
			return err
		}
		var v countValue
		if err := result(resp, &v); err != nil {
			return err
		}
		seen[v.Value] = true
	}
	s, err := e.stats(st)
	if err != nil {
		return err
	}
	if s.Counters[name] != n || len(seen) != n {
		return fmt.Errorf("%d concurrent COUNTs with distinct keys moved the counter to %d (%d distinct values)", n, s.Counters[name], len(seen))
	}
	return nil
}

// --- §9 Describe and health

func describeCatalogue(e *env) error {
	cc, err := e.conn()
	if err != nil {
		return err
	}
	d, err := socketv1.NewSocketServiceClient(cc).Describe(withKey(e.ctx, e.cfg.Key), &socketv1.DescribeRequest{})
	if err != nil {
		return fmt.Errorf("Describe: %v", err)
	}
	if d.GetService() != "conformance" || d.GetInstance() == "" {
		return fmt.Errorf("want service conformance and an instance id, got %q, %q", d.GetService(), d.GetInstance())
	}
	read, write := socketv1.ActionKind_ACTION_KIND_READ, socketv1.ActionKind_ACTION_KIND_WRITE
	want := map[string]socketv1.ActionKind{"COUNT": write, "DRAIN": write, "ECHO": read, "FAIL": read, "PEEK": read,
		"PUBLISH": write, "SLOW": read, "STATS": read}
	var names []string
	for _, a := range d.GetActions() {
		names = append(names, a.GetName())
		k, ok := want[a.GetName()]
		if !ok {
			continue // a fixture may have more
		}
		delete(want, a.GetName())
		if a.GetKind() != k {
			return fmt.Errorf("%s: kind %s, want %s", a.GetName(), a.GetKind(), k)
		}
		if k == read && !a.GetIdempotent() {
			return fmt.Errorf("%s: a read is idempotent", a.GetName())
		}
	}
	if len(want) > 0 {
		return fmt.Errorf("Describe lacks %v", mapKeys(want))
	}
	if !slices.IsSorted(names) {
		return fmt.Errorf("actions not sorted by name: %v", names)
	}
	return nil
}

func describeNeedsKey(e *env) error {
	cc, err := e.conn()
	if err != nil {
		return err
	}
	for _, key := range []string{"", "not-the-key"} {
		_, err := socketv1.NewSocketServiceClient(cc).Describe(withKey(e.ctx, key), &socketv1.DescribeRequest{})
		if status.Code(err) != codes.Unauthenticated {
			return fmt.Errorf("Describe with key %q: want UNAUTHENTICATED, got %v", key, err)
		}
	}
	return nil
}

func healthServing(e *env) error {
	cc, err := e.conn()
	if err != nil {
		return err
	}
	for _, svc := range []string{"", socketv1.SocketService_ServiceDesc.ServiceName} {
		r, err := healthpb.NewHealthClient(cc).Check(e.ctx, &healthpb.HealthCheckRequest{Service: svc})
		if err != nil {
			return fmt.Errorf("health of %q (without a key): %v", svc, err)
		}
		if r.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			return fmt.Errorf("health of %q: %s, want SERVING", svc, r.GetStatus())
		}
	}
	return nil
}

// --- §10 events

func patternSubscription(e *env) error {
	st, err := e.open(e.cfg.Key, false)
	if err != nil {
		return err
	}
	pattern := e.prefix + "/pat/*"
	if err := e.subscribe(st, pattern); err != nil {
		return err
	}
	deep, other := e.prefix+"/pat/x/1", e.prefix+"/other"
	if err := e.publish(st, other, 1, nil, nil); err != nil {
		return err
	}
	if err := e.publish(st, deep, 2, "d", map[string]any{"public": true}); err != nil {
		return err
	}
	for seq := uint64(1); seq <= 2; seq++ {
		ev, err := e.event(st, deep, seq)
		if err != nil {
			return err
		}
		if !ev.GetVisibility().GetPublic() {
			return fmt.Errorf("event %d: want visibility public", seq)
		}
	}
	for _, f := range st.stash {
		if f.GetEvent().GetTopic() == other {
			return fmt.Errorf("the pattern %s delivered an event of %s", pattern, other)
		}
	}
	return nil
}

// --- §11 limits and drain

func bodyTooLarge(e *env) error {
	st, err := e.open(e.cfg.Key, false)
	if err != nil {
		return err
	}
	body := make([]byte, maxBody+1)
	for i := range body {
		body[i] = ' '
	}
	copy(body, `"big"`)
	resp, err := st.call(e.ctx, req("ECHO", "", body))
	if err != nil {
		return err
	}
	if err := wantError(resp, "INVALID_ARGUMENT", "body_too_large"); err != nil {
		return err
	}
	// At the limit it runs.
	resp, err = st.call(e.ctx, req("ECHO", "", body[:maxBody]))
	if err != nil {
		return err
	}
	if err := result(resp, new(any)); err != nil {
		return fmt.Errorf("a body of exactly %d bytes: %w", maxBody, err)
	}
	return nil
}

func frameTooLarge(e *env) error {
	cc, err := e.conn()
	if err != nil {
		return err
	}
	st, err := e.openOn(cc, e.cfg.Key, false)
	if err != nil {
		return err
	}
	body := make([]byte, maxFrame+1024)
	for i := range body {
		body[i] = ' '
	}
	copy(body, `"big"`)
	if _, err := st.request(req("ECHO", "", body)); err != nil {
		return err
	}
	err = st.end(e.ctx)
	if status.Code(err) != codes.ResourceExhausted {
		return fmt.Errorf("a frame over %d bytes: want the stream ended with RESOURCE_EXHAUSTED, got %v", maxFrame, err)
	}
	other, err := e.openOn(cc, e.cfg.Key, false)
	if err != nil {
		return err
	}
	return e.roundTrip(other)
}

func inFlightBound(e *env) error {
	st, err := e.open(e.cfg.Key, false)
	if err != nil {
		return err
	}
	const extra = 8
	var ids []uint64
	for range streamInFlight + extra {
		id, err := st.request(req("SLOW", "", map[string]int{"ms": 30000}))
		if err != nil {
			return err
		}
		ids = append(ids, id)
	}
	refused := 0
	for range extra {
		f, err := st.await(e.ctx, func(f *socketv1.ConnectResponse) bool { return f.GetResponse() != nil })
		if err != nil {
			return fmt.Errorf("%d SLOWs on one stream: want %d refused, got %d: %w", len(ids), extra, refused, err)
		}
		r := f.GetResponse()
		if err := wantError(r, "RESOURCE_EXHAUSTED", ""); err != nil {
			return fmt.Errorf("request %d: %w", r.GetId(), err)
		}
		if r.GetId() <= streamInFlight {
			return fmt.Errorf("request %d refused while under the bound of %d", r.GetId(), streamInFlight)
		}
		refused++
	}
	for _, id := range ids[:streamInFlight] {
		if err := st.send(&socketv1.ConnectRequest{Frame: &socketv1.ConnectRequest_Cancel{Cancel: &socketv1.Cancel{Id: id}}}); err != nil {
			return err
		}
	}
	// A slot is free once its cancelled handler has returned: the stream
	// takes requests again soon after (polled: there is no signal).
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		resp, err := st.call(e.ctx, req("ECHO", "after", nil))
		if err != nil {
			return err
		}
		if resp.GetError().GetCode() != "RESOURCE_EXHAUSTED" {
			return result(resp, new(any))
		}
		select {
		case <-e.ctx.Done():
			return errors.New("the stream still refuses requests after the requests in flight were cancelled")
		case <-tick.C:
		}
	}
}

func drain(e *env) error {
	st, err := e.open(e.cfg.Key, false)
	if err != nil {
		return err
	}
	slow, err := st.request(req("SLOW", "", map[string]int{"ms": 1500}))
	if err != nil {
		return err
	}
	if err := e.roundTrip(st); err != nil {
		return err
	}
	d, err := st.request(req("DRAIN", "", nil))
	if err != nil {
		return err
	}
	resp, err := st.response(e.ctx, d)
	if err != nil {
		return err
	}
	var got struct {
		Draining bool `json:"draining"`
	}
	if err := result(resp, &got); err != nil || !got.Draining {
		return fmt.Errorf("DRAIN: want {\"draining\": true}, got %v %v", got, err)
	}
	if _, err := st.await(e.ctx, func(f *socketv1.ConnectResponse) bool { return f.GetDrain() != nil }); err != nil {
		return fmt.Errorf("waiting for the drain frame: %w", err)
	}
	late, err := st.call(e.ctx, req("COUNT", "", map[string]string{"name": e.prefix + "-late"}))
	if err != nil {
		return err
	}
	if err := wantError(late, "UNAVAILABLE", "draining"); err != nil {
		return fmt.Errorf("a request after the drain frame: %w", err)
	}
	cc, err := e.conn()
	if err != nil {
		return err
	}
	h, err := healthpb.NewHealthClient(cc).Check(e.ctx, &healthpb.HealthCheckRequest{})
	if err == nil && h.GetStatus() == healthpb.HealthCheckResponse_SERVING {
		return errors.New("health is SERVING while draining")
	}
	if err := wantRefusalOrGone(e, cc); err != nil {
		return err
	}
	r, err := st.response(e.ctx, slow)
	if err != nil {
		return fmt.Errorf("the SLOW in flight: %w", err)
	}
	var slept struct {
		SleptMs int `json:"slept_ms"`
	}
	if err := result(r, &slept); err != nil || slept.SleptMs != 1500 {
		return fmt.Errorf("the SLOW in flight: want slept_ms 1500, got %v %v", slept, err)
	}
	if err := st.close(); err != nil {
		return err
	}
	if err := st.end(e.ctx); err != nil {
		return fmt.Errorf("after the half-close the stream ends OK: %v", err)
	}
	return nil
}

// wantRefusalOrGone checks that a new stream is refused (UNAVAILABLE)
// while the service drains.
func wantRefusalOrGone(e *env, cc *grpc.ClientConn) error {
	st, err := e.openOn(cc, e.cfg.Key, false)
	if err != nil {
		if status.Code(err) == codes.Unavailable {
			return nil
		}
		return fmt.Errorf("a new stream while draining: %v", err)
	}
	if err := wantRefusal(e.ctx, st, codes.Unavailable); err != nil {
		return fmt.Errorf("a new stream while draining: %w", err)
	}
	return nil
}

func mapKeys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
