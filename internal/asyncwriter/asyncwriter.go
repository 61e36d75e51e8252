// Package asyncwriter takes writes off the caller's path: a Writer copies
// each write into a bounded buffer and a goroutine of its own writes the
// buffer out, many writes in one: it lets writes gather for up to
// Linger (or until BatchBytes are pending, or Flush or Close asks), so
// that a busy log costs one write(2) per batch, not one per line, even
// when the goroutine could run after every line. When the buffer is
// full (the destination is slower than the writers) a write is dropped
// whole and counted, so a stuck log never holds up requests.
//
// The access log is its user: one line per request, written through a
// slog handler, which makes one Write per line, so a dropped write is a
// dropped line.
//
//	w := asyncwriter.New(os.Stderr, asyncwriter.DefaultLimit)
//	defer w.Close() // writes what is pending
//	logger := slog.New(slog.NewTextHandler(w, nil))
package asyncwriter

import (
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// DefaultLimit is the pending bytes a Writer holds before it drops
// writes: about 4,000 access-log lines.
const DefaultLimit = 1 << 20

// Linger is how long the goroutine lets writes gather before it writes
// them out: the most a line waits in a quiet log.
const Linger = 5 * time.Millisecond

// BatchBytes is how many pending bytes are written out at once, without
// waiting out Linger: about 250 access-log lines.
const BatchBytes = 64 << 10

// dropped counts the writes every Writer of the process dropped.
var dropped atomic.Uint64

// Writer is an io.Writer that writes to another one on its own
// goroutine. It is safe for concurrent use.
type Writer struct {
	out   io.Writer
	limit int

	mu      sync.Mutex
	pending []byte     // written, not yet handed to out
	spare   []byte     // the buffer the goroutine last wrote, reused
	busy    bool       // the goroutine is writing (pending may grow meanwhile)
	idle    *sync.Cond // signalled when pending is empty and nothing is busy
	closed  bool
	urgent  bool          // Flush asked for the pending bytes now
	wake    chan struct{} // 1-buffered: pending has its first bytes, or BatchBytes, or Flush asks
	done    chan struct{} // closed when the goroutine has returned
	lingers *time.Timer   // the goroutine's Linger timer, made once, used by it alone; stopped between batches

	dropped atomic.Uint64
}

// New returns a Writer writing to out, holding at most limit pending
// bytes (DefaultLimit when limit ≤ 0), and starts its goroutine; Close
// ends it.
func New(out io.Writer, limit int) *Writer {
	if limit <= 0 {
		limit = DefaultLimit
	}
	w := &Writer{out: out, limit: limit, wake: make(chan struct{}, 1), done: make(chan struct{}), lingers: time.NewTimer(Linger)}
	w.lingers.Stop()
	w.idle = sync.NewCond(&w.mu)
	go w.run()
	return w
}

// Write queues a copy of p and returns at once. When p does not fit
// beside what is pending, it is dropped (and counted) instead; a write
// after Close goes straight to the destination. It never fails.
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return w.out.Write(p)
	}
	if len(w.pending)+len(p) > w.limit {
		w.mu.Unlock()
		w.dropped.Add(1)
		dropped.Add(1)
		return len(p), nil
	}
	before := len(w.pending)
	w.pending = append(w.pending, p...)
	if before == 0 || (before < BatchBytes && len(w.pending) >= BatchBytes) {
		w.signal()
	}
	w.mu.Unlock()
	return len(p), nil
}

// signal wakes the goroutine, unless a wake is already due. Called under
// mu: Close closes wake under it.
func (w *Writer) signal() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// linger lets writes gather after the first: until BatchBytes are
// pending, Flush asks, Linger has passed or Close. open is false once
// Close has closed wake.
func (w *Writer) linger() (open bool) {
	w.mu.Lock()
	now := len(w.pending) >= BatchBytes || w.urgent
	w.mu.Unlock()
	if now {
		return true
	}
	w.lingers.Reset(Linger) // a stopped timer's channel holds nothing stale (Go 1.23 timers)
	select {
	case <-w.lingers.C:
		return true
	case _, open = <-w.wake:
		w.lingers.Stop()
		return open
	}
}

// run writes the pending bytes out, all that gathered in one write, until
// Close.
func (w *Writer) run() {
	defer close(w.done)
	for {
		_, open := <-w.wake
		if open {
			open = w.linger()
		}
		w.mu.Lock()
		w.urgent = false
		for len(w.pending) > 0 {
			chunk := w.pending
			w.pending, w.spare = w.spare[:0], nil
			w.busy = true
			w.mu.Unlock()
			_, _ = w.out.Write(chunk) // a log has no one to tell
			w.mu.Lock()
			w.busy = false
			if cap(chunk) <= w.limit {
				w.spare = chunk[:0]
			}
		}
		w.idle.Broadcast()
		w.mu.Unlock()
		if !open {
			return
		}
	}
}

// Flush waits until everything written before it has reached the
// destination.
func (w *Writer) Flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.closed && len(w.pending) > 0 {
		w.urgent = true
		w.signal()
	}
	for !w.closed && (len(w.pending) > 0 || w.busy) {
		w.idle.Wait()
	}
}

// Close writes what is pending, ends the goroutine and makes later
// writes go straight to the destination. Closing again does nothing.
func (w *Writer) Close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		<-w.done
		return nil
	}
	w.closed = true
	close(w.wake)
	w.mu.Unlock()
	<-w.done
	return nil
}

// Dropped returns how many writes w dropped.
func (w *Writer) Dropped() uint64 { return w.dropped.Load() }

// DroppedCollector is the counter streamgate_log_lines_dropped_total:
// the writes every Writer of the process dropped.
func DroppedCollector() prometheus.Collector {
	return prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "streamgate_log_lines_dropped_total",
		Help: "Log lines dropped because the log's destination fell behind (its buffer was full).",
	}, func() float64 { return float64(dropped.Load()) })
}
