package wsedge

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"strings"

	"github.com/coder/websocket"

	"github.com/streamgate/streamgate/internal/envelope"
	"github.com/streamgate/streamgate/services/socket"
	"github.com/streamgate/streamgate/status"
)

// The WebSocket endpoint's wire names (README, "WebSocket"): its
// subprotocol, its frame types and its close codes.
const (
	// socketSubprotocol is the subprotocol a client must offer.
	socketSubprotocol = "streamgate.v1"
	// socketResource is the last path segment of the endpoint,
	// GET /{version}/socket.
	socketResource = "socket"

	frameAuth        = "auth"
	frameRequest     = "request"
	frameResponse    = "response"
	frameCancel      = "cancel"
	frameSubscribe   = "subscribe"
	frameUnsubscribe = "unsubscribe"
	frameEvent       = "event"
	frameGap         = "gap"

	// closeInvalidFrame closes a socket that sent a frame the gateway
	// cannot answer: not a JSON object, without a usable id, or an auth
	// frame that is not the first.
	closeInvalidFrame websocket.StatusCode = 4400
	// closeUnauthenticated closes a socket whose credentials were refused:
	// a bad Authorization header or a refused auth frame.
	closeUnauthenticated websocket.StatusCode = 4401
	// closeTooSlow closes a socket whose client does not read: its send
	// queue filled.
	closeTooSlow websocket.StatusCode = 4408
	// closeGoingAway closes every socket when the gateway drains, after
	// the answers in flight were sent.
	closeGoingAway = websocket.StatusGoingAway

	// reasonTooManyInFlight answers a request frame over the socket's
	// in-flight bound (429).
	reasonTooManyInFlight = "too_many_in_flight"
	// reasonDuplicateID answers a request frame whose id is in flight.
	reasonDuplicateID = "duplicate_id"
	// reasonInvalidFrame answers a frame that has an id but is not valid.
	reasonInvalidFrame = "invalid_frame"
)

// clientFrame is any frame a client sends; which fields count depends on
// its type.
type clientFrame struct {
	Type string `json:"type"`
	// ID is the frame's id as the client wrote it (a JSON string or
	// number): answers carry the same bytes.
	ID json.RawMessage `json:"id"`

	Token string `json:"token"` // auth

	Method string `json:"method"` // request, path form
	Path   string `json:"path"`   // relative to the version: /users/1?x=y
	Action string `json:"action"` // request, action form
	// ResourceID is the action form's id, a JSON string or number.
	ResourceID     json.RawMessage `json:"resource_id"`
	Body           json.RawMessage `json:"body"`
	IdempotencyKey string          `json:"idempotency_key"`
	TimeoutMS      json.RawMessage `json:"timeout_ms"`

	Topic string `json:"topic"` // subscribe, unsubscribe
	// Since is the seq of the last event of the topic the client saw, and
	// Epoch the epoch it belongs to (subscribe): the events after it
	// follow when they are still held.
	Since json.RawMessage `json:"since"`
	Epoch string          `json:"epoch"`

	key string // ID's text: the in-flight table's key
}

// frameError is a frame that cannot be served: answered with a response
// frame (status 400) when it has an id, otherwise the socket closes with
// closeInvalidFrame.
type frameError struct {
	id  json.RawMessage // nil: the frame has no usable id
	err *status.Error
}

// decodeFrame decodes and checks one client frame. It never panics on any
// input (see FuzzDecodeFrame).
func decodeFrame(data []byte) (*clientFrame, *frameError) {
	var f clientFrame
	derr := json.Unmarshal(data, &f)
	id, key, idOK := frameID(f.ID)
	invalid := func(format string, args ...any) (*clientFrame, *frameError) {
		e := socket.Errorf(socket.CodeInvalidArgument, format, args...).
			WithDetails(map[string]any{socket.DetailReason: reasonInvalidFrame})
		if !idOK {
			id = nil
		}
		return nil, &frameError{id: id, err: e}
	}
	if derr != nil {
		if !bytes.HasPrefix(bytes.TrimSpace(data), []byte("{")) {
			idOK = false
		}
		return invalid("the frame is not a valid JSON object: %s", jsonProblem(derr))
	}
	f.key = key
	switch f.Type {
	case frameAuth:
		return &f, nil // its token is checked with the credentials
	case frameRequest, frameCancel, frameSubscribe, frameUnsubscribe:
	case "":
		return invalid("the frame has no type")
	default:
		return invalid("unknown frame type %q", f.Type)
	}
	if !idOK {
		return invalid("a %s frame needs an id: a non-empty string or a number", f.Type)
	}
	switch f.Type {
	case frameRequest:
		return checkRequestFrame(&f, invalid)
	case frameSubscribe, frameUnsubscribe:
		if f.Topic == "" {
			return invalid("a %s frame needs a topic", f.Type)
		}
		if _, ok := sinceOf(f.Since); !ok {
			return invalid("since must be a non-negative integer (the seq of the last event seen)")
		}
		if len(f.Epoch) > maxFrameIDLength {
			return invalid("epoch is at most %d bytes", maxFrameIDLength)
		}
	}
	return &f, nil
}

// checkRequestFrame checks a request frame's fields.
func checkRequestFrame(f *clientFrame, invalid func(string, ...any) (*clientFrame, *frameError)) (*clientFrame, *frameError) {
	byPath := f.Method != "" || f.Path != ""
	switch {
	case byPath && f.Action != "":
		return invalid("a request frame names either method and path or an action, not both")
	case byPath && (f.Method == "" || !strings.HasPrefix(f.Path, "/")):
		return invalid("a request frame's path form needs a method and a path starting with /, relative to the version (e.g. /users/1)")
	case !byPath && f.Action == "":
		return invalid("a request frame needs a method and a path, or an action")
	}
	if len(f.ResourceID) > 0 && string(f.ResourceID) != "null" {
		if _, _, ok := frameID(f.ResourceID); !ok {
			return invalid("resource_id must be a non-empty string or a number")
		}
	}
	if _, ok := timeoutOf(f.TimeoutMS); !ok {
		return invalid("timeout_ms must be a positive integer")
	}
	f.Method = strings.ToUpper(f.Method)
	return f, nil
}

// frameID checks an id (or resource_id): a non-empty JSON string or a
// number. It returns the id's bytes as sent and its text.
func frameID(raw json.RawMessage) (json.RawMessage, string, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return nil, "", false
	}
	if raw[0] == '"' {
		var s string
		if json.Unmarshal(raw, &s) != nil || s == "" || len(s) > maxFrameIDLength {
			return nil, "", false
		}
		return raw, s, true
	}
	var n json.Number
	if json.Unmarshal(raw, &n) != nil || len(raw) > maxFrameIDLength {
		return nil, "", false
	}
	return raw, n.String(), true
}

// maxFrameIDLength bounds an id's length.
const maxFrameIDLength = 128

// timeoutOf reads timeout_ms: absent (0) or a positive integer.
func timeoutOf(raw json.RawMessage) (int64, bool) {
	if len(raw) == 0 || string(raw) == "null" {
		return 0, true
	}
	ms, err := strconv.ParseInt(string(bytes.TrimSpace(raw)), 10, 64)
	if err != nil || ms <= 0 {
		return 0, false
	}
	return ms, true
}

// sinceOf reads since: absent (0) or a non-negative integer.
func sinceOf(raw json.RawMessage) (uint64, bool) {
	if len(raw) == 0 || string(raw) == "null" {
		return 0, true
	}
	seq, err := strconv.ParseUint(string(bytes.TrimSpace(raw)), 10, 64)
	if err != nil {
		return 0, false
	}
	return seq, true
}

// jsonProblem words a decoding error without echoing the frame.
func jsonProblem(err error) string {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return "syntax error at offset " + strconv.FormatInt(syntax.Offset, 10)
	case errors.As(err, &typ):
		return "field " + typ.Field + " must be a JSON " + typ.Type.Kind().String()
	}
	return "malformed"
}

// responseFrame encodes an answer as a response frame:
// {"type":"response","id":…,"status":…, then the REST envelope's fields
// ("ok", "result" or "error"), plus "replayed", "location" and
// "retry_after" when the answer has them.
func responseFrame(id json.RawMessage, a Answer) []byte {
	env := envelope.Encode(a.Result, a.Err) // {"ok":…}\n
	env = bytes.TrimSuffix(env, []byte("\n"))
	b := make([]byte, 0, len(env)+len(id)+64)
	b = append(b, `{"type":"response","id":`...)
	b = append(b, id...)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(a.Status), 10)
	if a.Replayed {
		b = append(b, `,"replayed":true`...)
	}
	if a.Location != "" {
		b = append(b, `,"location":`...)
		loc, _ := json.Marshal(a.Location)
		b = append(b, loc...)
	}
	if ra := a.RetryAfter; ra > 0 {
		b = append(b, `,"retry_after":`...)
		b = strconv.AppendInt(b, int64(ra), 10)
	}
	b = append(b, ',')
	return append(b, env[1:]...)
}

// authOKFrame answers an accepted auth frame.
var authOKFrame = []byte(`{"type":"auth","ok":true}`)

// eventHead is how every event frame begins: a conflated event's
// "skipped" goes right after it (withSkipped).
const eventHead = `{"type":"event",`

// eventFrame encodes an event: {"type":"event","topic":…,"seq":…,"data":…}.
func eventFrame(topic string, seq uint64, epoch string, data json.RawMessage) []byte {
	t, _ := json.Marshal(topic)
	if len(data) == 0 {
		data = json.RawMessage("null")
	}
	b := make([]byte, 0, len(t)+len(data)+len(epoch)+60)
	b = append(b, eventHead+`"topic":`...)
	b = append(b, t...)
	b = append(b, `,"seq":`...)
	b = strconv.AppendUint(b, seq, 10)
	b = appendEpoch(b, epoch)
	b = append(b, `,"data":`...)
	b = append(b, data...)
	return append(b, '}')
}

// withSkipped appends to b the event frame with "skipped":n after its
// type, {"type":"event","skipped":n,"topic":…}: the frame shared by every
// watcher stays as it is, and only this client's copy says what it
// skipped. A frame that is no event frame is appended as it is.
func withSkipped(b, frame []byte, n int) []byte {
	rest, ok := bytes.CutPrefix(frame, []byte(eventHead))
	if !ok {
		return append(b, frame...)
	}
	b = append(b, eventHead+`"skipped":`...)
	b = strconv.AppendInt(b, int64(n), 10)
	b = append(b, ',')
	return append(b, rest...)
}

// gapFrame encodes a gap marker: {"type":"gap","topic":…,"seq":…}, events
// of the topic up to seq may be missing (a client reads the object again).
func gapFrame(topic string, seq uint64, epoch string) []byte {
	t, _ := json.Marshal(topic)
	b := make([]byte, 0, len(t)+len(epoch)+52)
	b = append(b, `{"type":"`+frameGap+`","topic":`...)
	b = append(b, t...)
	b = append(b, `,"seq":`...)
	b = strconv.AppendUint(b, seq, 10)
	b = appendEpoch(b, epoch)
	return append(b, '}')
}

// appendEpoch adds `,"epoch":…` when there is one (events from the event
// log).
func appendEpoch(b []byte, epoch string) []byte {
	if epoch == "" {
		return b
	}
	e, _ := json.Marshal(epoch)
	b = append(b, `,"epoch":`...)
	return append(b, e...)
}
