package rest

import (
	"net/http"
	"sync"
)

// statusWriter is the REST edge's one ResponseWriter wrapper: it notes
// the first final status written, for the observers.
type statusWriter struct {
	http.ResponseWriter
	status int
}

var statusWriters = sync.Pool{New: func() any { return new(statusWriter) }}

// newStatusWriter wraps w until release.
func newStatusWriter(w http.ResponseWriter) *statusWriter {
	sw := statusWriters.Get().(*statusWriter)
	*sw = statusWriter{ResponseWriter: w}
	return sw
}

// release recycles the wrapper once the request is over.
func (w *statusWriter) release() {
	*w = statusWriter{}
	statusWriters.Put(w)
}

// WriteHeader notes the first final status.
func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the server's writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
