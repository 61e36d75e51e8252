package wire

import (
	"encoding/json"

	"google.golang.org/protobuf/encoding/protojson"

	socketv1 "github.com/streamgate/streamgate/gen/streamgate/socket/v1"
	"github.com/streamgate/streamgate/status"
)

// ErrorToProto converts an *status.Error for the wire; a code outside the
// standard set goes out as INTERNAL.
func ErrorToProto(e *status.Error) *socketv1.Error {
	if !e.Code.Valid() {
		e = &status.Error{Code: status.CodeInternal, Message: e.Message, Details: e.Details}
	}
	return e.Proto()
}

// ErrorFromProto converts a wire error back to an *status.Error.
func ErrorFromProto(pe *socketv1.Error) *status.Error {
	e := status.FromProto(pe)
	if !e.Code.Valid() {
		e.Code = status.CodeInternal
	}
	return e
}

// Result turns a response frame into the caller's result or error.
func Result(r *socketv1.Response) (json.RawMessage, error) {
	switch o := r.GetOutcome().(type) {
	case *socketv1.Response_ResultRaw:
		return o.ResultRaw, nil
	case *socketv1.Response_Result:
		b, err := protojson.Marshal(o.Result)
		if err != nil {
			return nil, status.Errorf(status.CodeInternal, "the result could not be decoded").WithCause(err)
		}
		return b, nil
	case *socketv1.Response_Error:
		return nil, ErrorFromProto(o.Error)
	}
	if r.GetOk() {
		return nil, nil
	}
	return nil, status.Errorf(status.CodeInternal, "response %d has neither result nor error", r.GetId())
}
