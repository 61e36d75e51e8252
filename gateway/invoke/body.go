package invoke

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/streamgate/streamgate/services/socket"
	"github.com/streamgate/streamgate/status"
)

// BodyTooLarge is the error of a body over the limit (413).
func BodyTooLarge(limit int64) *status.Error {
	return socket.Errorf(socket.CodeInvalidArgument, "request body is larger than %d bytes", limit).
		WithDetails(map[string]any{socket.DetailReason: "body_too_large", "limit": limit})
}

// CheckJSON validates a body: UTF-8 (as JSON must be), well-formed JSON
// (errors name the offset) nested no deeper than maxDepth.
func CheckJSON(body []byte, maxDepth int) *status.Error {
	if !utf8.Valid(body) {
		offset := invalidUTF8At(body)
		e := notUTF8("body", fmt.Sprintf("the JSON body (at offset %d)", offset))
		e.Details["offset"] = offset
		return e
	}
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
		if se := (*json.SyntaxError)(nil); errors.As(err, &se) {
			offset = se.Offset
		}
		return socket.Errorf(socket.CodeInvalidArgument, "invalid JSON body at offset %d: %s", offset, err.Error()).
			WithDetails(map[string]any{"offset": offset})
	}
	return nil
}

// queryBody turns a list route's query parameters into a JSON object:
// page_size becomes a number, a repeated parameter a list, the rest
// strings.
func queryBody(q url.Values) ([]byte, *status.Error) {
	if len(q) == 0 {
		return nil, nil
	}
	obj := make(map[string]any, len(q))
	for _, k := range slices.Sorted(maps.Keys(q)) {
		vals := q[k]
		if !utf8.ValidString(k) {
			return nil, notUTF8("query", "a query parameter's name")
		}
		for _, v := range vals {
			if !utf8.ValidString(v) {
				return nil, notUTF8("query", fmt.Sprintf("query parameter %q", k))
			}
		}
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

// queryError words a service's complaint about a body made from the
// query (queryBody) in terms of query parameters.
func queryError(e *status.Error) *status.Error {
	field, _ := e.Details["field"].(string)
	if e.Code != socket.CodeInvalidArgument || field == "" {
		return e
	}
	msg := e.Message
	switch {
	case e.Details[socket.DetailReason] == socket.ReasonUnknownField:
		msg = fmt.Sprintf("unknown query parameter %q", field)
	case strings.HasPrefix(msg, "invalid body: field "):
		msg = "query parameter " + strings.TrimPrefix(msg, "invalid body: field ")
	}
	c := *e
	c.Message = msg
	return &c
}

// invalidUTF8At returns the offset of the first byte of b that does not
// start a valid UTF-8 sequence.
func invalidUTF8At(b []byte) int {
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n <= 1 {
			return i
		}
		i += n
	}
	return len(b)
}
