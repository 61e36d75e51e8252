package run

import (
	"net"
	"net/http"
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

// serveAdmin serves GET /metrics of reg on addr. It returns the bound
// address and a function that closes the listener and waits for it (Run
// calls it last, so the metrics stay up while the service drains).
func serveAdmin(addr string, reg prometheus.Registerer) (string, func(), error) {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, err
	}
	mux := http.NewServeMux()
	if g, ok := reg.(prometheus.Gatherer); ok {
		mux.Handle("GET /metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{}))
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = srv.Serve(lis) // ends with http.ErrServerClosed
	}()
	return lis.Addr().String(), func() { _ = srv.Close(); <-served }, nil
}
