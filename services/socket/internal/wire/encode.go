package wire

import (
	"errors"
	"fmt"
	"unicode/utf8"

	"google.golang.org/grpc/encoding"
	grpcproto "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Frames are encoded before they reach gRPC. gRPC ends a whole stream
// when a message fails to encode in Send (a proto string that is not
// UTF-8), and the peer ends it when a frame is over its receive limit: one
// bad value would take the stream away from every request on it. Encoding
// first turns both into an error of the one frame they belong to.

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

// Frame is a frame encoded by Encode, sent as it is by a stream that
// uses Codec: the bytes are marshalled once, in the goroutine that made
// the frame, and gRPC writes them without encoding, copying or sizing them
// again. A Frame is sent at most once.
type Frame struct {
	data  mem.BufferSlice // handed to gRPC by Codec.Marshal, which then owns it
	one   [1]mem.Buffer   // data's backing array, allocated with the Frame
	small mem.SliceBuffer // a small frame's bytes, one[0] pointing here: no Buffer of its own to allocate
}

// Encode encodes msg, refusing a frame over limit bytes or with a string
// that is not UTF-8. Send the result with SendMsg on a stream whose codec
// is Codec.
func Encode(msg proto.Message, limit int) (*Frame, error) {
	n := proto.Size(msg)
	if n > limit {
		return nil, &frameError{size: n, limit: limit}
	}
	// Small frames are plain slices (gRPC's own codec does the same); the
	// pool's buffers are for large ones, returned once written.
	var pooled *[]byte
	var b []byte
	if mem.IsBelowBufferPoolingThreshold(n) {
		b = make([]byte, 0, n)
	} else {
		pooled = mem.DefaultBufferPool().Get(n)
		b = (*pooled)[:0]
	}
	// UseCachedSize: Size above measured this very message, which no one
	// changes meanwhile.
	b, err := proto.MarshalOptions{UseCachedSize: true}.MarshalAppend(b, msg)
	if err != nil {
		if pooled != nil {
			mem.DefaultBufferPool().Put(pooled)
		}
		fe := &frameError{field: invalidUTF8(msg.ProtoReflect(), "")}
		return nil, fmt.Errorf("%w: %w", fe, err)
	}
	f := &Frame{}
	if pooled == nil {
		f.small = b
		f.one[0] = &f.small
	} else {
		*pooled = b
		f.one[0] = mem.NewBuffer(pooled, mem.DefaultBufferPool())
	}
	f.data = f.one[:]
	return f, nil
}

// Codec is the stream's codec on both ends: a *Frame goes out as the
// bytes Encode made, anything else is protobuf as gRPC's own codec does
// it. Its name is gRPC's ("proto"), so the wire is unchanged.
type Codec struct{}

// protoCodec is gRPC's protobuf codec, which Codec defers to.
var protoCodec = encoding.GetCodecV2(grpcproto.Name)

// Marshal hands a *Frame's bytes to gRPC, which frees them once written;
// other messages are protobuf.
func (Codec) Marshal(v any) (mem.BufferSlice, error) {
	if f, ok := v.(*Frame); ok {
		data := f.data
		if data == nil {
			return nil, errors.New("a frame sent twice")
		}
		f.data = nil
		return data, nil
	}
	return protoCodec.Marshal(v)
}

// Unmarshal decodes protobuf, as gRPC's own codec does.
func (Codec) Unmarshal(data mem.BufferSlice, v any) error { return protoCodec.Unmarshal(data, v) }

// Name is gRPC's name for protobuf, the content-subtype both ends agree on.
func (Codec) Name() string { return protoCodec.Name() }

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
