// Package faultproxy is a TCP proxy on loopback for fault tests: it sits
// between a client and a server and, on command, delays, black-holes,
// resets or cuts their connections, or refuses new ones.
//
//	p, _ := faultproxy.Start("127.0.0.1:9101") // the real server
//	defer p.Close()
//	dial(p.Addr())      // the client talks to the proxy
//	p.Blackhole()       // bytes vanish both ways; connections stay open
//	p.Reset()           // every open connection ends with a TCP reset
//	p.Pass()            // back to normal for new and open connections
package faultproxy

import (
	"context"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// Mode is what the proxy does with the bytes of its connections.
type Mode int

// The modes.
const (
	// ModePass forwards bytes both ways (after the delay, if any).
	ModePass Mode = iota
	// ModeBlackhole accepts connections and reads their bytes but
	// forwards nothing, like a host that vanished without a reset.
	ModeBlackhole
	// ModeRefuse resets every new connection at once, like a port
	// nobody listens on.
	ModeRefuse
)

// Proxy forwards connections from its own address to a target address.
type Proxy struct {
	target string
	lis    net.Listener
	done   chan struct{} // closed by Close
	wg     sync.WaitGroup

	mu    sync.Mutex // guards mode, delay, conns and changed
	mode  Mode
	delay time.Duration
	conns map[*link]struct{}
	// changed is closed and replaced whenever a connection opens or
	// closes or one is refused, for WaitConns and WaitRefused.
	changed chan struct{}
	refused int // connections refused so far
}

// link is one proxied connection: the client's side and the server's.
type link struct {
	client, server net.Conn
}

// Start listens on a fresh port of 127.0.0.1 and forwards to target.
func Start(target string) (*Proxy, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{target: target, lis: lis, done: make(chan struct{}), conns: map[*link]struct{}{}, changed: make(chan struct{})}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is the proxy's address, for clients to dial.
func (p *Proxy) Addr() string { return p.lis.Addr().String() }

// Pass forwards bytes again, for open and new connections, without delay.
func (p *Proxy) Pass() { p.set(ModePass, 0) }

// Delay forwards every chunk of bytes after d.
func (p *Proxy) Delay(d time.Duration) { p.set(ModePass, d) }

// Blackhole swallows bytes both ways from now on; connections stay open.
func (p *Proxy) Blackhole() { p.set(ModeBlackhole, 0) }

// Refuse resets new connections at once; open ones carry on.
func (p *Proxy) Refuse() { p.set(ModeRefuse, 0) }

// Reset ends every open connection with a TCP reset (both sides).
func (p *Proxy) Reset() { p.drop(true) }

// Cut closes every open connection cleanly (both sides).
func (p *Proxy) Cut() { p.drop(false) }

// Conns returns how many connections are open through the proxy.
func (p *Proxy) Conns() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.conns)
}

// WaitConns waits until at least n connections are open through the
// proxy, or ctx ends.
func (p *Proxy) WaitConns(ctx context.Context, n int) error {
	return p.waitCount(ctx, n, "open", func() int { return len(p.conns) })
}

// WaitRefused waits until the proxy has refused at least n connections
// in all, or ctx ends: a client's reconnect attempts, counted.
func (p *Proxy) WaitRefused(ctx context.Context, n int) error {
	return p.waitCount(ctx, n, "refused", func() int { return p.refused })
}

// waitCount waits until count, read with p.mu held, reaches n, or ctx
// ends; what says what count counts ("open", "refused") in the error.
func (p *Proxy) waitCount(ctx context.Context, n int, what string, count func() int) error {
	for {
		p.mu.Lock()
		got, changed := count(), p.changed
		p.mu.Unlock()
		if got >= n {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("faultproxy: %d of %d connections %s: %w", got, n, what, ctx.Err())
		}
	}
}

// notify wakes WaitConns and WaitRefused; p.mu must be held.
func (p *Proxy) notify() {
	close(p.changed)
	p.changed = make(chan struct{})
}

// Close stops listening, closes every connection and waits for the
// proxy's goroutines.
func (p *Proxy) Close() error {
	select {
	case <-p.done:
		return nil
	default:
	}
	close(p.done)
	err := p.lis.Close()
	p.drop(false)
	p.wg.Wait()
	return err
}

func (p *Proxy) set(m Mode, delay time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mode, p.delay = m, delay
}

// state returns the mode and the delay.
func (p *Proxy) state() (Mode, time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mode, p.delay
}

func (p *Proxy) drop(reset bool) {
	p.mu.Lock()
	links := make([]*link, 0, len(p.conns))
	for l := range p.conns {
		links = append(links, l)
	}
	p.mu.Unlock()
	for _, l := range links {
		l.close(reset)
	}
}

func (l *link) close(reset bool) {
	for _, c := range []net.Conn{l.client, l.server} {
		if tc, ok := c.(*net.TCPConn); ok && reset {
			_ = tc.SetLinger(0) // close sends RST
		}
		_ = c.Close()
	}
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.lis.Accept()
		if err != nil {
			return
		}
		if m, _ := p.state(); m == ModeRefuse {
			(&link{client: c, server: nopConn{c}}).close(true)
			p.mu.Lock()
			p.refused++
			p.notify()
			p.mu.Unlock()
			continue
		}
		p.wg.Add(1)
		go p.serve(c)
	}
}

// serve connects a client to the target and copies both ways until
// either side ends.
func (p *Proxy) serve(client net.Conn) {
	defer p.wg.Done()
	server, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		(&link{client: client, server: nopConn{client}}).close(true)
		return
	}
	l := &link{client: client, server: server}
	p.mu.Lock()
	select {
	case <-p.done:
		p.mu.Unlock()
		l.close(false)
		return
	default:
	}
	p.conns[l] = struct{}{}
	p.notify()
	p.mu.Unlock()

	var copies sync.WaitGroup
	copies.Go(func() { p.copy(server, client); l.close(false) })
	copies.Go(func() { p.copy(client, server); l.close(false) })
	copies.Wait()
	p.mu.Lock()
	delete(p.conns, l)
	p.notify()
	p.mu.Unlock()
}

// copy moves bytes from src to dst as the mode says, until src ends.
func (p *Proxy) copy(dst io.Writer, src io.Reader) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if !p.forward(dst, buf[:n]) {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// forward writes one chunk unless the proxy black-holes it; it reports
// whether the copy goes on.
func (p *Proxy) forward(dst io.Writer, b []byte) bool {
	mode, delay := p.state()
	if mode == ModeBlackhole {
		return true // swallowed
	}
	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-p.done:
			t.Stop()
			return false
		}
	}
	_, err := dst.Write(b)
	return err == nil
}

// nopConn stands in for a server side that was never dialled.
type nopConn struct{ net.Conn }

func (nopConn) Close() error { return nil }
