package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/streamgate/streamgate/gateway"
)

// burstAnswers sends n request frames in one burst (frame i has id i and
// the path path(i)) while a reader takes every frame as it comes; it
// returns the answers in the order they came, or fails when the socket
// closes before every request has its answer.
func burstAnswers(t *testing.T, s *socketSystem, n int, path func(i int) string, onFrame func(frame)) []frame {
	t.Helper()
	c := dialSocket(t, s.socketURL("v1"), bearer(aliceKey)...)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	frames := make(chan frame, n)
	readErr := make(chan error, 1)
	go func() {
		for range n {
			_, b, err := c.c.Read(ctx)
			if err != nil {
				readErr <- err
				return
			}
			var f frame
			if err := json.Unmarshal(b, &f); err != nil {
				readErr <- fmt.Errorf("frame %s: %w", b, err)
				return
			}
			f.raw = string(b)
			if onFrame != nil {
				onFrame(f)
			}
			frames <- f
		}
		readErr <- nil
	}()
	sendErr := make(chan error, 1)
	go func() {
		for i := range n {
			frame := fmt.Sprintf(`{"type":"request","id":%d,"method":"GET","path":%q}`, i, path(i))
			if err := c.c.Write(ctx, websocket.MessageText, []byte(frame)); err != nil {
				sendErr <- fmt.Errorf("sending request %d: %w", i, err)
				return
			}
		}
		sendErr <- nil
	}()
	if err := <-readErr; err != nil {
		t.Fatalf("after %d answers of %d (close code %d, cut-offs %v): %v", len(frames), n,
			websocket.CloseStatus(err), s.metric(t, "streamgate_gateway_socket_cutoffs_total"), err)
	}
	if err := <-sendErr; err != nil {
		t.Fatal(err)
	}
	close(frames)
	var out []frame
	for f := range frames {
		out = append(out, f)
	}
	return out
}

// answerIDs checks that every request 0..n-1 has exactly one answer, each
// 200 or 429 too_many_in_flight, and returns the ids answered 429 in the
// order their answers came.
func answerIDs(t *testing.T, answers []frame, n int) (refused []int) {
	t.Helper()
	seen := make([]bool, n)
	for _, f := range answers {
		id, err := strconv.Atoi(string(f.ID))
		if f.Type != "response" || err != nil || id < 0 || id >= n {
			t.Fatalf("unexpected frame %s", f.raw)
		}
		if seen[id] {
			t.Fatalf("request %d answered twice: %s", id, f.raw)
		}
		seen[id] = true
		switch {
		case f.Status == 200:
		case f.Status == 429 && f.Error != nil && f.Error.Details["reason"] == "too_many_in_flight":
			refused = append(refused, id)
		default:
			t.Fatalf("request %d: %s", id, f.raw)
		}
	}
	for id, ok := range seen {
		if !ok {
			t.Fatalf("request %d has no answer", id)
		}
	}
	return refused
}

// A client that reads all the time is never cut off (4408), however many
// requests it sends at once: those over the in-flight bound are answered
// 429, in the order they were sent, and every request has exactly one
// answer.
func TestSocketBurstOfRequestsWhileReading(t *testing.T) {
	t.Parallel()
	for _, n := range []int{400, 2000, 5000} {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			t.Parallel()
			s := startSocketSystem(t)
			start := time.Now()
			answers := burstAnswers(t, s, n, func(int) string { return "/users/1" }, nil)
			refused := answerIDs(t, answers, n)
			for i := 1; i < len(refused); i++ {
				if refused[i] < refused[i-1] {
					t.Fatalf("429 for request %d came after 429 for request %d", refused[i], refused[i-1])
				}
			}
			if len(refused) > 0 && refused[0] < 64 {
				t.Fatalf("request %d refused while fewer than 64 ran before it", refused[0])
			}
			if v := s.metric(t, "streamgate_gateway_socket_cutoffs_total"); v != 0 {
				t.Fatalf("%v cut-offs", v)
			}
			t.Logf("%d requests in one burst: %d answered 200, %d answered 429, in %v", n, n-len(refused), len(refused), time.Since(start).Round(time.Millisecond))
		})
	}
}

// With every slot held, the in-flight policy is exact: the first 64
// requests run, every later one is answered 429 in the order sent, and
// the held ones answer once released; the client reading all along is
// never cut off.
func TestSocketBurstOverHeldSlotsAnswered429InOrder(t *testing.T) {
	t.Parallel()
	const n, inFlight = 2000, 64
	s := startSocketSystem(t, gateway.WithSocketLimits(gateway.SocketLimits{InFlight: inFlight}))
	testDone := make(chan struct{})
	go func() {
		for {
			select {
			case <-s.held:
			case <-testDone:
				return
			}
		}
	}()
	released := sync.OnceFunc(func() { close(s.release) })
	t.Cleanup(func() { released(); close(testDone) })
	refusals := 0
	answers := burstAnswers(t, s, n, func(i int) string { return fmt.Sprintf("/users/%d/hold", i) }, func(f frame) {
		if f.Status == 429 {
			if refusals++; refusals == n-inFlight {
				released() // every 429 came: the held ones may answer
			}
		}
	})
	refused := answerIDs(t, answers, n)
	if len(refused) != n-inFlight {
		t.Fatalf("%d refused, want %d", len(refused), n-inFlight)
	}
	for i, id := range refused {
		if id != inFlight+i {
			t.Fatalf("429 number %d is for request %d, want %d", i, id, inFlight+i)
		}
	}
	if v := s.metric(t, "streamgate_gateway_socket_cutoffs_total"); v != 0 {
		t.Fatalf("%v cut-offs", v)
	}
}
