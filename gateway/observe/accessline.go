package observe

import (
	"encoding/hex"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"
)

// The access line's encoder: what slog.TextHandler and slog.JSONHandler
// write for a record of string, integer, boolean and duration attributes,
// appended straight into a buffer.

// lineClock formats the lines' times, the date, time of day and zone of
// the current second formatted once: slog.TextHandler's RFC 3339 to the
// millisecond (truncated), slog.JSONHandler's RFC3339Nano.
type lineClock struct {
	second atomic.Pointer[secondStamp] // the latest second formatted
}

// secondStamp is one second's formatted parts.
type secondStamp struct {
	unix int64
	loc  *time.Location
	day  []byte // 2006-01-02T15:04:05
	zone []byte // Z07:00
}

// appendTime appends t as f's handler writes a record's time.
func (c *lineClock) appendTime(b []byte, f LogFormat, t time.Time) []byte {
	st := c.second.Load()
	if st == nil || st.unix != t.Unix() || st.loc != t.Location() {
		st = &secondStamp{unix: t.Unix(), loc: t.Location(),
			day: t.AppendFormat(nil, "2006-01-02T15:04:05"), zone: t.AppendFormat(nil, "Z07:00")}
		c.second.Store(st)
	}
	b = append(b, st.day...)
	ns := t.Nanosecond()
	if f == LogJSON {
		b = appendFraction(b, ns)
	} else {
		ms := ns / int(time.Millisecond)
		b = append(b, '.', byte('0'+ms/100), byte('0'+ms/10%10), byte('0'+ms%10))
	}
	return append(b, st.zone...)
}

// appendFraction appends ns as RFC3339Nano's fraction of a second:
// nothing when 0, else a point and up to nine digits, trailing zeros
// dropped.
func appendFraction(b []byte, ns int) []byte {
	if ns == 0 {
		return b
	}
	var digits [9]byte
	for i := 8; i >= 0; i-- {
		digits[i] = byte('0' + ns%10)
		ns /= 10
	}
	n := 9
	for digits[n-1] == '0' {
		n--
	}
	b = append(b, '.')
	return append(b, digits[:n]...)
}

// lineBufs are the access lines' buffers, reused.
var lineBufs = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// maxPooledLine bounds the buffers kept for reuse.
const maxPooledLine = 16 << 10

// writeAccess writes r's access line, ended at now, in one Write.
func (h *LogHandler) writeAccess(r *Record, now time.Time) {
	bp := lineBufs.Get().(*[]byte)
	b := h.appendAccess((*bp)[:0], r, now)
	_, _ = h.w.Write(b) // a log has no one to tell
	if cap(b) <= maxPooledLine {
		*bp = b
		lineBufs.Put(bp)
	}
}

// appendAccess appends r's access line, ended at now, with its newline.
func (h *LogHandler) appendAccess(b []byte, r *Record, now time.Time) []byte {
	a := accessOf(r)
	f := h.format
	if f == LogJSON {
		b = append(b, `{"time":"`...)
		b = h.clock.appendTime(b, f, now)
		b = append(b, `","level":"INFO","msg":"`+accessMessage+`"`...)
	} else {
		b = append(b, "time="...)
		b = h.clock.appendTime(b, f, now)
		b = append(b, " level=INFO msg="+accessMessage...)
	}
	b = append(b, h.pre...)
	b = appendStringField(b, f, "protocol", r.Protocol)
	b = appendStringField(b, f, "method", r.Method)
	b = appendPlainKey(b, f, "path")
	b = appendValidString(b, f, r.Path)
	b = appendStringField(b, f, "request_id", r.RequestID)
	b = appendPlainKey(b, f, "trace_id")
	if a.trace.IsValid() {
		b = appendTraceID(b, f, a.trace)
	} else {
		b = appendString(b, f, a.traceID)
	}
	b = appendStringField(b, f, "version", r.Version)
	if r.Route != nil && r.Route.fields != nil {
		b = append(b, r.Route.fields[f]...)
	} else {
		b = appendRouteFields(b, f, a.route, a.actions)
	}
	b = appendStringField(b, f, "principal", r.Principal)
	b = appendPlainKey(b, f, "status")
	b = strconv.AppendInt(b, int64(a.status), 10)
	b = appendPlainKey(b, f, "duration")
	b = appendDuration(b, f, now.Sub(r.Start))
	b = appendStringField(b, f, "cache", r.Cache)
	if r.Replayed {
		b = appendPlainKey(b, f, "replayed")
		b = append(b, "true"...)
	}
	if r.GRPCCode != "" {
		b = appendStringField(b, f, "grpc_code", r.GRPCCode)
	}
	if f == LogJSON {
		b = append(b, '}')
	}
	return append(b, '\n')
}

// appendRouteFields appends the access line's route and actions fields.
func appendRouteFields(b []byte, f LogFormat, route, actions string) []byte {
	b = appendStringField(b, f, "route", route)
	return appendStringField(b, f, "actions", actions)
}

// appendAttr appends a as a field of a line (separator, key, value) and
// reports whether it could: a's value is a string, an integer, a boolean
// or a duration, and its key is not empty.
func appendAttr(b []byte, f LogFormat, a slog.Attr) ([]byte, bool) {
	v := a.Value.Resolve()
	if a.Key == "" {
		return b, false
	}
	b = appendKey(b, f, a.Key)
	switch v.Kind() {
	case slog.KindString:
		return appendString(b, f, v.String()), true
	case slog.KindInt64:
		return strconv.AppendInt(b, v.Int64(), 10), true
	case slog.KindUint64:
		return strconv.AppendUint(b, v.Uint64(), 10), true
	case slog.KindBool:
		return strconv.AppendBool(b, v.Bool()), true
	case slog.KindDuration:
		return appendDuration(b, f, v.Duration()), true
	}
	return b, false
}

// appendStringField appends the field key=s; key is one of the access
// line's own, which need no quoting or escaping.
func appendStringField(b []byte, f LogFormat, key, s string) []byte {
	return appendString(appendPlainKey(b, f, key), f, s)
}

// appendPlainKey is appendKey for a key that needs no quoting or
// escaping: the access line's own.
func appendPlainKey(b []byte, f LogFormat, key string) []byte {
	if f == LogJSON {
		b = append(b, ',', '"')
		b = append(b, key...)
		return append(b, '"', ':')
	}
	b = append(b, ' ')
	b = append(b, key...)
	return append(b, '=')
}

// appendKey appends the separator before a field and its key: ` key=` or
// `,"key":`.
func appendKey(b []byte, f LogFormat, key string) []byte {
	if f == LogJSON {
		b = append(b, ',')
		b = appendString(b, f, key)
		return append(b, ':')
	}
	b = append(b, ' ')
	b = appendString(b, f, key)
	return append(b, '=')
}

// appendDuration appends d: text as time.Duration's String, JSON as its
// nanoseconds.
func appendDuration(b []byte, f LogFormat, d time.Duration) []byte {
	if f == LogJSON {
		return strconv.AppendInt(b, int64(d), 10)
	}
	return append(b, d.String()...)
}

// appendTraceID appends a trace id as TraceID.String spells it: 32
// lower-case hex digits, which text needs not quote.
func appendTraceID(b []byte, f LogFormat, id [16]byte) []byte {
	if f == LogJSON {
		b = append(b, '"')
		b = hex.AppendEncode(b, id[:])
		return append(b, '"')
	}
	return hex.AppendEncode(b, id[:])
}

// appendValidString appends s with each run of invalid UTF-8 replaced by
// U+FFFD, copying it only then (rare: a path is checked at the edge).
func appendValidString(b []byte, f LogFormat, s string) []byte {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	return appendString(b, f, s)
}

// appendString appends a string value: text quoted (strconv.Quote) only
// when it is empty or holds a space, '=', '"', a control or unprintable
// character or invalid UTF-8; JSON quoted, escaped as slog escapes.
func appendString(b []byte, f LogFormat, s string) []byte {
	if f == LogJSON {
		b = append(b, '"')
		b = appendJSONEscaped(b, s)
		return append(b, '"')
	}
	if textNeedsQuotes(s) {
		return strconv.AppendQuote(b, s)
	}
	return append(b, s...)
}

// textQuoted are the ASCII bytes for which slog.TextHandler quotes a
// string: controls, space, '=' and '"'.
var textQuoted = func() (t [utf8.RuneSelf]bool) {
	for c := range ' ' + 1 {
		t[c] = true
	}
	t['='], t['"'] = true, true
	return t
}()

// textNeedsQuotes reports whether slog.TextHandler quotes s.
func textNeedsQuotes(s string) bool {
	if s == "" {
		return true
	}
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if textQuoted[c] {
				return true
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError || unicode.IsSpace(r) || !unicode.IsPrint(r) {
			return true
		}
		i += n
	}
	return false
}

// lowerHex are the digits of JSON's \u escapes.
const lowerHex = "0123456789abcdef"

// appendJSONEscaped appends s as the inside of a JSON string, escaped as
// slog.JSONHandler escapes: '"' and '\\' by a backslash; \n, \r and \t
// by name; other bytes below 0x20 as \u00XX; invalid UTF-8 as \ufffd;
// U+2028 and U+2029 as \u2028 and \u2029; all else as is (no HTML
// escapes).
func appendJSONEscaped(b []byte, s string) []byte {
	from := 0 // s[from:i] is still to copy as is
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= ' ' && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[from:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, `\n`...)
			case '\r':
				b = append(b, `\r`...)
			case '\t':
				b = append(b, `\t`...)
			default:
				b = append(b, '\\', 'u', '0', '0', lowerHex[c>>4], lowerHex[c&0xf])
			}
			i++
			from = i
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			b = append(b, s[from:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[from:i]...)
			b = append(b, `\u202`...)
			b = append(b, lowerHex[r&0xf])
		default:
			i += n
			continue
		}
		i += n
		from = i
	}
	return append(b, s[from:]...)
}
