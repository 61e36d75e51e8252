// Package errproto is the wire form of a socket error (socketv1.Error), on
// plain fields so that the runtime and the edges share it without a cycle.
// It is streamgate's own, not public API.
package errproto

import (
	"encoding/json"
	"strings"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"

	socketv1 "github.com/streamgate/streamgate/gen/streamgate/socket/v1"
)

// Encode returns the wire form of an error. Details that do not encode as
// a JSON object are dropped rather than failing the answer; text that is
// not UTF-8 (which protobuf refuses to encode) has its bad bytes replaced
// by U+FFFD, in the message as in details (encoding/json does that).
func Encode(code, message string, details map[string]any) *socketv1.Error {
	pe := &socketv1.Error{Code: strings.ToValidUTF8(code, "\uFFFD"), Message: strings.ToValidUTF8(message, "\uFFFD")}
	if len(details) > 0 {
		if b, err := json.Marshal(details); err == nil {
			var st structpb.Struct
			if protojson.Unmarshal(b, &st) == nil {
				pe.Details = &st
			}
		}
	}
	return pe
}

// Decode returns the parts of a wire error; details is nil when it has
// none.
func Decode(pe *socketv1.Error) (code, message string, details map[string]any) {
	if d := pe.GetDetails(); d != nil {
		details = d.AsMap()
	}
	return pe.GetCode(), pe.GetMessage(), details
}
