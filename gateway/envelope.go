package gateway

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/streamgate/streamgate/services/socket"
)

// writeEnvelope writes the standard envelope. A success's result is
// written as the service's bytes, not re-encoded.
func writeEnvelope(w http.ResponseWriter, status int, result json.RawMessage, err *socket.Error) {
	if status == http.StatusServiceUnavailable && w.Header().Get(headerRetryAfter) == "" {
		w.Header().Set(headerRetryAfter, strconv.Itoa(retryAfterOf(err)))
	}
	writeBody(w, status, envelope(result, err))
}

// writeBody writes an envelope's bytes with the status.
func writeBody(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// envelope encodes the standard envelope, a success's result as the
// service's bytes.
func envelope(result json.RawMessage, err *socket.Error) []byte {
	if err != nil {
		b, merr := json.Marshal(socket.Envelope{Error: err})
		if merr != nil {
			b = []byte(`{"ok":false,"error":{"code":"INTERNAL","message":"internal error"}}`)
		}
		return append(b, '\n')
	}
	if len(result) == 0 {
		result = json.RawMessage("null")
	}
	buf := make([]byte, 0, len(result)+24)
	buf = append(buf, `{"ok":true,"result":`...)
	buf = append(buf, result...)
	return append(buf, "}\n"...)
}

// writeError writes an error envelope with the status the error maps to
// (socket.Error.HTTPStatus).
func writeError(w http.ResponseWriter, err *socket.Error) {
	writeEnvelope(w, err.HTTPStatus(), nil, err)
}
