package invoke

import (
	"net/http"
	"net/url"
	"testing"

	"google.golang.org/protobuf/proto"

	socketv1 "github.com/streamgate/streamgate/gen/streamgate/socket/v1"
)

// FuzzEdgeText feeds arbitrary bytes to every edge check that text from
// outside passes on its way to a frame (path, query, body, hint headers):
// whatever they accept encodes as a socket frame, so no client can make a
// frame that gRPC would refuse to send.
func FuzzEdgeText(f *testing.F) {
	for _, s := range []struct{ path, query, body, hint string }{
		{"/v1/users/1", "status=active", `{"a":"b"}`, "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
		{"/v1/users/%ff", "status=%ff", "{\"a\":\"\xff\"}", "\xff"},
		{"/v1/users/%c3%28", "%c3%28=1", "\"\xc3\x28\"", "k=\xc3\x28"},
		{"/v1/%ed%a0%80/1", "a=%ed%a0%80", "\"\xed\xa0\x80\"", "rid-\x00"},
		{"/v1/users/1/%f4%90%80%80", "a=%80", "[\"\xf4\x90\x80\x80\"]", ""},
	} {
		f.Add(s.path, s.query, []byte(s.body), s.hint)
	}
	f.Fuzz(func(t *testing.T, path, query string, body []byte, hint string) {
		in := &Invocation{RequestID: hint, TraceParent: hint, TraceState: hint}
		in.SanitizeHints()
		req := &socketv1.Request{Id: 1, Meta: &socketv1.Meta{RequestId: in.RequestID, Traceparent: in.TraceParent, Tracestate: in.TraceState}}
		if p, _, err := ParsePath(http.MethodGet, path); err == nil {
			if e := p.checkText(); e == nil {
				req.ResourceId, req.Action = p.id, p.segment
				req.Meta.ApiVersion = p.version + p.resource
			}
		}
		if q, err := url.ParseQuery(query); err == nil {
			if b, e := queryBody(q); e == nil {
				req.Payload = &socketv1.Request_BodyRaw{BodyRaw: b}
				checkFrame(t, req)
			}
		}
		if e := CheckJSON(body, 64); e == nil {
			req.Payload = &socketv1.Request_BodyRaw{BodyRaw: body}
		}
		checkFrame(t, req)
	})
}

// checkFrame fails the test when a request frame does not encode, or when
// its body is JSON the gateway would have refused.
func checkFrame(t *testing.T, req *socketv1.Request) {
	t.Helper()
	if _, err := proto.Marshal(&socketv1.ConnectRequest{Frame: &socketv1.ConnectRequest_Request{Request: req}}); err != nil {
		t.Fatalf("an accepted request does not encode: %v (%q)", err, req.String())
	}
}
