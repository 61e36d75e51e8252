package rest

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/streamgate/streamgate/gateway/invoke"
	"github.com/streamgate/streamgate/internal/envelope"
	"github.com/streamgate/streamgate/status"
)

// WriteEnvelope writes the standard envelope. A success's result is
// written as the service's bytes, not re-encoded.
func WriteEnvelope(w http.ResponseWriter, status int, result json.RawMessage, err *status.Error) {
	if status == http.StatusServiceUnavailable && w.Header().Get(HeaderRetryAfter) == "" {
		w.Header().Set(HeaderRetryAfter, strconv.Itoa(invoke.Answer{Status: status, Err: err}.RetryAfter()))
	}
	writeBody(w, status, envelope.Encode(result, err))
}

// writeBody writes an envelope's bytes with the status.
func writeBody(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// WriteError writes an error envelope with the status the error maps to
// (invoke.HTTPStatus).
func WriteError(w http.ResponseWriter, err *status.Error) {
	WriteEnvelope(w, invoke.HTTPStatus(err.Code), nil, err)
}
