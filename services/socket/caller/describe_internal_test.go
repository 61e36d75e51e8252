package caller

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"

	"github.com/streamgate/streamgate/services/socket"
)

// firstRecord is a slog handler that closes seen at the first record whose
// message is msg.
type firstRecord struct {
	msg  string
	once sync.Once
	seen chan struct{}
}

func (h *firstRecord) Enabled(context.Context, slog.Level) bool { return true }
func (h *firstRecord) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *firstRecord) WithGroup(string) slog.Handler            { return h }
func (h *firstRecord) Handle(_ context.Context, r slog.Record) error {
	if r.Message == h.msg {
		h.once.Do(func() { close(h.seen) })
	}
	return nil
}

// A reconnect does not wait for the service's Describe: with the
// catalogue known, the client is ready and serves requests while the new
// stream's Describe hangs; the Describe that fails is logged.
func TestReconnectDoesNotWaitForDescribe(t *testing.T) {
	t.Parallel()
	var describes atomic.Int32
	asked := make(chan struct{}) // closed when the reconnect's Describe arrives
	gate := grpc.UnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, next grpc.UnaryHandler) (any, error) {
		if strings.HasSuffix(info.FullMethod, "/Describe") {
			if n := describes.Add(1); n > 1 {
				if n == 2 {
					close(asked)
				}
				<-ctx.Done() // every Describe after the first hangs
				return nil, ctx.Err()
			}
		}
		return next(ctx, req)
	})
	addr, stop := serveOn(t, "", socket.WithGRPCServerOptions(gate))
	logs := &firstRecord{msg: "socket: describe failed", seen: make(chan struct{})}
	// A connect timeout far above the waits below: a reconnect that waited
	// for Describe would not be ready within them.
	c, err := Dial(addr, WithBackoff(10*time.Millisecond, 100*time.Millisecond), WithConnectTimeout(time.Minute), WithLogger(slog.New(logs)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := c.Request(ctx, "PING", "", nil); err != nil {
		t.Fatal(err)
	}
	if info, ok := c.Action("PING"); !ok || !info.Read {
		t.Fatalf("PING known as %+v, %v after the first request", info, ok)
	}

	stop()
	waitFor(t, c, 10*time.Second, "the loss noticed", func(s instanceState) bool { return s.State != connectivity.Ready })
	_, stop = serveOn(t, addr, socket.WithGRPCServerOptions(gate))
	waitFor(t, c, 10*time.Second, "ready while Describe hangs", func(s instanceState) bool { return s.State == connectivity.Ready })
	short, cancelShort := context.WithTimeout(ctx, 10*time.Second)
	defer cancelShort()
	if _, err := c.Request(short, "PING", "", nil); err != nil {
		t.Fatalf("a request after the reconnect: %v", err)
	}
	// The reconnect asks for Describe in the background (it may arrive
	// after the request above): it hangs, and was never waited for.
	select {
	case <-asked:
	case <-short.Done():
		t.Fatalf("%d Describes; the reconnect asked for none", describes.Load())
	}

	stop() // the hanging Describe fails with its connection
	select {
	case <-logs.seen:
	case <-ctx.Done():
		t.Fatal("the failed Describe was not logged")
	}
}
