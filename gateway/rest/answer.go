package rest

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/streamgate/streamgate/gateway/invoke"
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
		h.Set("X-Cache", a.XCache)
	}
	if ra := a.RetryAfter(); ra > 0 {
		h.Set(HeaderRetryAfter, strconv.Itoa(ra))
	}
	if a.Replayed {
		h.Set(HeaderReplayed, "true")
	}
	if a.Envelope != nil {
		writeBody(w, a.Status, a.Envelope)
		return
	}
	if a.ETag != "" {
		h.Set("ETag", a.ETag)
		h.Set("Cache-Control", a.CacheControl)
		if etagMatches(ifNoneMatch, a.ETag) {
			w.WriteHeader(http.StatusNotModified)
			return
		}
	}
	WriteEnvelope(w, a.Status, a.Result, a.Err)
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
