package socket_test

import (
	"testing"

	socketv1 "github.com/streamgate/streamgate/gen/streamgate/socket/v1"
	"github.com/streamgate/streamgate/services/socket/sockettest"
)

// TestFrameDeadlineAnswersDeadlineExceeded: a read whose frame deadline
// (timeout_ms) passes while its handler runs is answered
// DEADLINE_EXCEEDED on the wire (docs/protocol.md §5), not CANCELED: the
// coalesced run it shares is cancelled when its last caller leaves, and
// that cancellation must not stand in for the caller's deadline.
func TestFrameDeadlineAnswersDeadlineExceeded(t *testing.T) {
	t.Parallel()
	ts := sockettest.StartServer(t, sockettest.Spec{Bufconn: true})
	stream, err := sockettest.RawConn(t, ts).Connect(sockettest.WithKey(sockettest.Context(t), sockettest.TestKey))
	if err != nil {
		t.Fatal(err)
	}
	err = stream.Send(&socketv1.ConnectRequest{Frame: &socketv1.ConnectRequest_Request{Request: &socketv1.Request{
		Id: 1, Action: "ECHO", Payload: &socketv1.Request_BodyRaw{BodyRaw: []byte(`{"text":"x","delay_ms":30000}`)}, TimeoutMs: 100,
	}}})
	if err != nil {
		t.Fatal(err)
	}
	f, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if got := f.GetResponse().GetError().GetCode(); got != "DEADLINE_EXCEEDED" {
		t.Fatalf("a read past its timeout_ms answered %v, want DEADLINE_EXCEEDED", f)
	}
}
