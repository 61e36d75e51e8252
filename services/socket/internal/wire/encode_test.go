package wire_test

import (
	"bytes"
	"strings"
	"testing"

	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"

	socketv1 "github.com/streamgate/streamgate/gen/streamgate/socket/v1"
	"github.com/streamgate/streamgate/services/socket/internal/wire"
)

func requestFrame(resourceID string, body []byte) *socketv1.ConnectRequest {
	return &socketv1.ConnectRequest{Frame: &socketv1.ConnectRequest_Request{Request: &socketv1.Request{
		Id: 7, Action: "GET_USER", ResourceId: resourceID, Payload: &socketv1.Request_BodyRaw{BodyRaw: body},
	}}}
}

// What Codec sends for a Frame is the protobuf encoding of the message
// Encode was given, small (a plain slice) or large (a pooled buffer), and
// it decodes as that message.
func TestCodecSendsFramesAsEncoded(t *testing.T) {
	t.Parallel()
	for name, body := range map[string][]byte{
		"small": []byte(`{"id":"1"}`),
		"large": bytes.Repeat([]byte("x"), 64<<10),
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			msg := requestFrame("1", body)
			want, err := proto.Marshal(msg)
			if err != nil {
				t.Fatal(err)
			}
			f, err := wire.Encode(msg, 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			data, err := wire.Codec{}.Marshal(f)
			if err != nil {
				t.Fatal(err)
			}
			got := data.Materialize()
			data.Free() // as gRPC does once written
			if !bytes.Equal(got, want) {
				t.Fatalf("sent %d bytes that differ from the message's %d", len(got), len(want))
			}
			if _, err := (wire.Codec{}).Marshal(f); err == nil {
				t.Fatal("a frame was sent twice")
			}
			back := &socketv1.ConnectRequest{}
			if err := (wire.Codec{}).Unmarshal(mem.BufferSlice{mem.SliceBuffer(got)}, back); err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(back, msg) {
				t.Fatalf("decoded %v, want %v", back, msg)
			}
		})
	}
}

// Any other message is protobuf, as with gRPC's own codec (Describe, the
// unary Call, health); the name is gRPC's, so the wire is unchanged.
func TestCodecMarshalsOtherMessagesAsProtobuf(t *testing.T) {
	t.Parallel()
	msg := &socketv1.DescribeRequest{}
	data, err := wire.Codec{}.Marshal(msg)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := proto.Marshal(msg)
	if got := data.Materialize(); !bytes.Equal(got, want) {
		t.Fatalf("got %x, want %x", got, want)
	}
	if n := (wire.Codec{}).Name(); n != "proto" {
		t.Fatalf("codec name %q, want proto", n)
	}
}

// A frame over the limit or with a string that is not UTF-8 is refused
// by Encode, naming the size or the field, never the value.
func TestEncodeRefusesBadFrames(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, want string
		msg        *socketv1.ConnectRequest
	}{
		{"over the limit", "the limit is 64", requestFrame("1", bytes.Repeat([]byte("x"), 100))},
		{"not UTF-8", "request.resource_id is not valid UTF-8", requestFrame("\xff\xfe", nil)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f, err := wire.Encode(tc.msg, 64)
			if err == nil {
				t.Fatalf("encoded as %v", f)
			}
			if p := wire.Problem(err); !strings.Contains(p, tc.want) || strings.Contains(p, "\xff") {
				t.Fatalf("problem %q, want one with %q", p, tc.want)
			}
		})
	}
}

// A small frame costs two allocations: the Frame (with the buffer that
// holds its bytes) and its bytes (gRPC's PreparedMsg took about eight).
func TestEncodeAllocations(t *testing.T) {
	msg := requestFrame("1", []byte(`{"id":"1"}`))
	allocs := testing.AllocsPerRun(100, func() {
		f, err := wire.Encode(msg, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := (wire.Codec{}).Marshal(f); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 2 {
		t.Fatalf("%.0f allocations per frame, want at most 2", allocs)
	}
}
