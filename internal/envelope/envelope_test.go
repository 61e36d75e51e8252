package envelope_test

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/streamgate/streamgate/internal/envelope"
)

// TestEncodeResult encodes as Encode does and returns the result within
// the envelope, clipped so that appending to it never writes into it.
func TestEncodeResult(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, result string }{
		{"object", `{"id":"1","name":"Oska"}`},
		{"number", `42`},
		{"empty", ``},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env, in := envelope.EncodeResult(json.RawMessage(tc.result))
			if want := envelope.Encode(json.RawMessage(tc.result), nil); !bytes.Equal(env, want) {
				t.Fatalf("EncodeResult = %s; Encode = %s", env, want)
			}
			if string(in) != tc.result {
				t.Fatalf("the result within = %q; want %q", in, tc.result)
			}
			if tc.result == "" {
				if in != nil {
					t.Fatalf("an empty result within = %q; want nil", in)
				}
				return
			}
			if cap(in) != len(in) {
				t.Fatalf("the result within has cap %d > len %d: appending would write into the envelope", cap(in), len(in))
			}
			_ = append(in, '!')
			if want := envelope.Encode(json.RawMessage(tc.result), nil); !bytes.Equal(env, want) {
				t.Fatalf("appending to the result changed the envelope to %s", env)
			}
		})
	}
}
