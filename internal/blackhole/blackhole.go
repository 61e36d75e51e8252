// Package blackhole is a loopback listener that accepts connections and
// never answers: a peer whose host vanished without closing anything, for
// tests of deadlines (a Redis, a service).
//
//	addr := blackhole.Listen(t) // "127.0.0.1:PORT", closed at cleanup
package blackhole

import (
	"io"
	"net"
	"sync"
	"testing"
)

// Listen starts a black hole on loopback and returns its address; it and
// every connection it accepted are closed when the test ends.
func Listen(t testing.TB) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex // guards conns
		conns []net.Conn
	)
	wg.Go(func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() { _, _ = io.Copy(io.Discard, c) }) // read, never write
		}
	})
	t.Cleanup(func() {
		_ = lis.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return lis.Addr().String()
}
