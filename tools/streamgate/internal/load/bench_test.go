package load_test

import (
	"bufio"
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/streamgate/streamgate/internal/rusage"
	"github.com/streamgate/streamgate/tools/streamgate/internal/load"
)

// cannedResponse is what cannedServer answers to every request.
const cannedResponse = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 31\r\n\r\n{\"id\":\"1\",\"name\":\"user number\"}"

// cannedServer answers every bodiless request on every connection with
// cannedResponse, doing as little as it can, so a benchmark's CPU is
// mostly the load engine's.
func cannedServer(tb testing.TB) string {
	tb.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn // guarded by mu
	wg.Go(func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() {
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadSlice('\n')
					if err != nil {
						return
					}
					if len(line) <= 2 { // the blank line after the headers
						if _, err := c.Write([]byte(cannedResponse)); err != nil {
							return
						}
					}
				}
			})
		}
	})
	tb.Cleanup(func() {
		lis.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return "http://" + lis.Addr().String()
}

func benchmarkRun(b *testing.B, rate int) {
	url := cannedServer(b)
	b.ReportAllocs()
	start := rusage.CPU()
	b.ResetTimer()
	rep, err := load.Run(context.Background(), load.Options{
		URL: url + "/v1/users/{id}", IDs: load.Range{From: 1, To: 1000}, Connections: 64,
		Header:   map[string][]string{"X-Api-Key": {"0123456789abcdef0123456789abcdef"}},
		Duration: time.Hour, Rate: rate, MaxRequests: int64(b.N),
	})
	b.StopTimer()
	rusage.Report(b, start)
	if err != nil || rep.Requests != int64(b.N) || rep.Errors() != 0 {
		b.Fatalf("%v: %d requests, %d errors (%s)", err, rep.Requests, rep.Errors(), rep.FirstTransportError)
	}
}

// BenchmarkClosedLoop: CPU per request of the engine and the canned
// server, 64 connections as fast as they go.
func BenchmarkClosedLoop(b *testing.B) { benchmarkRun(b, 0) }

// BenchmarkFixedRate: the same at 20,000 requests a second, where the
// wall time is the schedule's and cpu-ns/op is what counts.
func BenchmarkFixedRate(b *testing.B) { benchmarkRun(b, 20000) }
