package invoke

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"

	"github.com/streamgate/streamgate/gateway/observe"
	"github.com/streamgate/streamgate/services/socket"
	"github.com/streamgate/streamgate/status"
)

// Answer is an invocation's outcome, ready for any edge.
type Answer struct {
	Status       int // the HTTP status
	Result       json.RawMessage
	Err          *status.Error
	Allow        []string // for 405
	Location     string   // for 201
	ETag         string   // for cacheable reads
	CacheControl string
	// ETagValues and CacheControlValues, when set, are ETag and
	// CacheControl as a header's values, encoded once and shared by every
	// answer from the same cache entry or route: an edge may assign them
	// into a header map as they are, and nobody modifies them.
	ETagValues, CacheControlValues []string
	XCache                         string // a read's outcome (observe.CacheOutcome)
	// Envelope is the answer's body already encoded: a replayed answer's
	// as first sent, a cache hit's as stored.
	Envelope []byte
	Replayed bool // an Idempotency-Key replay

	retryAfter int // seconds, for Retry-After (409 idempotency_key_in_use); see RetryAfter
}

// tell tells the request's record how it was answered.
func (a Answer) tell(ctx context.Context, r *observe.Record) {
	r.Answer(ctx, a.Status, a.Err, a.XCache, a.Replayed)
}

// Failed answers an error the gateway found itself, with its code's
// status; a service's error is Table.serviceFailed's.
func Failed(err *status.Error) Answer {
	return Answer{Status: HTTPStatus(err.Code), Err: err}
}

// succeeded builds a success answer: 201 and Location for creates.
func succeeded(in *Invocation, result json.RawMessage) Answer {
	if len(result) > 0 && !json.Valid(result) {
		return Failed(socket.Errorf(socket.CodeInternal, "the service returned invalid JSON"))
	}
	a := Answer{Status: http.StatusOK, Result: result}
	if in.route.Create {
		a.Status = http.StatusCreated
		a.Location = locationOf(in.version.Name, in.resource.Name, result)
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
