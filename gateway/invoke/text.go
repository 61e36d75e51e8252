package invoke

import (
	"encoding/binary"
	"encoding/hex"
	"math/rand/v2"
	"unicode/utf8"
	"unsafe"

	"github.com/streamgate/streamgate/services/socket"
	"github.com/streamgate/streamgate/status"
)

// Text from outside is checked here before it reaches a frame, a span, a
// log line or a metric label. Protobuf refuses to encode a string that is
// not UTF-8, so such text must never get as far as a socket frame: what a
// service acts on (ids, paths, queries, bodies) is refused with 400
// INVALID_ARGUMENT naming the part (reason invalid_utf8, details.field);
// what is only a hint (X-Request-Id, traceparent, tracestate) is replaced
// or dropped. The socket runtime fails a frame that still cannot be
// encoded on its own, never the stream (services/socket/internal/wire/encode.go).

// reasonInvalidUTF8 marks a refusal of text that is not UTF-8.
const reasonInvalidUTF8 = "invalid_utf8"

// maxHintBytes bounds a trace header the gateway forwards.
const maxHintBytes = 512

// notUTF8 refuses text that is not UTF-8; field names the part of the
// request, what names a value of it in the message ("" for the part).
func notUTF8(field, what string) *status.Error {
	if what == "" {
		what = field
	}
	return socket.Errorf(socket.CodeInvalidArgument, "%s is not valid UTF-8", what).
		WithDetails(map[string]any{socket.DetailReason: reasonInvalidUTF8, "field": field})
}

// checkText refuses a path whose segments are not UTF-8. parsePath
// checks REST and WebSocket paths segment by segment; this holds for
// every edge, whatever built the path.
func (p Path) checkText() *status.Error {
	for _, s := range [...]string{p.version, p.resource, p.id, p.segment} {
		if !utf8.ValidString(s) {
			return notUTF8("path", "")
		}
	}
	return nil
}

// SanitizeHints drops the trace headers that are not printable ASCII of
// sane length, and replaces such a request id: they are hints, so a bad
// one is not worth refusing a request over.
func (in *Invocation) SanitizeHints() {
	in.RequestID = SaneRequestID(in.RequestID)
	if !isHint(in.TraceParent) {
		in.TraceParent = ""
	}
	if !isHint(in.TraceState) {
		in.TraceState = ""
	}
}

// isHint reports whether a trace header may be forwarded: printable ASCII
// (spaces allowed, as tracestate lists have them) within maxHintBytes.
func isHint(s string) bool {
	if len(s) > maxHintBytes {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// NewRequestID is a random request id (32 hex digits), from math/rand/v2's
// generator (ChaCha8 per thread, seeded by the system): as unpredictable
// as crypto/rand's for an id, at a fraction of the cost on every request
// that comes without one.
func NewRequestID() string { return NewRequestIDValues()[0] }

// NewRequestIDValues returns a new request id as a header's values: the
// slice and the id are one allocation.
func NewRequestIDValues() []string {
	b := binary.LittleEndian.AppendUint64(binary.LittleEndian.AppendUint64(make([]byte, 0, 16), rand.Uint64()), rand.Uint64())
	v := new(struct {
		values [1]string
		text   [32]byte
	})
	hex.Encode(v.text[:], b)
	v.values[0] = unsafe.String(&v.text[0], len(v.text)) // text is never written again
	return v.values[:]
}

// SaneRequestID returns id when it may serve as a request id (1 to 128
// printable ASCII characters), or a new one.
func SaneRequestID(id string) string {
	if id == "" || len(id) > 128 || !isPrintableASCII(id) {
		return NewRequestID()
	}
	return id
}

func isPrintableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
