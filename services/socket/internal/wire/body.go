package wire

import (
	"encoding/json"

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
