package run

import (
	"io"
	"net"
	"net/http"
	httppprof "net/http/pprof"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metricsRegistry is where the service's metrics go: the Options' (the
// stack shares one), or, with an admin listener, a registry of its own
// with the Go runtime and process collectors. Nil: no metrics.
func metricsRegistry(o Options) prometheus.Registerer {
	if o.Metrics != nil {
		return o.Metrics
	}
	if o.AdminAddr == "" {
		return nil
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// serveAdmin serves on addr GET /metrics of reg, /healthz (the process
// is up), /readyz (200 while serving is set, 503 before and from the
// moment the drain starts) and, with pprof, /debug/pprof/. It returns the
// bound address and a function that closes the listener and waits for it
// (Run calls it last, so the metrics stay up while the service drains).
func serveAdmin(addr string, reg prometheus.Registerer, pprof bool, serving *atomic.Bool) (string, func(), error) {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, err
	}
	mux := http.NewServeMux()
	if g, ok := reg.(prometheus.Gatherer); ok {
		mux.Handle("GET /metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{}))
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, `{"ok":true,"result":"ok"}`)
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !serving.Load() {
			writeJSON(w, http.StatusServiceUnavailable, `{"ok":false,"error":{"code":"UNAVAILABLE","message":"the service is not serving"}}`)
			return
		}
		writeJSON(w, http.StatusOK, `{"ok":true,"result":"ready"}`)
	})
	if pprof {
		mux.HandleFunc("/debug/pprof/", httppprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", httppprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", httppprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", httppprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", httppprof.Trace)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = srv.Serve(lis) // ends with http.ErrServerClosed
	}()
	return lis.Addr().String(), func() { _ = srv.Close(); <-served }, nil
}

// writeJSON writes an admin answer (an envelope already encoded).
func writeJSON(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}
