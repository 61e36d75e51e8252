package natsserve_test

import (
	"context"
	"encoding/json"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/goleak"
	"google.golang.org/grpc/connectivity"

	"github.com/streamgate/streamgate/internal/natstest"
	"github.com/streamgate/streamgate/services/socket"
	"github.com/streamgate/streamgate/services/socket/caller"
	"github.com/streamgate/streamgate/services/socket/natsserve"
	"github.com/streamgate/streamgate/services/socket/sockettest"
	"github.com/streamgate/streamgate/status"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// instance is one server of the test service "notes", served over NATS.
type instance struct {
	served atomic.Int64 // GET_NOTE runs
	stop   func()       // drains the server and waits for Serve
}

// notes is the test service's shared store: PUT_NOTE records its outcome
// by idempotency key, as a real service's store would.
type notes struct {
	mu    sync.Mutex
	byKey map[string]string
	runs  atomic.Int64 // PUT_NOTE runs that acted
}

// startNotes serves the test service over nc (and over a loopback stream
// when withStream) until the test ends.
func startNotes(t *testing.T, nc *nats.Conn, store *notes, withStream bool) *instance {
	t.Helper()
	return startNamed(t, "notes", nc, store, withStream)
}

// startNamed is startNotes for a service of another name: tests on a
// shared NATS server serve a name of their own.
func startNamed(t *testing.T, name string, nc *nats.Conn, store *notes, withStream bool) *instance {
	t.Helper()
	srv, err := socket.NewServer(socket.Config{Name: name, Version: "1.2.0"}, socket.WithKeys(sockettest.Keys(t)), socket.WithDrainTimeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	in := &instance{}
	must(t, srv.Handle("GET_NOTE", socket.Typed(func(ctx context.Context, id string, _ struct{}) (map[string]string, error) {
		in.served.Add(1)
		return map[string]string{"id": id, "by": socket.MetaFrom(ctx).Caller}, nil
	}), socket.Read(), socket.Idempotent(), socket.CacheTTL(time.Minute), socket.Doc("A note.")))
	must(t, srv.Handle("WAIT", socket.HandlerFunc(func(ctx context.Context, _ *socket.Request) (json.RawMessage, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	}), socket.Read()))
	must(t, srv.Handle("PUT_NOTE", socket.HandlerFunc(func(ctx context.Context, req *socket.Request) (json.RawMessage, error) {
		store.mu.Lock()
		defer store.mu.Unlock()
		key := socket.MetaFrom(ctx).IdempotencyKey
		if prev, ok := store.byKey[key]; ok && key != "" {
			socket.MarkReplayed(ctx)
			return json.RawMessage(prev), nil
		}
		store.runs.Add(1)
		store.byKey[key] = string(req.Body)
		return req.Body, nil
	}), socket.Idempotent()))
	var lis net.Listener
	if withStream {
		if lis, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
	}
	in.stop = serve(t, srv, nc, lis)
	natstest.WaitService(t, nc, name, 1, 3)
	return in
}

// serve serves srv over nc (and lis, when not nil) until the returned
// stop, which the test's cleanup calls too, drains it.
func serve(t *testing.T, srv *socket.Server, nc *nats.Conn, lis net.Listener) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, natsserve.Listen(nc, lis)) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Serve: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func dial(t *testing.T, nc *nats.Conn, key string) *caller.Client {
	t.Helper()
	return dialNamed(t, "notes", nc, key)
}

func dialNamed(t *testing.T, name string, nc *nats.Conn, key string) *caller.Client {
	t.Helper()
	c, err := caller.Dial(name, caller.WithNATS(nc), caller.WithKey(key))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func newNotes() *notes { return &notes{byKey: map[string]string{}} }

func TestRequestAndDescribeOverNATS(t *testing.T) {
	url := natstest.Embedded(t)
	startNotes(t, natstest.Connect(t, url), newNotes(), false)
	nc := natstest.Connect(t, url)
	c := dial(t, nc, sockettest.TestKey)
	ctx := sockettest.Context(t)
	got, err := caller.Call[map[string]string](ctx, c, "GET_NOTE", "n1", nil)
	if err != nil {
		t.Fatal(err)
	}
	if st := c.State(); st != connectivity.Ready {
		t.Errorf("State after an answer: %v; want Ready", st)
	}
	if got["id"] != "n1" || got["by"] != "test" {
		t.Errorf("GET_NOTE = %v; want id n1 by test", got)
	}
	infos, err := c.Describe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	g := infos["GET_NOTE"]
	if !g.Read || !g.Idempotent || g.CacheTTL != time.Minute || g.Doc != "A note." {
		t.Errorf("Describe GET_NOTE = %+v", g)
	}
	if p, ok := infos["PUT_NOTE"]; !ok || p.Read || !p.Idempotent {
		t.Errorf("Describe PUT_NOTE = %+v, %v", p, ok)
	}
	// The client's request replies share one subscription: a hundred
	// requests leave the connection's subscriptions as they were.
	before := nc.NumSubscriptions()
	for range 100 {
		if _, err := c.Request(ctx, "GET_NOTE", "n2", nil); err != nil {
			t.Fatal(err)
		}
	}
	if after := nc.NumSubscriptions(); after != before {
		t.Errorf("subscriptions: %d after 100 requests, %d before", after, before)
	}
}

func TestStreamBesideNATS(t *testing.T) {
	url := natstest.Embedded(t)
	startNotes(t, natstest.Connect(t, url), newNotes(), true)
	c := dial(t, natstest.Connect(t, url), sockettest.TestKey)
	if _, err := c.Request(sockettest.Context(t), "GET_NOTE", "n1", nil); err != nil {
		t.Fatal(err)
	}
}

func TestBadKeyIsRefused(t *testing.T) {
	url := natstest.Embedded(t)
	startNotes(t, natstest.Connect(t, url), newNotes(), false)
	nc := natstest.Connect(t, url)
	// As with a stream that the key cannot open, the service has no
	// instance for this client; the refusal is the cause.
	for _, key := range []string{"wrong-secret", ""} {
		_, err := dial(t, nc, key).Request(sockettest.Context(t), "GET_NOTE", "n1", nil)
		e := sockettest.WantCode(t, err, status.CodeUnavailable)
		if status.CodeOf(e.Unwrap()) != status.CodeUnauthenticated {
			t.Errorf("key %q: cause %v; want the service's UNAUTHENTICATED", key, e.Unwrap())
		}
	}
	_, err := dial(t, nc, sockettest.ReaderKey).Request(sockettest.Context(t), "GET_NOTE", "n1", nil)
	sockettest.WantCode(t, err, status.CodePermissionDenied)
}

func TestNoRespondersFailsAtOnce(t *testing.T) {
	c := dial(t, natstest.Connect(t, natstest.Embedded(t)), sockettest.TestKey)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	_, err := c.Request(ctx, "GET_NOTE", "n1", nil)
	e := sockettest.WantCode(t, err, status.CodeUnavailable)
	if e.Details[socket.DetailReason] != socket.ReasonNoReadyInstance {
		t.Errorf("details %v; want reason %s", e.Details, socket.ReasonNoReadyInstance)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("a request with a 10s deadline took %v to fail with no responders", took)
	}
	if st := c.State(); st != connectivity.TransientFailure {
		t.Errorf("State after no responders: %v; want TransientFailure", st)
	}
}

func TestDeadlineBecomesTimeout(t *testing.T) {
	url := natstest.Embedded(t)
	startNotes(t, natstest.Connect(t, url), newNotes(), false)
	c := dial(t, natstest.Connect(t, url), sockettest.TestKey)
	if _, err := c.Describe(sockettest.Context(t)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.Request(ctx, "WAIT", "", nil)
	sockettest.WantCode(t, err, status.CodeDeadlineExceeded)
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("a request with a 300ms deadline took %v", took)
	}
}

func TestIdempotentWriteReplayed(t *testing.T) {
	url := natstest.Embedded(t)
	store := newNotes()
	startNotes(t, natstest.Connect(t, url), store, false)
	c := dial(t, natstest.Connect(t, url), sockettest.TestKey)
	ctx := caller.ContextWithMeta(sockettest.Context(t), socket.Meta{IdempotencyKey: "put-n1"})
	first, err := c.Do(ctx, "PUT_NOTE", "n1", map[string]string{"text": "hi"})
	if err != nil || first.Replayed {
		t.Fatalf("first PUT_NOTE: %+v, %v; want a fresh run", first, err)
	}
	again, err := c.Do(ctx, "PUT_NOTE", "n1", map[string]string{"text": "hi"})
	if err != nil || !again.Replayed || string(again.Result) != string(first.Result) {
		t.Fatalf("second PUT_NOTE: %+v, %v; want the replayed %s", again, err, first.Result)
	}
	if n := store.runs.Load(); n != 1 {
		t.Errorf("PUT_NOTE acted %d times; want 1", n)
	}
}

func TestInstancesShareTheLoad(t *testing.T) {
	url := natstest.Embedded(t)
	store := newNotes()
	a := startNotes(t, natstest.Connect(t, url), store, false)
	b := startNotes(t, natstest.Connect(t, url), store, false)
	nc := natstest.Connect(t, url)
	natstest.WaitService(t, nc, "notes", 2, 3)
	c := dial(t, nc, sockettest.TestKey)
	ctx := sockettest.Context(t)
	read := func(n int) {
		t.Helper()
		var wg sync.WaitGroup
		var failed atomic.Int64
		for i := range n {
			wg.Go(func() {
				if _, err := c.Request(ctx, "GET_NOTE", string(rune('a'+i%26)), nil); err != nil {
					failed.Add(1)
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if f := failed.Load(); f > 0 {
			t.Fatalf("%d of %d idempotent reads failed", f, n)
		}
	}
	read(200)
	if a.served.Load() == 0 || b.served.Load() == 0 {
		t.Fatalf("served: %d and %d; want both instances to take requests", a.served.Load(), b.served.Load())
	}
	// One instance goes away while reads keep coming: none is lost.
	stopped := make(chan struct{})
	go func() { a.stop(); close(stopped) }()
	read(200)
	<-stopped
	before := b.served.Load()
	read(100)
	if got := b.served.Load() - before; got < 1 {
		t.Errorf("the remaining instance served %d of the last reads", got)
	}
}

func TestExternalServer(t *testing.T) {
	url := natstest.External(t)
	name := natstest.UniqueName("notes")
	startNamed(t, name, natstest.Connect(t, url), newNotes(), false)
	c := dialNamed(t, name, natstest.Connect(t, url), sockettest.TestKey)
	if _, err := c.Request(sockettest.Context(t), "GET_NOTE", "n1", nil); err != nil {
		t.Fatal(err)
	}
	_, err := dialNamed(t, name, natstest.Connect(t, url), "wrong-secret").Request(sockettest.Context(t), "GET_NOTE", "n1", nil)
	sockettest.WantCode(t, err, status.CodeUnavailable)
}

// Serving and stopping ten times over one connection leaves it with the
// subscriptions it had: the endpoints' and micro's own are drained and
// gone (goleak, in TestMain, checks the goroutines).
func TestServeLeavesNoSubscription(t *testing.T) {
	url := natstest.Embedded(t)
	nc := natstest.Connect(t, url)
	base := nc.NumSubscriptions()
	c := dial(t, natstest.Connect(t, url), sockettest.TestKey)
	for range 10 {
		in := startNotes(t, nc, newNotes(), false)
		if _, err := c.Request(sockettest.Context(t), "GET_NOTE", "n1", nil); err != nil {
			t.Fatal(err)
		}
		in.stop()
	}
	// A drained subscription goes once the client has delivered what it
	// holds, which the NATS client checks after a round trip: each try here is
	// one.
	ctx := sockettest.Context(t)
	for nc.NumSubscriptions() != base {
		if err := nc.FlushWithContext(ctx); err != nil {
			t.Fatalf("%d subscriptions left after serving; %d before: %v", nc.NumSubscriptions(), base, err)
		}
	}
}

// A service whose name cannot name a micro service is refused at Serve.
func TestServeRefusesANameNATSCannotCarry(t *testing.T) {
	srv, err := socket.NewServer(socket.Config{Name: "shop.notes"}, socket.WithoutAuth())
	if err != nil {
		t.Fatal(err)
	}
	sockettest.RegisterEcho(t, srv)
	err = srv.Serve(context.Background(), natsserve.Listen(natstest.Connect(t, natstest.Embedded(t)), nil))
	if err == nil || !strings.Contains(err.Error(), `"shop.notes" cannot travel over NATS`) {
		t.Fatalf("Serve: %v; want the name refused", err)
	}
}

// An action the service does not have is NOT_FOUND, as on a stream; a
// frame over NATS's payload limit is refused unsent.
func TestUnknownActionAndOversizedFrame(t *testing.T) {
	url := natstest.Embedded(t)
	startNotes(t, natstest.Connect(t, url), newNotes(), false)
	nc := natstest.Connect(t, url)
	c := dial(t, nc, sockettest.TestKey)
	_, err := c.Request(sockettest.Context(t), "NO_SUCH_ACTION", "1", nil)
	sockettest.WantCode(t, err, status.CodeNotFound)
	big := strings.Repeat("x", int(nc.MaxPayload())+1)
	_, err = c.Request(sockettest.Context(t), "PUT_NOTE", "1", map[string]string{"text": big})
	sockettest.WantCode(t, err, status.CodeInvalidArgument)
}
