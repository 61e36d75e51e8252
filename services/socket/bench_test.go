package socket_test

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"

	socketv1 "github.com/streamgate/streamgate/gen/streamgate/socket/v1"
	"github.com/streamgate/streamgate/internal/rusage"
	"github.com/streamgate/streamgate/services/socket"
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
	ts := startServer(b, serverSpec{opts: []socket.ServerOption{socket.WithoutCoalescing()}})
	body := []byte(`{"text":"Oska"}`)
	ctx := context.Background()

	b.Run("socket", func(b *testing.B) {
		c := dialServer(b, ts, socket.WithoutClientCoalescing())
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
		stub := rawConn(b, ts)
		kctx := withKey(ctx, testKey)
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
		client []socket.DialOption
	}{
		{"off", []socket.ServerOption{socket.WithoutCoalescing()}, []socket.DialOption{socket.WithoutClientCoalescing()}},
		{"on", nil, nil},
	} {
		b.Run(tc.name, func(b *testing.B) {
			ts := startServer(b, serverSpec{opts: tc.server})
			c := dialServer(b, ts, tc.client...)
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
