package rest

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/streamgate/streamgate/gateway/invoke"
	"github.com/streamgate/streamgate/gateway/observe"
)

// writeAnswer writes an answer with its headers; a matching If-None-Match
// gets 304 without a body.
func writeAnswer(w http.ResponseWriter, a invoke.Answer, ifNoneMatch string) {
	h := w.Header()
	if a.Allow != nil {
		h.Set("Allow", strings.Join(a.Allow, ", "))
	}
	if a.Location != "" {
		h.Set("Location", a.Location)
	}
	if a.XCache != "" {
		h["X-Cache"] = headerValues(xCacheValues, a.XCache)
	}
	if ra := a.RetryAfter(); ra > 0 {
		h.Set(HeaderRetryAfter, strconv.Itoa(ra))
	}
	if a.Replayed {
		h.Set(HeaderReplayed, "true")
	}
	if a.ETag != "" {
		h["Etag"] = valuesOr(a.ETagValues, a.ETag)
		h["Cache-Control"] = valuesOr(a.CacheControlValues, a.CacheControl)
		if etagMatches(ifNoneMatch, a.ETag) {
			w.WriteHeader(http.StatusNotModified)
			return
		}
	}
	if a.Envelope != nil {
		writeBody(w, a.Status, a.Envelope)
		return
	}
	WriteEnvelope(w, a.Status, a.Result, a.Err)
}

// xCacheValues are X-Cache's values, encoded once (see valuesJSON).
var xCacheValues = encodedOnce(observe.CacheMiss.String(), observe.CacheHit.String(), observe.CacheCoalesced.String(),
	observe.CacheBypass.String(), observe.CacheUnavailable.String())

// encodedOnce returns each of values as a header's values, by value.
func encodedOnce(values ...string) map[string][]string {
	m := make(map[string][]string, len(values))
	for _, v := range values {
		m[v] = []string{v}
	}
	return m
}

// headerValues returns the shared values of v in known, or new ones.
func headerValues(known map[string][]string, v string) []string {
	if values, ok := known[v]; ok {
		return values
	}
	return []string{v}
}

// valuesOr returns values encoded once for v when there are, or new ones.
func valuesOr(values []string, v string) []string {
	if len(values) == 1 && values[0] == v {
		return values
	}
	return []string{v}
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
