package wsedge

import (
	"bufio"
	"net"
	"net/http"
	"sync"
)

// corkLimit bounds what a corked connection holds: past it the held
// bytes go out at once (a batch of many frames is several writes of about
// this size, never one unbounded buffer).
const corkLimit = 64 << 10

// corkKeep is the room a corked connection keeps between batches: a
// larger batch's buffer is let go when it ends, so an idle socket holds
// no more than net/http's own buffer would (many sockets idle at once).
const corkKeep = 4 << 10

// corkWriter is a ResponseWriter whose Hijack hands out a corkConn: the
// socket's writer can then put many frames on the wire with one write.
//
// coder/websocket writes each message with one Flush of the hijacked
// bufio.Writer, and net/http's hijacked writer writes straight to the
// connection: one write syscall per frame. Hijack here returns a writer
// in front of the corkConn instead, so the frames of a batch collect in
// the cork and leave together, with no change to the protocol. The
// ResponseWriter it wraps still sees the upgrade's WriteHeader (status
// recording), and Unwrap keeps http.ResponseController working.
type corkWriter struct {
	http.ResponseWriter
	conn *corkConn // set by Hijack
}

// Unwrap returns the ResponseWriter wrapped (http.ResponseController).
func (w *corkWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Hijack hijacks the wrapped ResponseWriter's connection and returns it
// corkable.
func (w *corkWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	if err := brw.Writer.Flush(); err != nil { // nothing is held after the 101, but keep the order if it were
		_ = conn.Close()
		return nil, nil, err
	}
	w.conn = &corkConn{Conn: conn}
	return w.conn, bufio.NewReadWriter(brw.Reader, bufio.NewWriterSize(w.conn, brw.Writer.Size())), nil
}

// corkConn is a connection whose writes can be held back and sent as
// one. Only the socket's writer corks it, and it uncorks before it waits
// for more frames: a ping or a close frame written meanwhile (by another
// goroutine) goes out with the batch, after at most the batch itself.
type corkConn struct {
	net.Conn

	mu     sync.Mutex // guards corked, held and err; held while writing to Conn, so writes keep their order
	corked bool
	held   []byte // what was written while corked
	err    error  // the first write that failed: later ones fail the same

	writes int // writes to Conn, for tests; guarded by mu
}

// Write writes p, or holds it while the connection is corked (sending
// what is held once it passes corkLimit).
func (c *corkConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return 0, c.err
	}
	if !c.corked {
		return c.send(p)
	}
	c.held = append(c.held, p...)
	if len(c.held) >= corkLimit {
		if _, err := c.flushLocked(); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// cork holds the writes that follow until uncork.
func (c *corkConn) cork() {
	c.mu.Lock()
	c.corked = true
	c.mu.Unlock()
}

// uncork sends what is held, in one write, and lets later writes through.
func (c *corkConn) uncork() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.corked = false
	_, err := c.flushLocked()
	if cap(c.held) > corkKeep {
		c.held = nil
	}
	return err
}

// flushLocked sends what is held; c.mu is held.
func (c *corkConn) flushLocked() (int, error) {
	if len(c.held) == 0 {
		return 0, c.err
	}
	n, err := c.send(c.held)
	c.held = c.held[:0]
	return n, err
}

// send writes p to the connection; c.mu is held.
func (c *corkConn) send(p []byte) (int, error) {
	c.writes++
	n, err := c.Conn.Write(p)
	if err != nil {
		c.err = err
	}
	return n, err
}

// writeCount reports the writes to the connection so far (tests).
func (c *corkConn) writeCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.writes
}
