package socket

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	socketv1 "github.com/streamgate/streamgate/gen/streamgate/socket/v1"
	"github.com/streamgate/streamgate/services/socket/internal/wire"
	"github.com/streamgate/streamgate/services/socket/keyring"
	"github.com/streamgate/streamgate/status"
)

// FuzzFrame feeds arbitrary bytes to the service side of the socket as a
// client frame: decoding, admission, running the handler and encoding the
// answer must never panic, and every refusal must carry a standard code
// and a message.
func FuzzFrame(f *testing.F) {
	seed := func(m *socketv1.ConnectRequest) {
		b, err := proto.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	v, _ := structpb.NewValue(map[string]any{"text": "hi"})
	seed(&socketv1.ConnectRequest{Frame: &socketv1.ConnectRequest_Request{Request: &socketv1.Request{Id: 1, Action: "ECHO", Payload: &socketv1.Request_BodyRaw{BodyRaw: []byte(`{"text":"a"}`)}}}})
	seed(&socketv1.ConnectRequest{Frame: &socketv1.ConnectRequest_Request{Request: &socketv1.Request{Id: 2, Action: "ECHO", ResourceId: "7", Payload: &socketv1.Request_Body{Body: v}, Meta: &socketv1.Meta{ApiVersion: "v2", Principal: &socketv1.Principal{Subject: "u", Roles: []string{"admin"}}}, TimeoutMs: 5}}})
	seed(&socketv1.ConnectRequest{Frame: &socketv1.ConnectRequest_Request{Request: &socketv1.Request{Id: 3, Action: "V2_ONLY", Meta: &socketv1.Meta{ApiVersion: "v1"}}}})
	seed(&socketv1.ConnectRequest{Frame: &socketv1.ConnectRequest_Cancel{Cancel: &socketv1.Cancel{Id: 1}}})
	f.Add([]byte{})
	f.Add([]byte{0x0a, 0xff, 0xff})

	keys, err := keyring.New(keyring.Key{Name: "k", Secret: "s"}, keyring.Key{Name: "d", Secret: "t", Delegate: true})
	if err != nil {
		f.Fatal(err)
	}
	srv, err := NewServer(Config{Name: "fuzz"}, WithKeys(keys), WithMaxBodySize(256))
	if err != nil {
		f.Fatal(err)
	}
	echo := func(_ context.Context, _ string, in map[string]any) (map[string]any, error) { return in, nil }
	if err := srv.Handle("ECHO", Typed(echo), Read()); err != nil {
		f.Fatal(err)
	}
	if err := srv.Handle("V2_ONLY", Typed(echo), Versions("v2")); err != nil {
		f.Fatal(err)
	}
	plain, e := keys.Find("s")
	if e != nil {
		f.Fatal(e)
	}
	delegate, e := keys.Find("t")
	if e != nil {
		f.Fatal(e)
	}

	f.Fuzz(func(t *testing.T, b []byte) {
		var frame socketv1.ConnectRequest
		if proto.Unmarshal(b, &frame) != nil {
			return // gRPC refuses it before it reaches us
		}
		req := frame.GetRequest()
		if req == nil {
			return
		}
		for _, key := range []*keyring.Entry{plain, delegate} {
			adm, e := srv.admit(key, req)
			if e != nil {
				checkError(t, e)
				checkResponse(t, newResponse(req.GetId(), false, nil, e))
				continue
			}
			if len(adm.req.Body) > 256 {
				t.Fatalf("admitted a %d-byte body over the 256-byte limit", len(adm.req.Body))
			}
			r := &run{}
			srv.handlerContext(context.Background(), &adm, r)
			res, e := srv.exec(r.context(), &adm)
			r.cancel()
			if e != nil {
				checkError(t, e)
			} else if !json.Valid(res) {
				t.Fatalf("handler result is not JSON: %q", res)
			}
			checkResponse(t, newResponse(req.GetId(), adm.raw, res, e))
		}
	})
}

func checkError(t *testing.T, e *status.Error) {
	t.Helper()
	if !e.Code.Valid() || e.Message == "" {
		t.Fatalf("refusal without a standard code or message: %#v", e)
	}
}

// checkResponse encodes and decodes the response as the wire would.
func checkResponse(t *testing.T, r *socketv1.Response) {
	t.Helper()
	b, err := proto.Marshal(r)
	if err != nil {
		t.Fatalf("response does not encode: %v", err)
	}
	var back socketv1.Response
	if err := proto.Unmarshal(b, &back); err != nil {
		t.Fatalf("response does not decode: %v", err)
	}
	if _, err := wire.Result(&back); err != nil {
		if status.CodeOf(err) == "" {
			t.Fatalf("result error without code: %v", err)
		}
	} else if !back.GetOk() {
		t.Fatal("a failed response decoded as a result")
	}
}

// FuzzDecodeBody checks the strict body decoder never panics and always
// explains a refusal.
func FuzzDecodeBody(f *testing.F) {
	for _, s := range []string{`{"text":"a","delay_ms":1}`, `{"text":`, `{"text":1}`, `{} {}`, `null`, `[]`, ``, `{"x":1}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var v struct {
			Text  string `json:"text"`
			Delay int    `json:"delay_ms"`
		}
		if err := DecodeBody(b, &v); err != nil {
			e := status.AsError(err)
			if e.Code != CodeInvalidArgument || e.Message == "" {
				t.Fatalf("DecodeBody(%q) = %v; want INVALID_ARGUMENT with a message", b, err)
			}
		} else if len(bytes.TrimSpace(b)) > 0 && !json.Valid(b) {
			t.Fatalf("DecodeBody accepted invalid JSON %q", b)
		}
	})
}
