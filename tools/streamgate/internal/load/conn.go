package load

import (
	"bufio"
	"context"
	"crypto/tls"
	"io"
	"net"
	"time"
)

// conn is one keep-alive connection of a run, used by one worker at a
// time: it sends a request in one write and reads its answer, and dials
// again after the server closed it or a request failed on it.
type conn struct {
	r      *run
	nc     net.Conn      // nil until dialled, and after a failure
	rw     io.ReadWriter // nc, or its raw I/O
	br     *bufio.Reader // reads rw
	buf    []byte        // the request being sent
	unbind func() bool   // stops closing nc when the run's ctx ends
}

// do sends request n (sent is now) and reads its answer: the status, or
// the error that ended the request, after which the connection is closed.
func (c *conn) do(n uint64, sent time.Time) (int, error) {
	if c.nc == nil {
		if err := c.dial(); err != nil {
			return 0, err
		}
	}
	c.buf = c.r.text.appendTo(c.buf[:0], c.r.o.IDs.nth(n))
	if err := c.nc.SetDeadline(sent.Add(c.r.o.Timeout)); err != nil {
		c.close()
		return 0, err
	}
	if _, err := c.rw.Write(c.buf); err != nil {
		c.close()
		return 0, err
	}
	status, keepAlive, err := readResponse(c.br, c.r.head)
	if err != nil || !keepAlive {
		c.close()
	}
	return status, err
}

// dial opens the connection (TLS for https), which the end of the run's
// ctx closes, interrupting whatever request is on it.
func (c *conn) dial() error {
	d := net.Dialer{Timeout: c.r.o.Timeout, KeepAlive: 30 * time.Second}
	nc, err := d.DialContext(c.r.ctx, "tcp", c.r.addr)
	if err != nil {
		return err
	}
	if c.r.tls != nil {
		tc := tls.Client(nc, c.r.tls)
		ctx, cancel := context.WithTimeout(c.r.ctx, c.r.o.Timeout)
		err := tc.HandshakeContext(ctx)
		cancel()
		if err != nil {
			nc.Close()
			return err
		}
		nc = tc
	}
	c.nc, c.rw = nc, nc
	if raw := newRawIO(nc); raw != nil {
		c.rw = raw
	}
	c.unbind = context.AfterFunc(c.r.ctx, func() { nc.Close() })
	if c.br == nil {
		c.br = bufio.NewReaderSize(c.rw, 4096)
	} else {
		c.br.Reset(c.rw)
	}
	return nil
}

// close closes the connection, if open; the next request dials again.
func (c *conn) close() {
	if c.nc == nil {
		return
	}
	c.unbind()
	c.nc.Close()
	c.nc = nil
}
