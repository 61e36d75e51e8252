package wire

import (
	"context"
	"errors"
	"fmt"
	"unicode/utf8"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Frames are encoded before they reach gRPC. gRPC ends a whole stream
// when a message fails to encode in Send (a proto string that is not
// UTF-8), and the peer ends it when a frame is over its receive limit: one
// bad value would take the stream away from every request on it. Encoding
// first turns both into an error of the one frame they belong to.

// Stream is the part of a gRPC stream a frame is encoded for.
type Stream interface {
	Context() context.Context
	SendMsg(m any) error
	RecvMsg(m any) error
}

// frameError says why a frame cannot be sent; its text names the field or
// the size, never a value.
type frameError struct {
	field string // the first string field that is not UTF-8, as a path
	size  int    // the frame's size when it is over limit
	limit int
}

func (e *frameError) Error() string {
	if e.field != "" {
		return fmt.Sprintf("field %s is not valid UTF-8", e.field)
	}
	if e.size > 0 {
		return fmt.Sprintf("the frame is %d bytes; the limit is %d", e.size, e.limit)
	}
	return "the frame cannot be encoded"
}

// Encode encodes msg for s, refusing a frame over limit bytes. The
// result is sent with s.SendMsg.
func Encode(s Stream, msg proto.Message, limit int) (*grpc.PreparedMsg, error) {
	if n := proto.Size(msg); n > limit {
		return nil, &frameError{size: n, limit: limit}
	}
	pm := new(grpc.PreparedMsg)
	if err := pm.Encode(s, msg); err != nil {
		fe := &frameError{field: invalidUTF8(msg.ProtoReflect(), "")}
		return nil, fmt.Errorf("%w: %w", fe, err)
	}
	return pm, nil
}

// invalidUTF8 returns the path of the first string field of m (or its
// messages, lists and maps) that is not valid UTF-8, "" when there is none.
func invalidUTF8(m protoreflect.Message, prefix string) (path string) {
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		name := prefix + string(fd.Name())
		switch {
		case fd.IsList():
			l := v.List()
			for i := 0; i < l.Len() && path == ""; i++ {
				path = invalidValue(fd, l.Get(i), fmt.Sprintf("%s[%d]", name, i))
			}
		case fd.IsMap():
			v.Map().Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
				if fd.MapKey().Kind() == protoreflect.StringKind && !utf8.ValidString(k.String()) {
					path = name + " (a key)"
				} else {
					path = invalidValue(fd.MapValue(), mv, name+"["+k.String()+"]")
				}
				return path == ""
			})
		default:
			path = invalidValue(fd, v, name)
		}
		return path == ""
	})
	return path
}

// invalidValue is invalidUTF8 for one value of field fd.
func invalidValue(fd protoreflect.FieldDescriptor, v protoreflect.Value, name string) string {
	switch fd.Kind() {
	case protoreflect.StringKind:
		if !utf8.ValidString(v.String()) {
			return name
		}
	case protoreflect.MessageKind, protoreflect.GroupKind:
		return invalidUTF8(v.Message(), name+".")
	}
	return ""
}

// Problem is what a client may be told of why a frame was refused:
// the frameError's text, without the encoder's own.
func Problem(err error) string {
	var fe *frameError
	if errors.As(err, &fe) {
		return fe.Error()
	}
	return "it cannot be encoded"
}
