package faultproxy_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/streamgate/streamgate/tools/internal/faultproxy"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// echoServer answers every line with the same line until the test ends.
func echoServer(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { lis.Close(); <-done })
	go func() {
		defer close(done)
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	return lis.Addr().String()
}

func start(t *testing.T) *faultproxy.Proxy {
	t.Helper()
	p, err := faultproxy.Start(echoServer(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// roundTrip writes a line and reads the echo, within a deadline.
func roundTrip(c net.Conn, r *bufio.Reader, d time.Duration) (string, error) {
	_ = c.SetDeadline(time.Now().Add(d))
	if _, err := c.Write([]byte("ping\n")); err != nil {
		return "", err
	}
	return r.ReadString('\n')
}

func dial(t *testing.T, p *faultproxy.Proxy) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, bufio.NewReader(c)
}

func TestPassAndBlackhole(t *testing.T) {
	p := start(t)
	c, r := dial(t, p)
	if got, err := roundTrip(c, r, 5*time.Second); err != nil || got != "ping\n" {
		t.Fatalf("pass: %q %v", got, err)
	}
	p.Blackhole()
	_, err := roundTrip(c, r, 200*time.Millisecond)
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("black-holed: got %v, want a timeout", err)
	}
	if p.Conns() != 1 {
		t.Fatalf("black-holing closed the connection: %d open", p.Conns())
	}
	p.Pass()
	c2, r2 := dial(t, p)
	if got, err := roundTrip(c2, r2, 5*time.Second); err != nil || got != "ping\n" {
		t.Fatalf("pass again: %q %v", got, err)
	}
}

func TestReset(t *testing.T) {
	p := start(t)
	c, r := dial(t, p)
	if _, err := roundTrip(c, r, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	p.Reset()
	_, err := roundTrip(c, r, 5*time.Second)
	if err == nil {
		t.Fatal("a reset connection still answers")
	}
	if !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, io.EOF) && !errors.Is(err, syscall.EPIPE) {
		t.Fatalf("reset: got %v", err)
	}
}

func TestCutAndRefuse(t *testing.T) {
	p := start(t)
	c, r := dial(t, p)
	if _, err := roundTrip(c, r, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	p.Cut()
	if _, err := roundTrip(c, r, 5*time.Second); err == nil {
		t.Fatal("a cut connection still answers")
	}
	p.Refuse()
	c2, err := net.Dial("tcp", p.Addr())
	if err == nil {
		defer c2.Close()
		if _, err := roundTrip(c2, bufio.NewReader(c2), 5*time.Second); err == nil {
			t.Fatal("a refused connection answers")
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.WaitRefused(ctx, 1); err != nil {
		t.Fatal(err)
	}
}

func TestDelay(t *testing.T) {
	p := start(t)
	c, r := dial(t, p)
	p.Delay(50 * time.Millisecond)
	begin := time.Now()
	if _, err := roundTrip(c, r, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	// Two chunks (there and back), each held at least the delay.
	if took := time.Since(begin); took < 100*time.Millisecond {
		t.Fatalf("a delayed round trip took %v, want at least 100ms", took)
	}
}
