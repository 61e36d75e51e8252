package wire

import (
	"encoding/json"

	socketv1 "github.com/streamgate/streamgate/gen/streamgate/socket/v1"
	"github.com/streamgate/streamgate/status"
)

// EncodeBody is a request's body or an event's data as JSON: nil stays
// nil, raw JSON ([]byte or json.RawMessage) goes untouched, any other
// value is encoded; a value that cannot be is INVALID_ARGUMENT.
func EncodeBody(body any) ([]byte, error) {
	switch b := body.(type) {
	case nil:
		return nil, nil
	case json.RawMessage:
		return b, nil
	case []byte:
		return b, nil
	}
	b, err := json.Marshal(body)
	if err != nil {
		return nil, status.Errorf(status.CodeInvalidArgument, "the body could not be encoded as JSON").WithCause(err)
	}
	return b, nil
}

// RawRequest is a request frame's body with its raw JSON payload, both in
// one allocation.
func RawRequest(action, resourceID string, raw []byte, meta *socketv1.Meta) *socketv1.Request {
	rr := &struct {
		req  socketv1.Request
		body socketv1.Request_BodyRaw
	}{body: socketv1.Request_BodyRaw{BodyRaw: raw}}
	rr.req.Action, rr.req.ResourceId, rr.req.Payload, rr.req.Meta = action, resourceID, &rr.body, meta
	return &rr.req
}

// RequestFrame wraps r in the frame that carries it, the frame and its
// oneof wrapper in one allocation.
func RequestFrame(r *socketv1.Request) *socketv1.ConnectRequest {
	f := &struct {
		frame socketv1.ConnectRequest
		wrap  socketv1.ConnectRequest_Request
	}{wrap: socketv1.ConnectRequest_Request{Request: r}}
	f.frame.Frame = &f.wrap
	return &f.frame
}
