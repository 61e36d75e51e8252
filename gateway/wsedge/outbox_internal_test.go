package wsedge

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/goleak"

	"github.com/streamgate/streamgate/gateway/observe"
)

// corkedPair is a real WebSocket over loopback: the server's side
// accepted through corkWriter (as Serve does), and the client's.
type corkedPair struct {
	server *websocket.Conn
	cork   *corkConn
	client *websocket.Conn
}

// newCorkedPair connects a client to a server that accepts through
// corkWriter; both are closed at cleanup.
func newCorkedPair(t *testing.T) corkedPair {
	t.Helper()
	accepted := make(chan corkedPair, 1)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cw := &corkWriter{ResponseWriter: w}
		ws, err := websocket.Accept(cw, r, nil)
		if err != nil {
			t.Errorf("accept: %v", err)
			return
		}
		accepted <- corkedPair{server: ws, cork: cw.conn}
	}))
	t.Cleanup(ts.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	client, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(ts.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	client.SetReadLimit(1 << 20)
	p := <-accepted
	p.client = client
	t.Cleanup(func() { _ = client.CloseNow(); _ = p.server.CloseNow() })
	if p.cork == nil {
		t.Fatal("Accept did not hijack through corkWriter")
	}
	return p
}

// startOutbox makes an outbox on the pair's server side whose writer
// starts when the returned func is called; conflated counts the events
// it reports skipped.
func startOutbox(t *testing.T, p corkedPair, conflated *atomic.Int64) (*outbox, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	report := func(e observe.ConnEvent) {
		if e.Kind == observe.EventConflated {
			conflated.Add(1)
		}
	}
	o := newOutbox(ctx, p.server, p.cork, Limits{}.withDefaults(1<<20), newCloser(), report)
	t.Cleanup(func() { cancel(); <-o.done })
	return o, func() { go o.writeLoop() }
}

// readFrames reads n frames from the client side.
func readFrames(t *testing.T, c *websocket.Conn, n int) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var got []string
	for range n {
		_, b, err := c.Read(ctx)
		if err != nil {
			t.Fatalf("after %d frames: %v", len(got), err)
		}
		got = append(got, string(b))
	}
	return got
}

// Frames queued while the writer is busy go out with one write to the
// connection per corkLimit bytes, not one per frame, and arrive intact
// and in order through a real client.
func TestQueuedFramesCoalesceIntoFewWrites(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name   string
		n      int
		size   int
		writes int // at most
	}{
		{"small", 200, 40, 1},
		{"past the cork limit", 100, 4 << 10, 100 * (4<<10 + 4) / corkLimit},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := newCorkedPair(t)
			var conflated atomic.Int64
			o, start := startOutbox(t, p, &conflated)
			var want []string
			pad := strings.Repeat("x", tt.size)
			for i := range tt.n {
				switch i % 3 {
				case 0:
					want = append(want, fmt.Sprintf(`{"type":"response","id":%d,"pad":%q}`, i, pad))
					o.answer([]byte(want[i]))
				case 1:
					want = append(want, string(eventFrame(fmt.Sprintf("items/i%d", i), 1, "", []byte(`"`+pad+`"`))))
					o.conflate(fmt.Sprintf("items/i%d", i), []byte(want[i]), 0) // one event per topic: nothing to replace
				default:
					want = append(want, string(gapFrame(fmt.Sprintf("items/i%d", i), 1, "")))
					o.event(fmt.Sprintf("items/i%d", i), []byte(want[i]))
				}
			}
			before := p.cork.writeCount()
			start()
			got := readFrames(t, p.client, tt.n)
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("frame %d:\n%.100s\nwant\n%.100s", i, got[i], want[i])
				}
			}
			if w := p.cork.writeCount() - before; w > tt.writes || w >= tt.n {
				t.Fatalf("%d frames took %d writes, want at most %d", tt.n, w, tt.writes)
			}
			if conflated.Load() != 0 {
				t.Fatalf("%d conflated, want 0", conflated.Load())
			}
		})
	}
}

// busyWriter marks o's writer as writing an earlier batch to a client
// that is behind (take sets it; no writer runs in these tests until
// start).
func busyWriter(o *outbox) {
	o.mu.Lock()
	o.writing = true
	o.mu.Unlock()
}

// seqEvent is an event frame of topic at seq whose data is its seq.
func seqEvent(topic string, seq uint64) []byte {
	return eventFrame(topic, seq, "", fmt.Appendf(nil, `{"seq":%d}`, seq))
}

// While the writer is behind (writing an earlier batch), an event of a
// topic whose previous event is still queued replaces it and counts it
// skipped; a gap marker ends the topic's slot, so the events after it
// queue anew and order is kept; other topics are apart. Each topic's
// events delivered plus skipped are the events queued.
func TestConflatedEventsReplaceQueuedOnes(t *testing.T) {
	t.Parallel()
	p := newCorkedPair(t)
	var conflated atomic.Int64
	o, start := startOutbox(t, p, &conflated)
	busyWriter(o)
	ev := seqEvent
	for seq := uint64(1); seq <= 40; seq++ {
		o.conflate("items/a", ev("items/a", seq), 0)
	}
	o.conflate("items/b", ev("items/b", 1), 0)
	o.event("items/a", gapFrame("items/a", 41, ""))
	for seq := uint64(42); seq <= 100; seq++ {
		o.conflate("items/a", ev("items/a", seq), 0)
	}
	o.conflate("items/b", ev("items/b", 2), 0)
	o.conflate("items/b", ev("items/b", 3), 0)
	start()
	want := []string{
		`{"type":"event","skipped":39,"topic":"items/a","seq":40,"data":{"seq":40}}`,
		`{"type":"event","skipped":2,"topic":"items/b","seq":3,"data":{"seq":3}}`,
		`{"type":"gap","topic":"items/a","seq":41}`,
		`{"type":"event","skipped":58,"topic":"items/a","seq":100,"data":{"seq":100}}`,
	}
	got := readFrames(t, p.client, len(want))
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if n := conflated.Load(); n != 39+2+58 {
		t.Fatalf("%d conflated, want %d", n, 39+2+58)
	}
	// Once written, the topic's next event is queued anew, as it is.
	o.conflate("items/a", ev("items/a", 101), 0)
	if got := readFrames(t, p.client, 1); got[0] != string(ev("items/a", 101)) {
		t.Fatalf("after the batch: %s", got[0])
	}
}

// Events that merely come before the writer is scheduled are not
// conflated: a writer that is not behind an earlier batch has skipped
// nothing, so a client that keeps up gets every state (the JS client's
// "every change of an item arrives" lost state 12 of 11, 12, 13 when
// any queued event was replaced).
func TestEventsBeforeTheWriterRunsAreAllQueued(t *testing.T) {
	t.Parallel()
	p := newCorkedPair(t)
	var conflated atomic.Int64
	o, start := startOutbox(t, p, &conflated)
	var want []string
	for seq := uint64(11); seq <= 13; seq++ {
		o.conflate("items/a", seqEvent("items/a", seq), 0)
		want = append(want, string(seqEvent("items/a", seq)))
	}
	start()
	got := readFrames(t, p.client, len(want))
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if n := conflated.Load(); n != 0 {
		t.Fatalf("%d conflated, want 0", n)
	}
}

// A conflated event's frame is the shared frame with "skipped" after the
// type; the shared frame is left as it is.
func TestWithSkipped(t *testing.T) {
	t.Parallel()
	frame := eventFrame("orders/o1", 42, "ep", []byte(`{"id":"o1"}`))
	orig := string(frame)
	for _, tt := range []struct {
		frame string
		n     int
		want  string
	}{
		{orig, 1, `{"type":"event","skipped":1,"topic":"orders/o1","seq":42,"epoch":"ep","data":{"id":"o1"}}`},
		{orig, 12345, `{"type":"event","skipped":12345,"topic":"orders/o1","seq":42,"epoch":"ep","data":{"id":"o1"}}`},
		{`{"type":"gap","topic":"orders/o1","seq":3}`, 2, `{"type":"gap","topic":"orders/o1","seq":3}`},
	} {
		f := []byte(tt.frame)
		if got := string(withSkipped([]byte("junk")[:0], f, tt.n)); got != tt.want {
			t.Errorf("withSkipped(%s, %d) = %s, want %s", tt.frame, tt.n, got, tt.want)
		}
	}
	if string(frame) != orig {
		t.Fatalf("the shared frame changed: %s", frame)
	}
}

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// A client whose conflated event waited Stall with no frame written
// meanwhile does not read: the next event of the topic cuts it off
// (4408). One that took a frame meanwhile is slow, not stopped.
func TestConflatedSlotStalledCutsOff(t *testing.T) {
	t.Parallel()
	for _, reading := range []bool{false, true} {
		t.Run(fmt.Sprintf("reading=%v", reading), func(t *testing.T) {
			t.Parallel()
			var cutOffs atomic.Int64
			report := func(e observe.ConnEvent) {
				if e.Kind == observe.SocketCutOff {
					cutOffs.Add(1)
				}
			}
			o := newOutbox(context.Background(), nil, nil, Limits{}.withDefaults(0), newCloser(), report)
			busyWriter(o) // stuck writing to a client that does not read
			o.conflate("items/a", eventFrame("items/a", 1, "", nil), 0)
			o.mu.Lock()
			o.queue[0].queuedAt = time.Now().Add(-o.stall) // queued Stall ago (no writer runs here)
			o.mu.Unlock()
			if reading {
				o.written.Add(1)
			}
			o.conflate("items/a", eventFrame("items/a", 2, "", nil), 0)
			if got, want := o.closer.asked(), !reading; got != want || cutOffs.Load() != map[bool]int64{true: 1}[want] {
				t.Fatalf("cut off %v (%d reported), want %v", got, cutOffs.Load(), want)
			}
			if n := len(o.queue); n != 1 || o.queue[0].skipped != 1 {
				t.Fatalf("queue %d entries, skipped %d; want 1, 1", n, o.queue[0].skipped)
			}
		})
	}
}
