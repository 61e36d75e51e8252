package wsedge

import (
	"encoding/json"
	"testing"
)

// FuzzDecodeFrame feeds arbitrary frames to the WebSocket frame decoder:
// it never panics; a refused frame has an INVALID_ARGUMENT error and, when
// it names an id, a valid JSON id; an accepted frame has a known type and
// the fields its type needs; a response frame for any id is valid JSON.
func FuzzDecodeFrame(f *testing.F) {
	for _, s := range []string{
		`{"type":"auth","token":"t"}`,
		`{"type":"request","id":"7","method":"GET","path":"/users/1"}`,
		`{"type":"request","id":8,"action":"UPDATE_USER","resource_id":"1","body":{"name":"Oska"},"idempotency_key":"k","timeout_ms":500}`,
		`{"type":"cancel","id":"7"}`,
		`{"type":"subscribe","id":"9","topic":"orders/ord_123"}`,
		`{"type":"unsubscribe","id":"10","topic":"orders/ord_123"}`,
		`{"type":"subscribe","id":"11","topic":"orders/ord_123","since":41,"epoch":"dnek4hszut5g"}`,
		`{"type":"subscribe","id":"12","topic":"orders/ord_123","since":-1}`,
		`{"type":"subscribe","id":"13","topic":"orders/ord_123","since":"41"}`,
		`{"type":"request","id":"7"}`, `{"type":"nope","id":"1"}`, `{"id":"1"}`, `{}`, `[]`, `null`, `{"type":"request","id":{}}`,
		`{"type":"request","id":"1","method":"GET","path":"/x","timeout_ms":-1}`, `{"type":"request","id":"1","method":7}`,
		`{"type":"request","id":"\u0000","action":"A","resource_id":[]}`, "\xff", `{"type":"request","id":"1e999"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fr, ferr := decodeFrame(data)
		if ferr != nil {
			if fr != nil || ferr.err == nil || ferr.err.Code != "INVALID_ARGUMENT" {
				t.Fatalf("refusal %+v with frame %+v", ferr, fr)
			}
			if ferr.id != nil {
				b := responseFrame(ferr.id, failed(400, ferr.err))
				if !json.Valid(b) {
					t.Fatalf("response frame %s is not JSON", b)
				}
			}
			return
		}
		switch fr.Type {
		case frameAuth:
		case frameRequest:
			if (fr.Action == "") == (fr.Method == "") || fr.key == "" {
				t.Fatalf("accepted request %+v", fr)
			}
		case frameCancel, frameSubscribe, frameUnsubscribe:
			if fr.key == "" || (fr.Type != frameCancel && fr.Topic == "") {
				t.Fatalf("accepted %+v", fr)
			}
		default:
			t.Fatalf("accepted type %q", fr.Type)
		}
		if fr.Type != frameAuth && !json.Valid(responseFrame(fr.ID, Answer{Status: 200, Result: json.RawMessage(`{}`)})) {
			t.Fatalf("response frame for id %s is not JSON", fr.ID)
		}
	})
}
