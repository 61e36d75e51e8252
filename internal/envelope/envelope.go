// Package envelope is the standard answer at streamgate's edges (REST, the
// gateway's gRPC API, the CLI): {"ok": true, "result": …} or
// {"ok": false, "error": {"code", "message", "details"}}. It is
// streamgate's own, not public API: services never see envelopes.
package envelope

import (
	"encoding/json"
	"slices"

	"github.com/streamgate/streamgate/status"
)

// Envelope is the standard answer in its JSON form.
type Envelope struct {
	OK     bool            `json:"ok"`
	Result json.RawMessage `json:"result,omitempty"`
	Error  *status.Error   `json:"error,omitempty"`
}

// New wraps a request's outcome; a nil result of a success is JSON null.
func New(result json.RawMessage, err error) Envelope {
	if err != nil {
		return Envelope{Error: status.AsError(err)}
	}
	if len(result) == 0 {
		result = json.RawMessage("null")
	}
	return Envelope{OK: true, Result: result}
}

// Encode returns the envelope's JSON and a newline, a success's result as
// the service's bytes (not re-encoded).
func Encode(result json.RawMessage, err *status.Error) []byte {
	if err != nil {
		b, merr := json.Marshal(Envelope{Error: err})
		if merr != nil {
			b = []byte(`{"ok":false,"error":{"code":"INTERNAL","message":"internal error"}}`)
		}
		return append(b, '\n')
	}
	env, _ := EncodeResult(result)
	return env
}

// EncodeResult encodes a success's envelope as Encode does, and returns
// with it result within it: the same bytes, not a copy (nil for an empty
// result), so a caller keeping both keeps the result once.
func EncodeResult(result json.RawMessage) (env []byte, inEnv json.RawMessage) {
	const prefix = `{"ok":true,"result":`
	n := len(result)
	if n == 0 {
		result = json.RawMessage("null")
	}
	env = slices.Grow[[]byte](nil, len(prefix)+len(result)+2) // cap: what the heap gives (a cache weighs it)
	env = append(env, prefix...)
	env = append(env, result...)
	env = append(env, "}\n"...)
	if n > 0 {
		inEnv = env[len(prefix) : len(prefix)+n : len(prefix)+n]
	}
	return env, inEnv
}
