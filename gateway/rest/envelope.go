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
	h["Content-Type"] = valuesJSON
	h["X-Content-Type-Options"] = valuesNosniff
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// Header values every envelope carries, encoded once and assigned into
// each answer's header map as they are (Header.Set would allocate a slice
// per header per request). They are shared: nothing may modify them;
// Header.Set and Header.Add replace or copy them, never write into them.
var (
	valuesJSON    = []string{"application/json"}
	valuesNosniff = []string{"nosniff"}
)

// WriteError writes an error envelope with the status the error maps to
// (invoke.HTTPStatus).
func WriteError(w http.ResponseWriter, err *status.Error) {
	WriteEnvelope(w, invoke.HTTPStatus(err.Code), nil, err)
}
