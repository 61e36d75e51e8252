package status

import (
	"encoding/json"
	"strings"

	"google.golang.org/grpc/codes"
	grpcstatus "google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"

	socketv1 "github.com/streamgate/streamgate/gen/streamgate/socket/v1"
)

// Proto returns the wire form of e (socketv1.Error), as response frames
// and the gateway's Invoke carry it; the cause stays behind. Details that
// do not encode as a JSON object are dropped rather than failing the
// answer; text that is not UTF-8 (which protobuf refuses to encode) has
// its bad bytes replaced by U+FFFD, in the message as in details
// (encoding/json does that).
func (e *Error) Proto() *socketv1.Error {
	pe := &socketv1.Error{Code: strings.ToValidUTF8(string(e.Code), "\uFFFD"), Message: strings.ToValidUTF8(e.Message, "\uFFFD")}
	if len(e.Details) > 0 {
		if b, err := json.Marshal(e.Details); err == nil {
			var st structpb.Struct
			if protojson.Unmarshal(b, &st) == nil {
				pe.Details = &st
			}
		}
	}
	return pe
}

// FromProto returns the *Error a wire error carries, its code as sent
// (check it with Code.Valid); details is nil when it has none.
func FromProto(pe *socketv1.Error) *Error {
	e := &Error{Code: Code(pe.GetCode()), Message: pe.GetMessage()}
	if d := pe.GetDetails(); d != nil {
		e.Details = d.AsMap()
	}
	return e
}

// grpcCodes maps gRPC status codes to the standard codes, for errors that
// come from the transport rather than from a response frame.
var grpcCodes = map[codes.Code]Code{
	codes.InvalidArgument:    CodeInvalidArgument,
	codes.Unauthenticated:    CodeUnauthenticated,
	codes.PermissionDenied:   CodePermissionDenied,
	codes.NotFound:           CodeNotFound,
	codes.AlreadyExists:      CodeAlreadyExists,
	codes.FailedPrecondition: CodeFailedPrecondition,
	codes.Unimplemented:      CodeNotSupported,
	codes.ResourceExhausted:  CodeResourceExhausted,
	codes.Unavailable:        CodeUnavailable,
	codes.DeadlineExceeded:   CodeDeadlineExceeded,
	codes.Canceled:           CodeCanceled,
	codes.Internal:           CodeInternal,
	codes.Unknown:            CodeInternal,
}

// grpcMessages are the messages FromGRPC gives per code: a status's own
// text may come from the transport (addresses, dial errors) and is kept as
// the cause only.
var grpcMessages = map[Code]string{
	CodeInvalidArgument:    "the service refused the request as invalid",
	CodeUnauthenticated:    "the service did not accept the credentials",
	CodePermissionDenied:   "permission denied",
	CodeNotFound:           "not found",
	CodeAlreadyExists:      "already exists",
	CodeFailedPrecondition: "the service refused the request in its current state",
	CodeNotSupported:       "the service does not support this call",
	CodeResourceExhausted:  "the service is out of resources for this request",
	CodeUnavailable:        "the service is unavailable",
	CodeDeadlineExceeded:   "deadline exceeded",
	CodeCanceled:           "canceled",
	CodeInternal:           "internal error",
}

// FromGRPC turns a gRPC status error into an *Error with the matching
// standard code and a generic message for that code; err is kept as the
// cause (logged, never sent). An error without a status becomes
// UNAVAILABLE.
func FromGRPC(err error) *Error {
	code := CodeUnavailable
	if s, ok := grpcstatus.FromError(err); ok {
		if c := grpcCodes[s.Code()]; c != "" {
			code = c
		}
	}
	return &Error{Code: code, Message: grpcMessages[code], cause: err}
}
