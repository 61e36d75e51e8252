package gateway_test

import (
	"bytes"
	"context"
	"log/slog"
	"sync"
)

// logCapture is a slog handler that keeps every line as JSON and lets a
// test wait for a message.
type logCapture struct {
	mu      *sync.Mutex // guards buf and waiters
	buf     *bytes.Buffer
	waiters map[string]chan struct{}
	json    slog.Handler
}

func newLogCapture() *logCapture {
	c := &logCapture{mu: &sync.Mutex{}, buf: &bytes.Buffer{}, waiters: map[string]chan struct{}{}}
	c.json = slog.NewJSONHandler(lockedWriter{c}, &slog.HandlerOptions{Level: slog.LevelDebug})
	return c
}

// lockedWriter writes to the capture's buffer under its lock.
type lockedWriter struct{ c *logCapture }

func (w lockedWriter) Write(p []byte) (int, error) { return w.c.buf.Write(p) }

// Logger returns a logger writing to the capture.
func (c *logCapture) Logger() *slog.Logger { return slog.New(c) }

// String returns everything logged so far.
func (c *logCapture) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.String()
}

// seen returns a channel closed once a record with message msg is logged.
func (c *logCapture) seen(msg string) <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.waiter(msg)
}

func (c *logCapture) waiter(msg string) chan struct{} {
	ch := c.waiters[msg]
	if ch == nil {
		ch = make(chan struct{})
		c.waiters[msg] = ch
	}
	return ch
}

func (c *logCapture) Enabled(context.Context, slog.Level) bool { return true }

func (c *logCapture) Handle(ctx context.Context, r slog.Record) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	err := c.json.Handle(ctx, r)
	ch := c.waiter(r.Message)
	select {
	case <-ch:
	default:
		close(ch)
	}
	return err
}

func (c *logCapture) WithAttrs(as []slog.Attr) slog.Handler {
	d := *c
	d.json = c.json.WithAttrs(as)
	return &d
}

func (c *logCapture) WithGroup(name string) slog.Handler {
	d := *c
	d.json = c.json.WithGroup(name)
	return &d
}
