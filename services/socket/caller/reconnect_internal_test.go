package caller

import (
	"context"
	"encoding/json"
	"net"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/connectivity"

	"github.com/streamgate/streamgate/services/socket"
)

func TestBackoffNeverExceedsTheCap(t *testing.T) {
	t.Parallel()
	for _, b := range []struct{ base, max time.Duration }{
		{10 * time.Millisecond, 200 * time.Millisecond},
		{defaultBackoffBase, defaultBackoffMax},
		{time.Second, time.Second},
	} {
		c := &Client{cfg: config{backoffBase: b.base, backoffMax: b.max}}
		for n := range 100 {
			for range 200 {
				if d := c.cfg.backoff(n); d <= 0 || d > b.max {
					t.Fatalf("backoff(%d) with base %v, cap %v = %v", n, b.base, b.max, d)
				}
			}
		}
		if d := c.cfg.backoff(0); d > b.base*6/5 {
			t.Fatalf("first delay %v for base %v", d, b.base)
		}
	}
}

// serveOn serves a server with one read action on addr ("" for a fresh
// port) and returns the address and a function that stops it at once.
func serveOn(t *testing.T, addr string, opts ...socket.ServerOption) (string, func()) {
	t.Helper()
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	srv, err := socket.NewServer(socket.Config{Name: "reconnect"}, append([]socket.ServerOption{socket.WithoutAuth()}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Handle("PING", socket.HandlerFunc(func(context.Context, *socket.Request) (json.RawMessage, error) {
		return json.RawMessage(`"pong"`), nil
	}), socket.Read()); err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(context.Background(), lis) }()
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			srv.Stop()
			<-done
		}
	}
	t.Cleanup(stop)
	return lis.Addr().String(), stop
}

// waitFor waits, on the client's change signal, until cond holds.
func waitFor(t *testing.T, c *Client, timeout time.Duration, what string, cond func(instanceState) bool) time.Duration {
	t.Helper()
	start := time.Now()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		c.pool.mu.Lock()
		changed := c.pool.changed
		c.pool.mu.Unlock()
		if insts := c.pool.snapshots(); len(insts) == 1 && cond(insts[0]) {
			return time.Since(start)
		}
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("%s: not within %v: %+v", what, timeout, c.pool.snapshots())
		}
	}
}

func TestRestartedInstanceIsBackWithinTheBackoffCap(t *testing.T) {
	t.Parallel()
	const max = 200 * time.Millisecond
	addr, stop := serveOn(t, "")
	c, err := Dial(addr, WithBackoff(10*time.Millisecond, max))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	ready := func(s instanceState) bool { return s.State == connectivity.Ready }
	waitFor(t, c, 20*time.Second, "first connection", ready)

	// Down long enough for many failed attempts: gRPC's own connection
	// backoff (1s, growing to 120s) would have grown far past the cap.
	stop()
	const attempts = 40
	waitFor(t, c, 60*time.Second, "failed attempts", func(s instanceState) bool { return s.Failures >= attempts })

	_, _ = serveOn(t, addr)
	// The next attempt is at most the cap away; the rest is margin for a
	// busy machine (gRPC's own backoff would be seconds by now).
	if took := waitFor(t, c, 20*time.Second, "ready after the restart", ready); took > max+1500*time.Millisecond {
		t.Fatalf("ready %v after the restart; the backoff cap is %v", took, max)
	}
	if _, err := c.Request(context.Background(), "PING", "", nil); err != nil {
		t.Fatal(err)
	}
}

// blackHole is a TCP proxy that can stop forwarding without closing
// anything, as a dead host or a dropped route does.
type blackHole struct {
	lis   net.Listener
	dark  chan struct{} // closed: forward nothing more
	done  chan struct{} // closed at cleanup
	wg    sync.WaitGroup
	mu    sync.Mutex // guards conns
	conns []net.Conn
}

func newBlackHole(t *testing.T, to string) *blackHole {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &blackHole{lis: lis, dark: make(chan struct{}), done: make(chan struct{})}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		for {
			in, err := lis.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", to)
			if err != nil {
				_ = in.Close()
				continue
			}
			b.mu.Lock()
			b.conns = append(b.conns, in, out)
			b.mu.Unlock()
			b.wg.Add(2)
			go b.pipe(in, out)
			go b.pipe(out, in)
		}
	}()
	t.Cleanup(func() {
		close(b.done)
		_ = lis.Close()
		b.mu.Lock()
		for _, c := range b.conns {
			_ = c.Close()
		}
		b.mu.Unlock()
		b.wg.Wait()
	})
	return b
}

func (b *blackHole) pipe(from, to net.Conn) {
	defer b.wg.Done()
	buf := make([]byte, 32<<10)
	for {
		n, err := from.Read(buf)
		select {
		case <-b.dark:
			<-b.done // swallow everything, answer nothing
			return
		default:
		}
		if n > 0 {
			if _, werr := to.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func TestBlackHoledConnectionIsDetected(t *testing.T) {
	t.Parallel()
	addr, _ := serveOn(t, "")
	bh := newBlackHole(t, addr)
	c, err := Dial(bh.lis.Addr().String(), WithBackoff(10*time.Millisecond, 200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	waitFor(t, c, 20*time.Second, "first connection", func(s instanceState) bool { return s.State == connectivity.Ready })
	if _, err := c.Request(context.Background(), "PING", "", nil); err != nil {
		t.Fatal(err)
	}
	close(bh.dark)
	took := waitFor(t, c, 30*time.Second, "black hole detected", func(s instanceState) bool { return s.State != connectivity.Ready })
	if took > 5*time.Second {
		t.Fatalf("a black-holed connection took %v to detect; want at most 5s", took)
	}
}
