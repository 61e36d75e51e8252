package rest

import (
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/streamgate/streamgate/gateway/invoke"
	"github.com/streamgate/streamgate/services/socket"
	"github.com/streamgate/streamgate/status"
)

// readBody reads and checks a request body: its size is checked before
// reading (413), a non-empty body must be JSON (415), well-formed and not
// too deep (400).
func readBody(r *http.Request, maxBytes int64, maxDepth int) ([]byte, int, *status.Error) {
	if noBody(r) {
		return nil, 0, nil
	}
	tooLarge := invoke.BodyTooLarge(maxBytes)
	if r.ContentLength > maxBytes {
		return nil, invoke.StatusTooLarge, tooLarge
	}
	ct := get(r.Header, headerContentType)
	if r.ContentLength > 0 && !isJSONContentType(ct) {
		return nil, invoke.StatusMediaType, mediaTypeError(ct)
	}
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, maxBytes))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return nil, invoke.StatusTooLarge, tooLarge
	case err != nil:
		return nil, http.StatusBadRequest, socket.Errorf(socket.CodeInvalidArgument, "reading the request body failed")
	}
	if len(strings.TrimSpace(string(body))) == 0 {
		return nil, 0, nil
	}
	if !isJSONContentType(ct) {
		return nil, invoke.StatusMediaType, mediaTypeError(ct)
	}
	if jerr := invoke.CheckJSON(body, maxDepth); jerr != nil {
		return nil, http.StatusBadRequest, jerr
	}
	return body, 0, nil
}

// noBody reports whether a request comes without a body to read.
func noBody(r *http.Request) bool {
	return r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0
}

func mediaTypeError(ct string) *status.Error {
	return socket.Errorf(socket.CodeInvalidArgument, "request body must be application/json, not %q", ct).
		WithDetails(map[string]any{socket.DetailReason: "unsupported_media_type"})
}

// isJSONContentType accepts application/json with parameters (charset).
func isJSONContentType(ct string) bool {
	mt, _, _ := strings.Cut(ct, ";")
	mt = strings.TrimSpace(strings.ToLower(mt))
	return mt == "application/json" || (strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json"))
}
