package conformance

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	socketv1 "github.com/streamgate/streamgate/gen/streamgate/socket/v1"
)

// --- §8 coalescing

func readsCoalesced(e *env, st *stream) error {
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

func writesNotMerged(e *env, st *stream) error {
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

// describe asks the fixture to Describe itself, with its key.
func (e *env) describe() (*socketv1.DescribeResponse, error) {
	cc, err := e.conn()
	if err != nil {
		return nil, err
	}
	d, err := socketv1.NewSocketServiceClient(cc).Describe(withKey(e.ctx, e.cfg.Key), &socketv1.DescribeRequest{})
	if err != nil {
		return nil, fmt.Errorf("describe: %w", err)
	}
	return d, nil
}

func describeCatalogue(e *env) error {
	d, err := e.describe()
	if err != nil {
		return err
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
		return fmt.Errorf("the catalogue lacks %v", mapKeys(want))
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
			return fmt.Errorf("describe with key %q: want UNAUTHENTICATED, got %w", key, err)
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
			return fmt.Errorf("health of %q (without a key): %w", svc, err)
		}
		if r.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			return fmt.Errorf("health of %q: %s, want SERVING", svc, r.GetStatus())
		}
	}
	return nil
}

// --- §10 events

func patternSubscription(e *env) error {
	st, pattern, err := e.subscribed("/pat/*")
	if err != nil {
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

func bodyTooLarge(e *env, st *stream) error {
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
	body := make([]byte, maxFrame+1024)
	for i := range body {
		body[i] = ' '
	}
	copy(body, `"big"`)
	return e.endsOneStream(func(st *stream) error {
		_, err := st.request(req("ECHO", "", body))
		return err
	}, func(end error) error {
		if status.Code(end) != codes.ResourceExhausted {
			return fmt.Errorf("a frame over %d bytes: want the stream ended with RESOURCE_EXHAUSTED, got %w", maxFrame, end)
		}
		return nil
	})
}

func inFlightBound(e *env, st *stream) error {
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

func drain(e *env, st *stream) error {
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
	got, err := answerTo[struct {
		Draining bool `json:"draining"`
	}](e.ctx, st, d, "DRAIN")
	if err != nil {
		return err
	}
	if !got.Draining {
		return errors.New(`DRAIN: want {"draining": true}`)
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
	if err := wantSlept(e.ctx, st, slow, 1500, "the SLOW in flight"); err != nil {
		return err
	}
	if err := st.close(); err != nil {
		return err
	}
	if err := st.end(e.ctx); err != nil {
		return fmt.Errorf("after the half-close the stream ends OK: %w", err)
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
		return fmt.Errorf("a new stream while draining: %w", err)
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

// slowCaller checks §11.3: a caller that stops reading holds up only its
// own stream. One stream, kept at HTTP/2's smallest window and never read,
// sends far more answers' worth of ECHOs than the window and any send
// queue hold; meanwhile another stream's requests are answered, and once
// the slow caller reads again every one of its answers arrives.
func slowCaller(e *env) error {
	slow, err := e.open(e.cfg.Key, true, windowOptions()...)
	if err != nil {
		return err
	}
	const n = 200 // 200 answers of 16 KiB: 3 MiB, far beyond the 64 KiB window
	body, _ := json.Marshal(map[string]string{"pad": strings.Repeat("x", 16<<10)})
	// The service may stop reading the slow stream too (flow control):
	// its requests go out from a goroutine of their own, which the
	// answers unblock once the caller reads again.
	sent := make(chan error, 1)
	go func() {
		for i := range n {
			r := req("ECHO", fmt.Sprint("slow-", i), body)
			r.Id = uint64(i + 1)
			if _, err := slow.request(r); err != nil {
				sent <- fmt.Errorf("slow caller, request %d: %w", i, err)
				return
			}
		}
		sent <- nil
	}()
	ids := make(map[uint64]bool, n)
	for i := range n {
		ids[uint64(i+1)] = true
	}
	other, err := e.open(e.cfg.Key, false)
	if err != nil {
		return err
	}
	for i := range 5 {
		resp, err := other.call(e.ctx, req("ECHO", fmt.Sprint("other-", i), map[string]int{"i": i}))
		if err != nil {
			return fmt.Errorf("another stream while one caller does not read: %w", err)
		}
		if !resp.GetOk() {
			return fmt.Errorf("another stream while one caller does not read: %s", describeError(resp.GetError()))
		}
	}
	slow.read()
	for len(ids) > 0 {
		f, err := slow.await(e.ctx, func(f *socketv1.ConnectResponse) bool { return f.GetResponse() != nil })
		if err != nil {
			return fmt.Errorf("the slow caller, reading again, got %d of %d answers: %w", n-len(ids), n, err)
		}
		r := f.GetResponse()
		if !ids[r.GetId()] {
			return fmt.Errorf("an answer to request %d, which was not sent or was answered twice", r.GetId())
		}
		if !r.GetOk() && r.GetError().GetCode() != "RESOURCE_EXHAUSTED" {
			return fmt.Errorf("the slow caller's request %d: %s (want its answer, or RESOURCE_EXHAUSTED)", r.GetId(), describeError(r.GetError()))
		}
		delete(ids, r.GetId())
	}
	return <-sent
}
