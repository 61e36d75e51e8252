package rest

import (
	"net/http"
	"strconv"
	"time"

	"github.com/streamgate/streamgate/gateway/invoke"
	"github.com/streamgate/streamgate/services/socket"
	"github.com/streamgate/streamgate/status"
)

// Header names the edge reads or writes (the gRPC edge forwards some to
// GatewayService's REST binding).
const (
	HeaderRequestID      = "X-Request-Id"
	HeaderIdempotencyKey = "Idempotency-Key"
	HeaderAPIKey         = "X-Api-Key"
	headerGRPCTimeout    = "Grpc-Timeout"
	headerTimeout        = "Timeout"
	HeaderTraceParent    = "Traceparent"
	HeaderTraceState     = "Tracestate"
	HeaderReplayed       = "Idempotent-Replayed"
	HeaderRetryAfter     = "Retry-After"
	headerAuthorization  = "Authorization"
	headerCacheControl   = "Cache-Control"
	headerIfNoneMatch    = "If-None-Match"
	headerContentType    = "Content-Type"
	headerOrigin         = "Origin"
)

// get returns the first value of the header named canonical, a name in
// canonical form (the names above; TestHeaderNamesAreCanonical): one map
// lookup, without Header.Get's canonicalizing of the name. The server
// stores every request header under its canonical name, so it finds what
// Header.Get finds.
func get(h http.Header, canonical string) string {
	if v := h[canonical]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// RequestID returns the client's X-Request-Id when it is sane, or a new one.
func RequestID(r *http.Request) string {
	return invoke.SaneRequestID(get(r.Header, HeaderRequestID))
}

// requestIDValues is RequestID as the answer's X-Request-Id values,
// without allocating for a client's sane id: its own values (which
// nothing writes to) when it sent one, one allocation for a new id.
func requestIDValues(r *http.Request) []string {
	v := r.Header[HeaderRequestID]
	if len(v) == 0 {
		return invoke.NewRequestIDValues()
	}
	id := invoke.SaneRequestID(v[0])
	if len(v) == 1 && id == v[0] {
		return v
	}
	return []string{id}
}

// clientTimeout reads the deadline a client asks for: Grpc-Timeout in gRPC
// form ("500m", "2S") or Timeout as a Go duration ("2s") or milliseconds.
func clientTimeout(h http.Header) (time.Duration, *status.Error) {
	if v := get(h, headerGRPCTimeout); v != "" {
		d, ok := parseGRPCTimeout(v)
		if !ok {
			return 0, socket.Errorf(socket.CodeInvalidArgument, "bad Grpc-Timeout %q", v)
		}
		return d, nil
	}
	if v := get(h, headerTimeout); v != "" {
		if ms, err := strconv.ParseInt(v, 10, 64); err == nil && ms > 0 {
			return time.Duration(ms) * time.Millisecond, nil
		}
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return 0, socket.Errorf(socket.CodeInvalidArgument, "bad Timeout %q: want a duration such as 2s", v)
		}
		return d, nil
	}
	return 0, nil
}

func parseGRPCTimeout(v string) (time.Duration, bool) {
	if len(v) < 2 || len(v) > 9 {
		return 0, false
	}
	n, err := strconv.ParseInt(v[:len(v)-1], 10, 64)
	if err != nil || n <= 0 {
		return 0, false
	}
	unit := map[byte]time.Duration{'H': time.Hour, 'M': time.Minute, 'S': time.Second, 'm': time.Millisecond, 'u': time.Microsecond, 'n': time.Nanosecond}[v[len(v)-1]]
	if unit == 0 {
		return 0, false
	}
	return time.Duration(n) * unit, true
}
