package socket_test

import (
	"context"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"

	socketv1 "github.com/streamgate/streamgate/gen/streamgate/socket/v1"
	"github.com/streamgate/streamgate/internal/rusage"
	"github.com/streamgate/streamgate/services/socket"
	"github.com/streamgate/streamgate/services/socket/caller"
	"github.com/streamgate/streamgate/services/socket/sockettest"
)

// BenchmarkRoundTrip compares one request over the shared socket with the
// same request as a plain unary gRPC call (SocketService.Call) to the same
// server and handler, both over loopback TCP, with many callers (32 per
// CPU) sharing one client as in a gateway.
func BenchmarkRoundTrip(b *testing.B) { benchmarkRoundTrip(b, 32) }

// BenchmarkRoundTripFewCallers is BenchmarkRoundTrip with one caller per
// CPU: latency-bound, the socket's worst case.
func BenchmarkRoundTripFewCallers(b *testing.B) { benchmarkRoundTrip(b, 1) }

func benchmarkRoundTrip(b *testing.B, parallelism int) {
	// Every request is identical: coalescing (on by default for reads like
	// ECHO) would answer many with one handler run and measure something
	// else, so it is off on both sides.
	ts := sockettest.StartServer(b, sockettest.Spec{Opts: []socket.ServerOption{socket.WithoutCoalescing()}})
	body := []byte(`{"text":"Oska"}`)
	ctx := context.Background()

	b.Run("socket", func(b *testing.B) {
		c := sockettest.DialServer(b, ts, caller.WithoutCoalescing())
		if _, err := c.Request(ctx, "ECHO", "1", body); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.SetParallelism(parallelism)
		cpu := rusage.CPU()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := c.Request(ctx, "ECHO", "1", body); err != nil {
					b.Error(err)
					return
				}
			}
		})
		rusage.Report(b, cpu)
	})
	b.Run("unary", func(b *testing.B) {
		stub := sockettest.RawConn(b, ts)
		kctx := sockettest.WithKey(ctx, sockettest.TestKey)
		b.ReportAllocs()
		b.SetParallelism(parallelism)
		cpu := rusage.CPU()
		b.ResetTimer()
		defer rusage.Report(b, cpu)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				r, err := stub.Call(kctx, &socketv1.CallRequest{Request: &socketv1.Request{
					Action: "ECHO", ResourceId: "1", Payload: &socketv1.Request_BodyRaw{BodyRaw: body},
				}})
				if err != nil || !r.GetResponse().GetOk() {
					b.Error(r, err)
					return
				}
			}
		})
	})
}

// BenchmarkCoalescingOverhead measures what coalescing costs a read that
// shares nothing (every request has its own id): the defaults (coalescing
// in the client and the server) against both turned off.
func BenchmarkCoalescingOverhead(b *testing.B) {
	body := []byte(`{"text":"Oska"}`)
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		server []socket.ServerOption
		client []caller.Option
	}{
		{"off", []socket.ServerOption{socket.WithoutCoalescing()}, []caller.Option{caller.WithoutCoalescing()}},
		{"on", nil, nil},
	} {
		b.Run(tc.name, func(b *testing.B) {
			ts := sockettest.StartServer(b, sockettest.Spec{Opts: tc.server})
			c := sockettest.DialServer(b, ts, tc.client...)
			if _, err := c.Request(ctx, "ECHO", "0", body); err != nil {
				b.Fatal(err)
			}
			var n atomic.Int64
			b.ReportAllocs()
			b.SetParallelism(32)
			cpu := rusage.CPU()
			b.ResetTimer()
			defer rusage.Report(b, cpu)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := c.Request(ctx, "ECHO", strconv.FormatInt(n.Add(1), 10), body); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkIdleStreams measures the memory an open, idle socket costs: 100
// clients (each its own gRPC connection and stream, as 100 gateways would
// have) to one server, each after one request. The figure is the Go heap
// and stacks in use after a GC, per stream, both ends together (client and
// server run in this process). Run it once: -benchtime 1x.
func BenchmarkIdleStreams(b *testing.B) {
	const streams = 100
	ts := sockettest.StartServer(b, sockettest.Spec{})
	ctx := context.Background()
	inUse := func() (heap, stacks uint64, goroutines int) {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapInuse, m.StackInuse, runtime.NumGoroutine()
	}
	for range b.N {
		// One client first, so what every client shares is counted once.
		first := sockettest.DialServer(b, ts)
		if _, err := first.Request(ctx, "ECHO", "0", []byte(`{"text":"x"}`)); err != nil {
			b.Fatal(err)
		}
		heap0, stacks0, g0 := inUse()
		clients := make([]*caller.Client, streams)
		for i := range clients {
			clients[i] = sockettest.DialServer(b, ts)
			if _, err := clients[i].Request(ctx, "ECHO", strconv.Itoa(i), []byte(`{"text":"x"}`)); err != nil {
				b.Fatal(err)
			}
		}
		heap1, stacks1, g1 := inUse()
		b.ReportMetric(float64(heap1+stacks1-heap0-stacks0)/streams, "bytes/stream")
		b.ReportMetric(float64(stacks1-stacks0)/streams, "stack-bytes/stream")
		b.ReportMetric(float64(g1-g0)/streams, "goroutines/stream")
		for _, c := range append(clients, first) {
			_ = c.Close()
		}
	}
}
