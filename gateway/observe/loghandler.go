package observe

import (
	"context"
	"io"
	"log/slog"
	"sync"

	"github.com/streamgate/streamgate/internal/asyncwriter"
)

// LogFormat is how a LogHandler writes its lines.
type LogFormat uint8

// The formats of a LogHandler's lines.
const (
	LogText LogFormat = iota // as slog.TextHandler writes them
	LogJSON                  // as slog.JSONHandler writes them
)

// LogHandler is a slog.Handler that writes lines exactly as
// slog.TextHandler or slog.JSONHandler (with only a level set) would,
// and lets an AccessLog built on its logger write each access line
// itself: its fields appended straight into a reused buffer, handed to
// the writer in one Write, with no slog.Record made. The commands log
// through one; an AccessLog given any other logger logs through slog.
//
//	logger := slog.New(observe.NewLogHandler(w, observe.LogText, slog.LevelInfo))
//	access := observe.NewAccessLog(logger) // writes its lines directly
//
// The handler stays direct through WithAttrs of strings, integers,
// booleans and durations (the stack's part=gateway); after WithGroup,
// or an attribute of another kind, the AccessLog logs through slog.
type LogHandler struct {
	inner  slog.Handler
	w      io.Writer // safe for concurrent writes
	format LogFormat
	level  slog.Level
	pre    []byte // WithAttrs' attributes as they follow msg, each with its separator
	direct bool   // the access lines may be written directly
	clock  *lineClock
}

var _ slog.Handler = (*LogHandler)(nil)

// NewLogHandler returns the handler writing lines of format at level or
// above to w. Writes to w are serialized unless w is an
// *asyncwriter.Writer, which takes concurrent writes.
func NewLogHandler(w io.Writer, format LogFormat, level slog.Level) *LogHandler {
	if _, ok := w.(*asyncwriter.Writer); !ok {
		w = &lockedWriter{w: w}
	}
	opts := &slog.HandlerOptions{Level: level}
	h := &LogHandler{w: w, format: format, level: level, direct: true, clock: &lineClock{}}
	if format == LogJSON {
		h.inner = slog.NewJSONHandler(w, opts)
	} else {
		h.inner = slog.NewTextHandler(w, opts)
	}
	return h
}

// Enabled reports whether l is at the handler's level or above.
func (h *LogHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level }

// Handle writes r as slog's handler would.
func (h *LogHandler) Handle(ctx context.Context, r slog.Record) error {
	return h.inner.Handle(ctx, r)
}

// WithAttrs returns a handler whose lines carry attrs after the message.
func (h *LogHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	if len(attrs) == 0 {
		return h
	}
	next := *h
	next.inner = h.inner.WithAttrs(attrs)
	next.pre = append([]byte(nil), h.pre...)
	for _, a := range attrs {
		var ok bool
		if next.pre, ok = appendAttr(next.pre, h.format, a); !ok {
			next.direct = false
		}
	}
	return &next
}

// WithGroup returns a handler whose later attributes are in the group
// name; its access lines go through slog.
func (h *LogHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	next := *h
	next.inner = h.inner.WithGroup(name)
	next.direct = false
	return &next
}

// lockedWriter serializes the writes of the slog handler and of the
// access lines to a writer that may not take concurrent ones.
type lockedWriter struct {
	mu sync.Mutex // guards w
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
