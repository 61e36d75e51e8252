package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/streamgate/streamgate/gateway/observe"
	"github.com/streamgate/streamgate/services/socket"
)

// answer is an invocation's outcome, ready for either edge.
type answer struct {
	status       int
	result       json.RawMessage
	err          *socket.Error
	allow        []string // for 405
	location     string   // for 201
	etag         string   // for cacheable reads
	cacheControl string
	xCache       string // a read's outcome (observe.CacheOutcome)
	envelope     []byte // a replayed answer's body, as first sent
	replayed     bool   // an Idempotency-Key replay
	retryAfter   int    // seconds, for Retry-After (409 idempotency_key_in_use)
}

// tell tells the request's record how it was answered.
func (a answer) tell(ctx context.Context, r *observe.Record) {
	r.Answer(ctx, a.status, a.err, a.xCache, a.replayed)
}

// failed answers an error the gateway found itself, with its code's
// status; a service's error is table.serviceFailed's.
func failed(err *socket.Error) answer {
	return answer{status: httpStatus(err.Code), err: err}
}

// succeeded builds a success answer: 201 and Location for creates.
func (g *Gateway) succeeded(p prepared, result json.RawMessage) answer {
	if len(result) > 0 && !json.Valid(result) {
		return failed(socket.Errorf(socket.CodeInternal, "the service returned invalid JSON"))
	}
	a := answer{status: http.StatusOK, result: result}
	if p.route.Create {
		a.status = http.StatusCreated
		a.location = locationOf(p.version.Name, p.resource.Name, result)
	}
	return a
}

// locationOf builds a created resource's Location from the id field of
// the result, if it has one.
func locationOf(version, resource string, result json.RawMessage) string {
	id := createdID(result)
	if id == "" {
		return ""
	}
	return "/" + url.PathEscape(version) + "/" + url.PathEscape(resource) + "/" + url.PathEscape(id)
}

// createdID is the id field (a string or a number) of a create's result.
func createdID(result json.RawMessage) string {
	var v struct {
		ID json.RawMessage `json:"id"`
	}
	if json.Unmarshal(result, &v) != nil || len(v.ID) == 0 {
		return ""
	}
	var id string
	if json.Unmarshal(v.ID, &id) != nil {
		id = string(bytes.TrimSpace(v.ID))
		if _, err := strconv.ParseFloat(id, 64); err != nil {
			return ""
		}
	}
	return id
}

// writeAnswer writes an answer with its headers; a matching If-None-Match
// gets 304 without a body.
func writeAnswer(w http.ResponseWriter, a answer, in *invocation) {
	h := w.Header()
	if a.allow != nil {
		h.Set("Allow", strings.Join(a.allow, ", "))
	}
	if a.location != "" {
		h.Set("Location", a.location)
	}
	if a.xCache != "" {
		h.Set("X-Cache", a.xCache)
	}
	if ra := retryAfter(a); ra > 0 {
		h.Set(headerRetryAfter, strconv.Itoa(ra))
	}
	if a.replayed {
		h.Set(headerReplayed, "true")
	}
	if a.envelope != nil {
		writeBody(w, a.status, a.envelope)
		return
	}
	if a.etag != "" {
		h.Set("ETag", a.etag)
		h.Set("Cache-Control", a.cacheControl)
		if etagMatches(in.ifNoneMatch, a.etag) {
			w.WriteHeader(http.StatusNotModified)
			return
		}
	}
	writeEnvelope(w, a.status, a.result, a.err)
}

// etagMatches implements If-None-Match's comparison (weak, any listed).
func etagMatches(header, etag string) bool {
	if header == "" {
		return false
	}
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == "*" || t == etag {
			return true
		}
	}
	return false
}
