package gateway

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/streamgate/streamgate/gateway/config"
	"github.com/streamgate/streamgate/services/socket"
)

// Edge statuses that no error code maps to: the HTTP layer answers them
// before a route runs. Their envelopes still carry a standard code.
const (
	statusMethodNotAllowed = http.StatusMethodNotAllowed      // NOT_SUPPORTED
	statusTooLarge         = http.StatusRequestEntityTooLarge // INVALID_ARGUMENT, reason body_too_large
	statusMediaType        = http.StatusUnsupportedMediaType  // INVALID_ARGUMENT, reason unsupported_media_type
	statusKeyReused        = http.StatusUnprocessableEntity   // INVALID_ARGUMENT, reason idempotency_key_reused
)

// Header names the edge reads or writes.
const (
	headerRequestID      = "X-Request-Id"
	headerIdempotencyKey = "Idempotency-Key"
	headerAPIKey         = "X-Api-Key"
	headerGRPCTimeout    = "Grpc-Timeout"
	headerTimeout        = "Timeout"
	headerTraceParent    = "Traceparent"
	headerTraceState     = "Tracestate"
	headerReplayed       = "Idempotent-Replayed"
	headerRetryAfter     = "Retry-After"
)

// Metadata keys GatewayService.Invoke answers with: the headers of the
// REST edge (Idempotent-Replayed, Retry-After) in gRPC's form.
const (
	metadataReplayed   = "idempotent-replayed"
	metadataRetryAfter = "retry-after"
)

// writeEnvelope writes the standard envelope. A success's result is
// written as the service's bytes, not re-encoded.
func writeEnvelope(w http.ResponseWriter, status int, result json.RawMessage, err *socket.Error) {
	if status == http.StatusServiceUnavailable && w.Header().Get(headerRetryAfter) == "" {
		w.Header().Set(headerRetryAfter, strconv.Itoa(retryAfterOf(err)))
	}
	writeBody(w, status, envelope(result, err))
}

// writeBody writes an envelope's bytes with the status.
func writeBody(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// envelope encodes the standard envelope, a success's result as the
// service's bytes.
func envelope(result json.RawMessage, err *socket.Error) []byte {
	if err != nil {
		b, merr := json.Marshal(socket.Envelope{Error: err})
		if merr != nil {
			b = []byte(`{"ok":false,"error":{"code":"INTERNAL","message":"internal error"}}`)
		}
		return append(b, '\n')
	}
	if len(result) == 0 {
		result = json.RawMessage("null")
	}
	buf := make([]byte, 0, len(result)+24)
	buf = append(buf, `{"ok":true,"result":`...)
	buf = append(buf, result...)
	return append(buf, "}\n"...)
}

// writeError writes an error envelope with the status the error maps to
// (socket.Error.HTTPStatus).
func writeError(w http.ResponseWriter, err *socket.Error) {
	writeEnvelope(w, err.HTTPStatus(), nil, err)
}

// requestID returns the client's X-Request-Id when it is sane, or a new one.
func requestID(r *http.Request) string {
	if id := r.Header.Get(headerRequestID); id != "" && len(id) <= 128 && isPrintableASCII(id) {
		return id
	}
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func isPrintableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// checkJSON validates a body: well-formed JSON (errors name the offset)
// nested no deeper than maxDepth.
func checkJSON(body []byte, maxDepth int) *socket.Error {
	depth, inString, escaped := 0, false, false
	for i, c := range body {
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == '{' || c == '[':
			if depth++; depth > maxDepth {
				return socket.Errorf(socket.CodeInvalidArgument, "JSON body nested deeper than %d at offset %d", maxDepth, i).
					WithDetails(map[string]any{"offset": i, "max_depth": maxDepth})
			}
		case c == '}' || c == ']':
			depth--
		}
	}
	var v json.RawMessage
	if err := json.Unmarshal(body, &v); err != nil {
		offset := int64(len(body))
		if se, ok := err.(*json.SyntaxError); ok {
			offset = se.Offset
		}
		return socket.Errorf(socket.CodeInvalidArgument, "invalid JSON body at offset %d: %s", offset, err.Error()).
			WithDetails(map[string]any{"offset": offset})
	}
	return nil
}

// isJSONContentType accepts application/json with parameters (charset).
func isJSONContentType(ct string) bool {
	mt, _, _ := strings.Cut(ct, ";")
	mt = strings.TrimSpace(strings.ToLower(mt))
	return mt == "application/json" || (strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json"))
}

// queryBody turns a list route's query parameters into a JSON object:
// page_size becomes a number, a repeated parameter a list, the rest
// strings.
func queryBody(q url.Values) ([]byte, *socket.Error) {
	if len(q) == 0 {
		return nil, nil
	}
	obj := make(map[string]any, len(q))
	for _, k := range slices.Sorted(maps.Keys(q)) {
		vals := q[k]
		if k == "page_size" {
			n, err := strconv.Atoi(vals[0])
			if err != nil || n < 0 || len(vals) > 1 {
				return nil, socket.Errorf(socket.CodeInvalidArgument, "page_size must be one non-negative integer, not %q", strings.Join(vals, ","))
			}
			obj[k] = n
			continue
		}
		if len(vals) == 1 {
			obj[k] = vals[0]
		} else {
			obj[k] = vals
		}
	}
	b, _ := json.Marshal(obj)
	return b, nil
}

// clientTimeout reads the deadline a client asks for: Grpc-Timeout in gRPC
// form ("500m", "2S") or Timeout as a Go duration ("2s") or milliseconds.
func clientTimeout(h http.Header) (time.Duration, *socket.Error) {
	if v := h.Get(headerGRPCTimeout); v != "" {
		d, ok := parseGRPCTimeout(v)
		if !ok {
			return 0, socket.Errorf(socket.CodeInvalidArgument, "bad Grpc-Timeout %q", v)
		}
		return d, nil
	}
	if v := h.Get(headerTimeout); v != "" {
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

// cors applies the CORS policy; it reports whether the request was a
// preflight, already answered.
func cors(policy config.CORS, w http.ResponseWriter, r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" || len(policy.AllowedOrigins) == 0 {
		return false
	}
	allowed := slices.Contains(policy.AllowedOrigins, "*") || slices.Contains(policy.AllowedOrigins, origin)
	if !allowed {
		return false
	}
	h := w.Header()
	h.Add("Vary", "Origin")
	if slices.Contains(policy.AllowedOrigins, "*") && !policy.AllowCredentials {
		h.Set("Access-Control-Allow-Origin", "*")
	} else {
		h.Set("Access-Control-Allow-Origin", origin)
	}
	if policy.AllowCredentials {
		h.Set("Access-Control-Allow-Credentials", "true")
	}
	if r.Method != http.MethodOptions || r.Header.Get("Access-Control-Request-Method") == "" {
		if len(policy.ExposedHeaders) > 0 {
			h.Set("Access-Control-Expose-Headers", strings.Join(policy.ExposedHeaders, ", "))
		}
		return false
	}
	h.Set("Access-Control-Allow-Methods", "GET, POST, PUT, PATCH, DELETE")
	h.Set("Access-Control-Allow-Headers", strings.Join(policy.AllowedHeaders, ", "))
	if policy.MaxAge > 0 {
		h.Set("Access-Control-Max-Age", fmt.Sprint(int(policy.MaxAge.Seconds())))
	}
	w.WriteHeader(http.StatusNoContent)
	return true
}

// locationOf builds a created resource's Location from the id field of
// the result, if it has one.
func locationOf(version, resource string, result json.RawMessage) string {
	id := createdID(result)
	if id == "" {
		return ""
	}
	return "/" + url.PathEscape(version) + "/" + url.PathEscape(resource) + "/" + url.PathEscape(id)
}

// createdID is the id field (a string or a number) of a create's result.
func createdID(result json.RawMessage) string {
	var v struct {
		ID json.RawMessage `json:"id"`
	}
	if json.Unmarshal(result, &v) != nil || len(v.ID) == 0 {
		return ""
	}
	var id string
	if json.Unmarshal(v.ID, &id) != nil {
		id = string(bytes.TrimSpace(v.ID))
		if _, err := strconv.ParseFloat(id, 64); err != nil {
			return ""
		}
	}
	return id
}

func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}
